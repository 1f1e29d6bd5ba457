//! Reading one setting: its variable's value parsed and checked, or an error naming the variable.

use super::source::{err, ConfigError, RawSettings};
use super::{ProviderChoice, SlotConfig};
use std::path::PathBuf;

pub(super) struct Reader<'a> {
    pub(super) raw: &'a RawSettings,
}

impl Reader<'_> {
    pub(super) fn str_or(&self, name: &str, default: &str) -> String {
        self.raw.get(name).unwrap_or(default).to_string()
    }

    pub(super) fn opt(&self, name: &str) -> Option<String> {
        self.raw
            .get(name)
            .map(str::to_string)
            .filter(|s| !s.is_empty())
    }

    pub(super) fn num<T: std::str::FromStr>(
        &self,
        name: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        match self.raw.get(name) {
            None => Ok(default),
            Some(s) => {
                let s = s.trim();
                if s.starts_with('-') {
                    return Err(err(name, format!("must not be negative, got {s:?}")));
                }
                s.parse()
                    .map_err(|_| err(name, format!("expected a whole number, got {s:?}")))
            }
        }
    }

    pub(super) fn float(
        &self,
        name: &str,
        default: f32,
        range: (f32, f32),
    ) -> Result<f32, ConfigError> {
        let Some(s) = self.raw.get(name) else {
            return Ok(default);
        };
        let f: f32 = s
            .trim()
            .parse()
            .map_err(|_| err(name, format!("expected a number, got {s:?}")))?;
        if !(range.0..=range.1).contains(&f) {
            return Err(err(
                name,
                format!("must be between {} and {}, got {f}", range.0, range.1),
            ));
        }
        Ok(f)
    }

    pub(super) fn boolean(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.raw.get(name).map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) => match s.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(err(name, format!("expected true or false, got {s:?}"))),
            },
        }
    }

    pub(super) fn url(
        &self,
        name: &str,
        default: &str,
        schemes: &[&str],
    ) -> Result<String, ConfigError> {
        let s = self.str_or(name, default);
        let u = url::Url::parse(&s).map_err(|e| err(name, format!("not a valid URL ({e})")))?;
        if !schemes.contains(&u.scheme()) {
            return Err(err(
                name,
                format!("scheme must be one of {}", schemes.join(", ")),
            ));
        }
        Ok(s.trim_end_matches('/').to_string())
    }

    /// An API key: no whitespace; a wrong known prefix is an error, other shapes only a warning.
    pub(super) fn key(
        &self,
        name: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Option<String>, ConfigError> {
        let Some(k) = self.opt(name) else {
            return Ok(None);
        };
        if k.chars().any(char::is_whitespace) {
            return Err(err(
                name,
                "contains whitespace (check for a stray newline or space)",
            ));
        }
        check(&k).map_err(|p| err(name, p))?;
        Ok(Some(k))
    }

    pub(super) fn provider(
        &self,
        name: &str,
        cloud: &str,
        cloud_by_default: bool,
    ) -> Result<ProviderChoice, ConfigError> {
        match self.opt(name).map(|s| s.to_ascii_lowercase()) {
            None => Ok(if cloud_by_default {
                ProviderChoice::Cloud
            } else {
                ProviderChoice::Local
            }),
            Some(s) if s == cloud => Ok(ProviderChoice::Cloud),
            Some(s) if s == "local" => Ok(ProviderChoice::Local),
            Some(s) => Err(err(
                name,
                format!("unknown provider {s:?} (expected {cloud} or local)"),
            )),
        }
    }

    pub(super) fn slot(
        &self,
        env: &str,
        slot: &str,
        dir: &str,
        file: Option<&str>,
    ) -> Result<SlotConfig, ConfigError> {
        let (file_path, config) = self.raw.plugins.get(slot).cloned().unwrap_or_default();
        let path = self
            .opt(env)
            .or(file_path)
            .unwrap_or_else(|| file.map_or("none".to_string(), |file| format!("{dir}/{file}")));
        let percent_var = format!("{env}_CANARY_PERCENT");
        let canary_percent = match self.num(&percent_var, 10u8)? {
            n if n > 100 => return Err(err(&percent_var, "must be at most 100")),
            n => n,
        };
        Ok(SlotConfig {
            path: (!path.eq_ignore_ascii_case("none")).then(|| PathBuf::from(path)),
            config,
            shadow: self.opt(&format!("{env}_SHADOW")).map(PathBuf::from),
            canary: self.opt(&format!("{env}_CANARY")).map(PathBuf::from),
            canary_percent,
        })
    }
}

pub(super) fn validate_origin(origin: &str) -> Result<String, String> {
    let o = origin.trim();
    let u = url::Url::parse(o).map_err(|_| format!("malformed origin {o:?}"))?;
    if !matches!(u.scheme(), "http" | "https")
        || u.host_str().is_none()
        || u.path() != "/"
        || o.ends_with('/')
    {
        return Err(format!(
            "malformed origin {o:?} (expected scheme://host[:port])"
        ));
    }
    Ok(o.to_string())
}
