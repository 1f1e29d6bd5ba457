//! Settings of the hosted endpoint's defences: who gets in (session tokens, Twilio signatures,
//! admin token) and what one client can do (per-IP caps, connection rate, timeouts).

use super::reader::Reader;
use super::source::{err, ConfigError};
use std::net::SocketAddr;

/// The shortest accepted `AUTH_SECRET` and `ADMIN_TOKEN`: 32 characters, about 190 bits when
/// random, so neither can be guessed online.
pub const MIN_SECRET_CHARS: usize = 32;

/// Security settings, validated at start.
#[derive(Clone)]
pub struct SecurityConfig {
    /// HS256 key of session tokens.
    pub auth_secret: Option<String>,
    /// RS256/ES256 public key (PEM text) of session tokens minted by a separate service.
    pub auth_public_key: Option<String>,
    /// Key of `X-Twilio-Signature` (the account's auth token).
    pub twilio_auth_token: Option<String>,
    /// The public base URL (`https://voice.example.com`) Twilio signs requests for.
    pub public_url: Option<url::Url>,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Concurrent sessions per client IP (0: no limit).
    pub max_sessions_per_ip: usize,
    /// New connections per client IP per minute (0: no limit) and the burst allowed.
    pub connect_rate_per_min: u32,
    pub connect_burst: u32,
    pub start_timeout_ms: u64,
    /// 0: no idle limit.
    pub idle_timeout_ms: u64,
    /// 0: no session length limit.
    pub max_session_ms: u64,
    /// Typed turns per session per minute (0: no limit).
    pub text_turns_per_min: u32,
    /// A separate listener for the admin routes.
    pub admin_bind: Option<SocketAddr>,
}

impl std::fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "(set)" } else { "(unset)" };
        f.debug_struct("SecurityConfig")
            .field("auth_secret", &set(&self.auth_secret))
            .field("auth_public_key", &set(&self.auth_public_key))
            .field("twilio_auth_token", &set(&self.twilio_auth_token))
            .field("public_url", &self.public_url.as_ref().map(|u| u.as_str()))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("max_sessions_per_ip", &self.max_sessions_per_ip)
            .field("connect_rate_per_min", &self.connect_rate_per_min)
            .field("connect_burst", &self.connect_burst)
            .field("start_timeout_ms", &self.start_timeout_ms)
            .field("idle_timeout_ms", &self.idle_timeout_ms)
            .field("max_session_ms", &self.max_session_ms)
            .field("text_turns_per_min", &self.text_turns_per_min)
            .field("admin_bind", &self.admin_bind)
            .finish()
    }
}

impl SecurityConfig {
    /// True when `/agent` needs a session token.
    pub fn auth_required(&self) -> bool {
        self.auth_secret.is_some() || self.auth_public_key.is_some()
    }

    pub(super) fn read(r: &Reader<'_>) -> Result<Self, ConfigError> {
        let auth_secret = r.key("AUTH_SECRET", |k| {
            if k.chars().count() < MIN_SECRET_CHARS {
                Err(format!("must be at least {MIN_SECRET_CHARS} characters"))
            } else {
                Ok(())
            }
        })?;
        let auth_public_key = r
            .opt("AUTH_PUBLIC_KEY")
            .map(|v| public_key_pem(&v))
            .transpose()?;
        let twilio_auth_token = r.key("TWILIO_AUTH_TOKEN", |_| Ok(()))?;
        let public_url = r
            .opt("PUBLIC_URL")
            .map(|s| {
                let u = url::Url::parse(s.trim())
                    .map_err(|e| err("PUBLIC_URL", format!("not a valid URL ({e})")))?;
                if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                    return Err(err("PUBLIC_URL", "expected http(s)://host[:port]"));
                }
                if u.path() != "/" || u.query().is_some() {
                    return Err(err("PUBLIC_URL", "expected no path or query"));
                }
                Ok(u)
            })
            .transpose()?;
        let trusted_proxies = r
            .opt("TRUSTED_PROXIES")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        p.parse::<ipnet::IpNet>()
                            .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| err("TRUSTED_PROXIES", format!("not a CIDR: {p:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        let connect_burst: u32 = r.num("CONNECT_BURST", 20)?;
        if connect_burst == 0 {
            return Err(err("CONNECT_BURST", "must be at least 1"));
        }
        let start_timeout_ms: u64 = r.num("START_TIMEOUT_MS", 5000)?;
        if start_timeout_ms == 0 {
            return Err(err("START_TIMEOUT_MS", "must be at least 1"));
        }
        let admin_bind = r
            .opt("ADMIN_BIND")
            .map(|s| {
                s.trim()
                    .parse::<SocketAddr>()
                    .map_err(|_| err("ADMIN_BIND", "expected ADDRESS:PORT, e.g. 127.0.0.1:4011"))
            })
            .transpose()?;
        Ok(Self {
            auth_secret,
            auth_public_key,
            twilio_auth_token,
            public_url,
            trusted_proxies,
            max_sessions_per_ip: r.num("MAX_SESSIONS_PER_IP", 10)?,
            connect_rate_per_min: r.num("CONNECT_RATE_PER_MIN", 60)?,
            connect_burst,
            start_timeout_ms,
            idle_timeout_ms: r.num("IDLE_TIMEOUT_MS", 60_000)?,
            max_session_ms: r.num("MAX_SESSION_MS", 3_600_000)?,
            text_turns_per_min: r.num("TEXT_TURNS_PER_MIN", 20)?,
            admin_bind,
        })
    }

    /// `NAME=value` lines for `voice-host config`; secrets show only whether they are set.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        let set = |o: &Option<String>| (if o.is_some() { "(set)" } else { "(unset)" }).to_string();
        vec![
            ("AUTH_SECRET", set(&self.auth_secret)),
            ("AUTH_PUBLIC_KEY", set(&self.auth_public_key)),
            ("TWILIO_AUTH_TOKEN", set(&self.twilio_auth_token)),
            (
                "PUBLIC_URL",
                self.public_url
                    .as_ref()
                    .map_or(String::new(), |u| u.as_str().trim_end_matches('/').into()),
            ),
            (
                "TRUSTED_PROXIES",
                self.trusted_proxies
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("MAX_SESSIONS_PER_IP", self.max_sessions_per_ip.to_string()),
            (
                "CONNECT_RATE_PER_MIN",
                self.connect_rate_per_min.to_string(),
            ),
            ("CONNECT_BURST", self.connect_burst.to_string()),
            ("START_TIMEOUT_MS", self.start_timeout_ms.to_string()),
            ("IDLE_TIMEOUT_MS", self.idle_timeout_ms.to_string()),
            ("MAX_SESSION_MS", self.max_session_ms.to_string()),
            ("TEXT_TURNS_PER_MIN", self.text_turns_per_min.to_string()),
            (
                "ADMIN_BIND",
                self.admin_bind.map_or(String::new(), |a| a.to_string()),
            ),
        ]
    }

    /// The secrets in these settings, for scrubbing text.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        [&self.auth_secret, &self.twilio_auth_token]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// Largest PEM file read for `AUTH_PUBLIC_KEY` (an RSA-8192 public key is under 2 KiB).
const MAX_PEM_BYTES: u64 = 64 * 1024;

/// The text of the file at `path`, refusing more than `max` bytes (a mistaken path such as
/// `/dev/zero` must not hang the start).
fn read_small_file(path: &str, max: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::other(format!("larger than {max} bytes")));
    }
    Ok(text)
}

/// `AUTH_PUBLIC_KEY` is PEM text or the path of a PEM file; either way an RSA or EC public key.
fn public_key_pem(value: &str) -> Result<String, ConfigError> {
    let name = "AUTH_PUBLIC_KEY";
    let pem = if value.trim_start().starts_with("-----BEGIN") {
        value.to_string()
    } else {
        read_small_file(value.trim(), MAX_PEM_BYTES).map_err(|e| {
            err(
                name,
                format!("not PEM text, and cannot read it as a file ({e})"),
            )
        })?
    };
    let rsa = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes()).is_ok();
    let ec = jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()).is_ok();
    if !rsa && !ec {
        return Err(err(name, "not an RSA or EC public key in PEM form"));
    }
    Ok(pem)
}
