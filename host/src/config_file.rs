//! The config file (`--config FILE` or `STREAMHOST_CONFIG`): one TOML table
//! holding any of the settings [`crate::config::SETTINGS`] declares, keyed by
//! the environment variable lower-cased with a leading `streamhost_` removed
//! (`max_sessions = 10`, `stream_max_frame_size_mb = 2`, `listen = "0.0.0.0:8000"`).
//!
//! It is only another source for the same settings, so it plugs into the one
//! parser ([`Config::from_lookup`]) as a fallback behind the environment:
//! flags > environment > file > defaults. Every value is checked exactly as
//! an environment variable is; what the file gets wrong is reported naming
//! its key and the file: an unknown key, a value that is not a scalar (or,
//! for list settings, a list of strings), and a value the setting refuses.
//! [`Resolved`] records where each setting's value came from, for
//! `streamhost settings`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, SETTINGS};

/// Largest config file read (a full one is a few KiB).
pub const MAX_CONFIG_FILE_BYTES: u64 = 256 << 10;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigFileError {
    #[error("cannot read config file {file}: {reason}")]
    Read { file: PathBuf, reason: String },
    #[error("config file {file} is not valid TOML: {reason}")]
    Syntax { file: PathBuf, reason: String },
    #[error("config file {file}: unknown key `{key}` (keys are the settings `streamhost settings` lists, lower-cased, without `streamhost_`)")]
    UnknownKey { file: PathBuf, key: String },
    #[error("config file {file}: `{key}` must be a string, number, boolean or list of strings")]
    NotScalar { file: PathBuf, key: String },
    #[error("config file {file}: `{key}`: {source}")]
    Value {
        file: PathBuf,
        key: String,
        source: ConfigError,
    },
    #[error(transparent)]
    Env(#[from] ConfigError),
}

/// A setting's file key: `STREAMHOST_MAX_SESSIONS` -> `max_sessions`,
/// `STREAM_DROP_WINDOW` -> `stream_drop_window`.
pub fn key_of(env: &str) -> String {
    let lower = env.to_ascii_lowercase();
    lower
        .strip_prefix("streamhost_")
        .map(str::to_string)
        .unwrap_or(lower)
}

/// A parsed config file: each present setting's value as text (what the
/// environment variable would hold), by environment variable name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigFile {
    pub path: PathBuf,
    values: BTreeMap<&'static str, String>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self, ConfigFileError> {
        let read_err = |reason: String| ConfigFileError::Read {
            file: path.to_path_buf(),
            reason,
        };
        let len = std::fs::metadata(path)
            .map_err(|e| read_err(e.to_string()))?
            .len();
        if len > MAX_CONFIG_FILE_BYTES {
            return Err(read_err(format!(
                "{len} bytes, over the {MAX_CONFIG_FILE_BYTES} byte limit"
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigFileError> {
        let file = || path.to_path_buf();
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigFileError::Syntax {
                    file: file(),
                    reason: e.message().to_string(),
                })?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            let env = SETTINGS
                .iter()
                .map(|s| s.env)
                .find(|env| key_of(env) == key)
                .ok_or_else(|| ConfigFileError::UnknownKey {
                    file: file(),
                    key: key.clone(),
                })?;
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        _ => Err(()),
                    })
                    .collect::<Result<Vec<_>, ()>>()
                    .map_err(|()| ConfigFileError::NotScalar {
                        file: file(),
                        key: key.clone(),
                    })?
                    .join(","),
                _ => {
                    return Err(ConfigFileError::NotScalar {
                        file: file(),
                        key: key.clone(),
                    })
                }
            };
            values.insert(env, text);
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            values,
        })
    }

    pub fn get(&self, env: &str) -> Option<&str> {
        self.values.get(env).map(String::as_str)
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Environment,
    File,
    Default,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Environment => "environment",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// Every setting's effective value (as text) and its source, in table order.
pub struct Resolved {
    pub settings: Vec<(&'static str, String, Source)>,
}

/// The config from the environment (`env`) over `file` over the defaults. A
/// value the file gave that the setting refuses is reported naming its key.
pub fn load(
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&ConfigFile>,
) -> Result<(Config, Resolved), ConfigFileError> {
    let from_env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let lookup = |name: &str| from_env(name).or_else(|| file?.get(name).map(String::from));
    let config = Config::from_lookup(lookup).map_err(|e| match file {
        Some(f) if from_env(e.name()).is_none() && f.get(e.name()).is_some() => {
            ConfigFileError::Value {
                file: f.path.clone(),
                key: key_of(e.name()),
                source: e,
            }
        }
        _ => ConfigFileError::Env(e),
    })?;
    let settings = SETTINGS
        .iter()
        .map(
            |s| match (from_env(s.env), file.and_then(|f| f.get(s.env))) {
                (Some(v), _) => (s.env, v.trim().to_string(), Source::Environment),
                (None, Some(v)) => (s.env, v.to_string(), Source::File),
                (None, None) => (s.env, s.default.to_string(), Source::Default),
            },
        )
        .collect();
    Ok((config, Resolved { settings }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn file(text: &str) -> Result<ConfigFile, ConfigFileError> {
        ConfigFile::parse(text, Path::new("s.toml"))
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn every_setting_has_a_key_and_keys_are_unique() {
        let keys: std::collections::HashSet<String> =
            SETTINGS.iter().map(|s| key_of(s.env)).collect();
        assert_eq!(keys.len(), SETTINGS.len());
        assert_eq!(key_of("STREAMHOST_MAX_SESSIONS"), "max_sessions");
        assert_eq!(
            key_of("STREAM_MAX_FRAME_SIZE_MB"),
            "stream_max_frame_size_mb"
        );
        assert!(keys.contains("listen") && keys.contains("tenants_file"));
    }

    #[test]
    fn environment_beats_file_beats_default() {
        let f = file("max_sessions = 10\nstream_max_frame_size_mb = 2\nshutdown_grace_secs = 3\nallowed_origins = [\"https://a.example\", \"https://b.example\"]\n").unwrap();
        let e = env(&[("STREAMHOST_MAX_SESSIONS", "7")]);
        let (c, resolved) = load(&e, Some(&f)).unwrap();
        assert_eq!(c.max_sessions, 7);
        assert_eq!(c.max_frame_bytes, 2 << 20);
        assert_eq!(c.shutdown_grace, Duration::from_secs(3));
        assert_eq!(
            c.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
        let source = |name: &str| {
            resolved
                .settings
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, v, s)| (v.clone(), *s))
                .unwrap()
        };
        assert_eq!(
            source("STREAMHOST_MAX_SESSIONS"),
            ("7".into(), Source::Environment)
        );
        assert_eq!(
            source("STREAM_MAX_FRAME_SIZE_MB"),
            ("2".into(), Source::File)
        );
        assert_eq!(
            source("STREAMHOST_LISTEN"),
            ("127.0.0.1:8000".into(), Source::Default)
        );
    }

    #[test]
    fn mistakes_in_the_file_name_the_key() {
        assert_eq!(
            file("max_session = 3").unwrap_err(),
            ConfigFileError::UnknownKey {
                file: "s.toml".into(),
                key: "max_session".into()
            }
        );
        assert!(matches!(
            file("max_sessions = { a = 1 }"),
            Err(ConfigFileError::NotScalar { .. })
        ));
        assert!(matches!(
            file("max_sessions = "),
            Err(ConfigFileError::Syntax { .. })
        ));
        let bad = file("max_sessions = \"many\"").unwrap();
        let err = load(&env(&[]), Some(&bad)).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("config file s.toml: `max_sessions`: "),
            "{err}"
        );
        // The same bad value from the environment names the variable instead.
        let err = load(&env(&[("STREAMHOST_MAX_SESSIONS", "many")]), Some(&bad))
            .err()
            .unwrap();
        assert!(
            err.to_string().starts_with("STREAMHOST_MAX_SESSIONS="),
            "{err}"
        );
    }
}
