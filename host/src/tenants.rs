//! Tenants: who may connect, to which pipelines, with what quotas.
//!
//! An operator declares tenants in a TOML file (`STREAMHOST_TENANTS_FILE` or
//! `--tenants`). Each tenant lists the SHA-256 digests of its API tokens, never
//! the tokens themselves, so the file can be read by more people than may use
//! the tokens, and a leaked file grants nothing. A presented token is hashed
//! once and looked up by digest: the lookup compares digests, not secrets,
//! so its timing tells an attacker nothing about any token. Tokens are
//! expected to be long random strings (`streamhost new-token` makes one); a
//! slow password hash would only matter for guessable secrets.
//!
//! Without a tenants file the server is open and single-tenant: every client
//! is the tenant `default`, with the server-wide limits as its quotas.
//!
//! ```toml
//! [[tenants]]
//! id = "acme"
//! token_sha256 = ["<64 hex digits>"]   # several digests allow rotation
//! pipelines = ["frame_info", "ocr"]    # or ["*"]
//! max_sessions = 4                     # concurrent WebSocket sessions
//! max_fps = 15.0                       # frames per second, per session
//! wasm_memory_mb = 32                  # per Wasm node instance
//! wasm_call_timeout_ms = 500           # per call into a Wasm node
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{Config, MAX_FPS};
use crate::pipeline::manifest::valid_id;
use crate::wasm::InstanceLimits;

/// The tenant every client is when no tenants file is configured.
pub const OPEN_TENANT: &str = "default";

/// Why the tenants file cannot be used. The server refuses to start on any of these.
#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    #[error("cannot read the tenants file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the tenants file {path} is not valid: {reason}")]
    Parse { path: String, reason: String },
    #[error("tenant '{tenant}': {reason}")]
    Invalid { tenant: String, reason: String },
}

/// Why a client was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("an API token is required (Authorization: Bearer, the access_token query parameter, or the bearer.<token> subprotocol)")]
    Missing,
    #[error("the API token is not valid")]
    Invalid,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    #[serde(default)]
    tenants: Vec<TenantEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantEntry {
    id: String,
    token_sha256: Vec<String>,
    pipelines: Vec<String>,
    max_sessions: Option<usize>,
    max_fps: Option<f64>,
    wasm_memory_mb: Option<u64>,
    wasm_call_timeout_ms: Option<u64>,
}

/// What one tenant may use. Server-wide limits still apply on top.
#[derive(Debug, Clone, PartialEq)]
pub struct Quotas {
    pub max_sessions: usize,
    /// Frames per second per session; `None` is unlimited.
    pub max_fps: Option<f64>,
    /// Ceiling for one Wasm node instance: its memory and each call's time.
    pub wasm: InstanceLimits,
}

/// One tenant, shared by all its sessions.
#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    /// `None`: every pipeline.
    pipelines: Option<Vec<String>>,
    pub quotas: Quotas,
    sessions: Arc<Semaphore>,
}

impl Tenant {
    pub fn may_use(&self, pipeline_id: &str) -> bool {
        match &self.pipelines {
            None => true,
            Some(list) => list.iter().any(|p| p == pipeline_id),
        }
    }

    /// A session slot, or `None` when the tenant is at its `max_sessions`.
    pub fn try_session(&self) -> Option<OwnedSemaphorePermit> {
        self.sessions.clone().try_acquire_owned().ok()
    }
}

/// The server's tenancy: open, or a set of tenants found by token digest.
#[derive(Debug)]
pub enum Tenancy {
    Open(Arc<Tenant>),
    Tenants {
        by_digest: HashMap<[u8; 32], Arc<Tenant>>,
        all: Vec<Arc<Tenant>>,
    },
}

impl Tenancy {
    /// Open mode: one tenant, the server-wide limits as quotas.
    pub fn open(config: &Config) -> Self {
        let quotas = server_quotas(config);
        Tenancy::Open(Arc::new(Tenant {
            id: OPEN_TENANT.into(),
            pipelines: None,
            sessions: Arc::new(Semaphore::new(quotas.max_sessions)),
            quotas,
        }))
    }

    /// Reads the tenants file named in the config, or opens the server if none is.
    pub fn from_config(config: &Config) -> Result<Self, TenantsError> {
        match &config.tenants_file {
            None => Ok(Tenancy::open(config)),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| TenantsError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Tenancy::parse(&text, path, config)
            }
        }
    }

    pub fn parse(text: &str, path: &Path, config: &Config) -> Result<Self, TenantsError> {
        let file: TenantsFile = toml::from_str(text).map_err(|e| TenantsError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let ceiling = server_quotas(config);
        let mut by_digest = HashMap::new();
        let mut all = Vec::new();
        for entry in file.tenants {
            let (tenant, digests) = build_tenant(entry, &ceiling)?;
            let tenant = Arc::new(tenant);
            if all.iter().any(|t: &Arc<Tenant>| t.id == tenant.id) {
                return Err(invalid(&tenant.id, "declared twice"));
            }
            all.push(tenant.clone());
            for digest in digests {
                if by_digest.insert(digest, tenant.clone()).is_some() {
                    return Err(invalid(
                        &tenant.id,
                        "a token digest is also listed for another tenant",
                    ));
                }
            }
        }
        if all.is_empty() {
            return Err(TenantsError::Parse {
                path: path.display().to_string(),
                reason: "no [[tenants]] declared (remove the setting to run open)".into(),
            });
        }
        Ok(Tenancy::Tenants { by_digest, all })
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Tenancy::Open(_))
    }

    /// Every tenant (for metrics and start-up logs).
    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        match self {
            Tenancy::Open(t) => vec![t.clone()],
            Tenancy::Tenants { all, .. } => all.clone(),
        }
    }

    /// Finds the tenant a token belongs to. Open mode ignores any token.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Arc<Tenant>, AuthError> {
        match self {
            Tenancy::Open(t) => Ok(t.clone()),
            Tenancy::Tenants { by_digest, .. } => {
                let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
                by_digest
                    .get(&token_digest(token))
                    .cloned()
                    .ok_or(AuthError::Invalid)
            }
        }
    }
}

/// SHA-256 of a token, as stored in the tenants file.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The hex form the tenants file uses.
pub fn token_digest_hex(token: &str) -> String {
    hex(&token_digest(token))
}

/// Lower-case hex of `bytes` (digests in the tenants file, new tokens).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn server_quotas(config: &Config) -> Quotas {
    Quotas {
        max_sessions: config.max_sessions,
        max_fps: Some(config.max_session_fps).filter(|f| *f > 0.0),
        wasm: InstanceLimits {
            memory_bytes: config.wasm_memory_bytes,
            call_timeout: config.wasm_call_timeout,
        },
    }
}

fn invalid(tenant: &str, reason: impl Into<String>) -> TenantsError {
    TenantsError::Invalid {
        tenant: tenant.to_string(),
        reason: reason.into(),
    }
}

/// A tenant and its token digests. Quotas may be tighter than the server's, never looser.
fn build_tenant(e: TenantEntry, ceiling: &Quotas) -> Result<(Tenant, Vec<[u8; 32]>), TenantsError> {
    if !valid_id(&e.id) {
        return Err(invalid(
            &e.id,
            "id must be 1-64 characters of [A-Za-z0-9_-]",
        ));
    }
    if e.token_sha256.is_empty() {
        return Err(invalid(&e.id, "token_sha256 lists no digest"));
    }
    let digests = e
        .token_sha256
        .iter()
        .map(|d| {
            parse_digest(d).ok_or_else(|| {
                invalid(
                    &e.id,
                    "token_sha256 entries must be 64 hex digits (streamhost hash-token)",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pipelines = if e.pipelines.iter().any(|p| p == "*") {
        None
    } else if e.pipelines.is_empty() {
        return Err(invalid(&e.id, "pipelines is empty (use [\"*\"] for all)"));
    } else {
        Some(e.pipelines.clone())
    };
    let max_sessions = e.max_sessions.unwrap_or(ceiling.max_sessions);
    if max_sessions == 0 || max_sessions > ceiling.max_sessions {
        return Err(invalid(
            &e.id,
            format!(
                "max_sessions must be in 1..={} (STREAMHOST_MAX_SESSIONS)",
                ceiling.max_sessions
            ),
        ));
    }
    let max_fps = match e.max_fps {
        None => ceiling.max_fps,
        Some(f) if f > 0.0 && f <= MAX_FPS => Some(ceiling.max_fps.map_or(f, |c: f64| c.min(f))),
        Some(_) => return Err(invalid(&e.id, format!("max_fps must be in (0, {MAX_FPS}]"))),
    };
    let wasm_memory_bytes = match e.wasm_memory_mb {
        None => ceiling.wasm.memory_bytes,
        Some(mb) => {
            let bytes = (mb as usize).saturating_mul(1 << 20);
            if mb == 0 || bytes > ceiling.wasm.memory_bytes {
                return Err(invalid(
                    &e.id,
                    format!(
                        "wasm_memory_mb must be in 1..={} (STREAMHOST_WASM_MEMORY_MB)",
                        ceiling.wasm.memory_bytes >> 20
                    ),
                ));
            }
            bytes
        }
    };
    let wasm_call_timeout = match e.wasm_call_timeout_ms {
        None => ceiling.wasm.call_timeout,
        Some(ms) => {
            let t = Duration::from_millis(ms);
            if ms == 0 || t > ceiling.wasm.call_timeout {
                return Err(invalid(
                    &e.id,
                    format!(
                        "wasm_call_timeout_ms must be in 1..={} (STREAMHOST_WASM_CALL_TIMEOUT_MS)",
                        ceiling.wasm.call_timeout.as_millis()
                    ),
                ));
            }
            t
        }
    };
    let tenant = Tenant {
        id: e.id,
        pipelines,
        sessions: Arc::new(Semaphore::new(max_sessions)),
        quotas: Quotas {
            max_sessions,
            max_fps,
            wasm: InstanceLimits {
                memory_bytes: wasm_memory_bytes,
                call_timeout: wasm_call_timeout,
            },
        },
    };
    Ok((tenant, digests))
}

fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tenancy, TenantsError> {
        Tenancy::parse(text, Path::new("tenants.toml"), &Config::default())
    }

    fn file(a: &str, b: &str) -> String {
        format!(
            "[[tenants]]\nid = \"a\"\ntoken_sha256 = [\"{}\"]\npipelines = [\"frame_info\"]\nmax_sessions = 2\nmax_fps = 5.0\nwasm_memory_mb = 16\n\n\
             [[tenants]]\nid = \"b\"\ntoken_sha256 = [\"{}\"]\npipelines = [\"*\"]\n",
            token_digest_hex(a),
            token_digest_hex(b)
        )
    }

    #[test]
    fn tokens_find_their_tenant_and_nothing_else() {
        let t = match parse(&file("secret-a", "secret-b")) {
            Ok(t) => t,
            Err(e) => return assert_eq!(e.to_string(), ""),
        };
        let a = t.authenticate(Some("secret-a")).map(|t| t.id.clone());
        assert_eq!(a.as_deref(), Ok("a"));
        assert_eq!(
            t.authenticate(Some("secret-b")).map(|t| t.id.clone()),
            Ok("b".to_string())
        );
        assert_eq!(
            t.authenticate(Some("secret-c")).err(),
            Some(AuthError::Invalid)
        );
        assert_eq!(t.authenticate(None).err(), Some(AuthError::Missing));
        assert_eq!(t.authenticate(Some("")).err(), Some(AuthError::Missing));
        let Ok(a) = t.authenticate(Some("secret-a")) else {
            return;
        };
        assert!(a.may_use("frame_info"));
        assert!(!a.may_use("ocr"));
        assert_eq!(a.quotas.max_fps, Some(5.0));
        assert_eq!(a.quotas.wasm.memory_bytes, 16 << 20);
        let (s1, s2, s3) = (a.try_session(), a.try_session(), a.try_session());
        assert!(s1.is_some() && s2.is_some() && s3.is_none());
        drop(s1);
        assert!(a.try_session().is_some());
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let d = token_digest_hex("x");
        for (text, needle) in [
            ("[[tenants]]\nid = \"a\"\ntoken_sha256 = [\"abc\"]\npipelines = [\"*\"]\n", "64 hex"),
            (&format!("[[tenants]]\nid = \"a b\"\ntoken_sha256 = [\"{d}\"]\npipelines = [\"*\"]\n"), "id must"),
            (&format!("[[tenants]]\nid = \"a\"\ntoken_sha256 = [\"{d}\"]\npipelines = []\n"), "pipelines is empty"),
            (&format!("[[tenants]]\nid = \"a\"\ntoken_sha256 = [\"{d}\"]\npipelines = [\"*\"]\nwasm_memory_mb = 100000\n"), "wasm_memory_mb"),
            (&format!("[[tenants]]\nid = \"a\"\ntoken_sha256 = [\"{d}\"]\npipelines = [\"*\"]\n[[tenants]]\nid = \"b\"\ntoken_sha256 = [\"{d}\"]\npipelines = [\"*\"]\n"), "another tenant"),
            (&format!("[[tenants]]\nid = \"a\"\ntoken_sha256 = [\"{d}\"]\npipelines = [\"*\"]\ncolour = 1\n"), "unknown field"),
            ("", "no [[tenants]]"),
        ] {
            let err = parse(text).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn open_mode_lets_everyone_in_as_default() {
        let t = Tenancy::open(&Config::default());
        assert!(t.is_open());
        let who = t.authenticate(None).map(|t| t.id.clone());
        assert_eq!(who.as_deref(), Ok(OPEN_TENANT));
        assert_eq!(
            token_digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
