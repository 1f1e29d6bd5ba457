//! Session resume settings: how long a dropped session can be resumed, and where its record
//! lives (Redis, shared by replicas, or this process).

use super::reader::Reader;
use super::source::{err, ConfigError};
use std::time::Duration;

/// `RESUME_TTL_S` and `REDIS_URL`.
#[derive(Clone)]
pub struct ResumeConfig {
    /// How long after its last write a session can be resumed (0: resume is off).
    pub ttl_s: u64,
    /// Redis holding resume records; `None`: process memory. May hold a password: a secret.
    pub redis_url: Option<String>,
}

impl ResumeConfig {
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_s)
    }

    /// Whether sessions hand out resume tokens at all.
    pub fn enabled(&self) -> bool {
        self.ttl_s > 0
    }

    pub(super) fn read(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let ttl_s: u64 = r.num("RESUME_TTL_S", 120)?;
        if ttl_s > 86_400 {
            return Err(err("RESUME_TTL_S", "at most 86400 (a day)"));
        }
        let redis_url = r.opt("REDIS_URL");
        if let Some(url) = &redis_url {
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://")
                || url.starts_with("unix://"))
            {
                return Err(err(
                    "REDIS_URL",
                    "expected redis://[:PASSWORD@]HOST[:PORT][/DB]",
                ));
            }
        }
        Ok(Self { ttl_s, redis_url })
    }

    /// Settings as shown by `voice-host config` (the URL only as set/unset).
    pub(super) fn describe(&self) -> Vec<(&'static str, String)> {
        vec![
            ("RESUME_TTL_S", self.ttl_s.to_string()),
            (
                "REDIS_URL",
                if self.redis_url.is_some() {
                    "(set)"
                } else {
                    "(unset: process memory)"
                }
                .into(),
            ),
        ]
    }

    pub(super) fn secrets(&self) -> impl Iterator<Item = &str> {
        self.redis_url.iter().map(String::as_str)
    }
}

impl std::fmt::Debug for ResumeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeConfig")
            .field("ttl_s", &self.ttl_s)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}
