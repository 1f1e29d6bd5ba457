//! Where settings come from: the environment over an optional TOML file. Every environment
//! variable may also be written in the file under its lowercase name (`port = 4010`); the file
//! adds agent profiles (`[agent]`, `[agents.<name>]`) and plug-in tables (`[plugins.<slot>]`).
//! A plain value under `[plugins]` is the `PLUGIN_` variable of its name (`[plugins]
//! record = "DIR"` is `PLUGIN_RECORD`).

use std::collections::BTreeMap;
use std::path::Path;

/// A `[plugins.<slot>]` table: the component path and its key/value configuration.
pub type PluginTable = (Option<String>, Vec<(String, String)>);

/// The raw settings before validation: variable name (upper case) -> value, plus tables.
#[derive(Debug, Default, Clone)]
pub struct RawSettings {
    pub values: BTreeMap<String, String>,
    /// `[agent]` and `[agents.<name>]`: name ("" for the default) -> key -> value.
    pub agents: BTreeMap<String, BTreeMap<String, String>>,
    /// `[plugins.<slot>]`: slot -> (path, config key/values).
    pub plugins: BTreeMap<String, PluginTable>,
    /// Lists given as TOML arrays (e.g. `protected_patterns`).
    pub lists: BTreeMap<String, Vec<String>>,
}

/// A configuration problem: the variable and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: String,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

pub fn err(variable: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        variable: variable.to_string(),
        problem: problem.into(),
    }
}

fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_table(name: &str, v: &toml::Value) -> Result<BTreeMap<String, String>, ConfigError> {
    let table = v.as_table().ok_or_else(|| err(name, "expected a table"))?;
    table
        .iter()
        .map(|(k, v)| {
            scalar(v).map(|s| (k.clone(), s)).ok_or_else(|| {
                err(
                    &format!("{name}.{k}"),
                    "expected a string, number or boolean",
                )
            })
        })
        .collect()
}

impl RawSettings {
    /// Read a TOML configuration file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("--config", format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|mut e| {
            e.variable = format!("{} ({})", e.variable, path.display());
            e
        })
    }

    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err("config file", e.message().to_string()))?;
        let mut raw = RawSettings::default();
        for (key, value) in &doc {
            match (key.as_str(), value) {
                ("agent", v) => {
                    raw.agents.insert(String::new(), string_table("agent", v)?);
                }
                ("agents", v) => {
                    let table = v
                        .as_table()
                        .ok_or_else(|| err("agents", "expected a table"))?;
                    for (name, profile) in table {
                        raw.agents.insert(
                            name.clone(),
                            string_table(&format!("agents.{name}"), profile)?,
                        );
                    }
                }
                ("plugins", v) => {
                    let table = v
                        .as_table()
                        .ok_or_else(|| err("plugins", "expected a table"))?;
                    for (slot, spec) in table {
                        let name = format!("plugins.{slot}");
                        if let Some(value) = scalar(spec) {
                            raw.values
                                .insert(format!("PLUGIN_{}", slot.to_uppercase()), value);
                            continue;
                        }
                        let spec = spec.as_table().ok_or_else(|| {
                            err(&name, "expected a table or a string, number or boolean")
                        })?;
                        // Candidate versions are the slot's `<SLOT>_PLUGIN_*` variables.
                        for key in ["shadow", "canary", "canary_percent"] {
                            if let Some(v) = spec.get(key) {
                                let value = scalar(v).ok_or_else(|| {
                                    err(&format!("{name}.{key}"), "expected a string or number")
                                })?;
                                raw.values.insert(
                                    format!(
                                        "{}_PLUGIN_{}",
                                        slot.to_uppercase(),
                                        key.to_uppercase()
                                    ),
                                    value,
                                );
                            }
                        }
                        if let Some(unknown) = spec.keys().find(|k| {
                            !matches!(
                                k.as_str(),
                                "path" | "config" | "shadow" | "canary" | "canary_percent"
                            )
                        }) {
                            return Err(err(
                                &format!("{name}.{unknown}"),
                                "unknown key (expected path, config, shadow, canary or canary_percent)",
                            ));
                        }
                        let path = spec.get("path").and_then(scalar);
                        let config = match spec.get("config") {
                            Some(c) => string_table(&format!("{name}.config"), c)?
                                .into_iter()
                                .collect(),
                            None => Vec::new(),
                        };
                        raw.plugins.insert(slot.clone(), (path, config));
                    }
                }
                (k, toml::Value::Array(items)) => {
                    let list = items
                        .iter()
                        .map(|i| scalar(i).ok_or_else(|| err(k, "expected a list of strings")))
                        .collect::<Result<Vec<_>, _>>()?;
                    raw.lists.insert(k.to_uppercase(), list);
                }
                (k, v) => {
                    let s =
                        scalar(v).ok_or_else(|| err(k, "expected a string, number or boolean"))?;
                    raw.values.insert(k.to_uppercase(), s);
                }
            }
        }
        Ok(raw)
    }

    /// Overlay environment variables (they win over the file).
    pub fn overlay_env(&mut self, env: impl IntoIterator<Item = (String, String)>, known: &[&str]) {
        for (k, v) in env {
            if known.contains(&k.as_str()) {
                self.lists.remove(&k);
                self.values.insert(k, v);
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}
