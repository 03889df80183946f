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
//! The file is reloaded while serving (`crate::reload`): [`LiveTenancy`]
//! holds the tenancy in force and tells every session when it is replaced.
//! A session remembers the digest it authenticated with and ends (1008) when
//! the new file no longer gives that digest to its tenant
//! ([`Tenancy::still_admits`]); new quotas apply to sessions opened after
//! the reload. A tenant's count of open sessions is carried from one file to
//! the next by id, so a reload neither forgets the sessions open nor lets a
//! lowered `max_sessions` cut any: it refuses new ones until enough close.
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::config::{Config, MAX_FPS};
use crate::pipeline::manifest::valid_id;
use crate::wasm::InstanceLimits;

/// The tenant every client is when no tenants file is configured.
pub const OPEN_TENANT: &str = "default";

/// Why the tenants file cannot be used. The server refuses to start on any of
/// these; a reload that meets one keeps the file in force.
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
    /// Sessions open now; shared with this tenant id's entry in later files.
    active: Arc<AtomicUsize>,
}

/// One of a tenant's `max_sessions`, held for a session's life.
#[derive(Debug)]
pub struct TenantSlot(Arc<AtomicUsize>);

impl Drop for TenantSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Tenant {
    pub fn may_use(&self, pipeline_id: &str) -> bool {
        match &self.pipelines {
            None => true,
            Some(list) => list.iter().any(|p| p == pipeline_id),
        }
    }

    /// A session slot, or `None` when the tenant is at its `max_sessions`.
    pub fn try_session(&self) -> Option<TenantSlot> {
        let max = self.quotas.max_sessions;
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| TenantSlot(self.active.clone()))
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
            active: Arc::default(),
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
        Tenancy::parse_after(text, path, config, None)
    }

    /// Like [`parse`](Self::parse), for a file replacing `previous`: each
    /// tenant id keeps its count of open sessions.
    pub fn parse_after(
        text: &str,
        path: &Path,
        config: &Config,
        previous: Option<&Tenancy>,
    ) -> Result<Self, TenantsError> {
        let file: TenantsFile = toml::from_str(text).map_err(|e| TenantsError::Parse {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let ceiling = server_quotas(config);
        let mut by_digest = HashMap::new();
        let mut all = Vec::new();
        for entry in file.tenants {
            let (mut tenant, digests) = build_tenant(entry, &ceiling)?;
            if let Some(before) = previous
                .into_iter()
                .flat_map(Tenancy::tenants)
                .find(|t| t.id == tenant.id)
            {
                tenant.active = before.active.clone();
            }
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
        self.identify(token).map(|(tenant, _)| tenant)
    }

    /// Like [`authenticate`](Self::authenticate), with the token's digest
    /// (`None` in open mode), which a session keeps to learn of revocation.
    pub fn identify(
        &self,
        token: Option<&str>,
    ) -> Result<(Arc<Tenant>, Option<[u8; 32]>), AuthError> {
        match self {
            Tenancy::Open(t) => Ok((t.clone(), None)),
            Tenancy::Tenants { by_digest, .. } => {
                let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
                let digest = token_digest(token);
                by_digest
                    .get(&digest)
                    .map(|t| (t.clone(), Some(digest)))
                    .ok_or(AuthError::Invalid)
            }
        }
    }

    /// Whether a session of `tenant` that authenticated with `digest` may go
    /// on under this tenancy: the digest is still listed, for that tenant.
    pub fn still_admits(&self, tenant: &str, digest: Option<&[u8; 32]>) -> bool {
        match self {
            Tenancy::Open(t) => t.id == tenant,
            Tenancy::Tenants { by_digest, .. } => digest
                .and_then(|d| by_digest.get(d))
                .is_some_and(|t| t.id == tenant),
        }
    }
}

/// The tenancy in force, replaced when the tenants file is reloaded; every
/// session subscribes to learn of replacements.
#[derive(Debug)]
pub struct LiveTenancy {
    tx: watch::Sender<Arc<Tenancy>>,
}

impl LiveTenancy {
    pub fn new(tenancy: Tenancy) -> Self {
        LiveTenancy {
            tx: watch::Sender::new(Arc::new(tenancy)),
        }
    }

    /// The tenancy in force now.
    pub fn current(&self) -> Arc<Tenancy> {
        self.tx.borrow().clone()
    }

    /// Notified each time the tenancy is replaced.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Tenancy>> {
        self.tx.subscribe()
    }

    /// Puts `tenancy` in force and tells every session.
    pub fn replace(&self, tenancy: Tenancy) {
        self.tx.send_replace(Arc::new(tenancy));
    }

    pub fn is_open(&self) -> bool {
        self.current().is_open()
    }

    pub fn tenants(&self) -> Vec<Arc<Tenant>> {
        self.current().tenants()
    }

    /// See [`Tenancy::identify`].
    pub fn identify(
        &self,
        token: Option<&str>,
    ) -> Result<(Arc<Tenant>, Option<[u8; 32]>), AuthError> {
        self.current().identify(token)
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
        active: Arc::default(),
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
    fn a_reloaded_file_keeps_open_sessions_counted_and_drops_revoked_digests() {
        let text = |digests: &[&str], max: usize| {
            let list: Vec<String> = digests
                .iter()
                .map(|t| format!("\"{}\"", token_digest_hex(t)))
                .collect();
            format!(
                "[[tenants]]\nid = \"a\"\ntoken_sha256 = [{}]\npipelines = [\"*\"]\nmax_sessions = {max}\n",
                list.join(", ")
            )
        };
        let before = match parse(&text(&["one", "two"], 2)) {
            Ok(t) => t,
            Err(e) => return assert_eq!(e.to_string(), ""),
        };
        let Ok((a, Some(one))) = before.identify(Some("one")) else {
            return assert!(before.identify(Some("one")).is_ok());
        };
        let held = (a.try_session(), a.try_session());
        assert!(held.0.is_some() && held.1.is_some() && a.try_session().is_none());
        let Ok((_, Some(two))) = before.identify(Some("two")) else {
            return assert!(before.identify(Some("two")).is_ok());
        };
        let after = Tenancy::parse_after(
            &text(&["two"], 3),
            Path::new("tenants.toml"),
            &Config::default(),
            Some(&before),
        );
        let after = match after {
            Ok(t) => t,
            Err(e) => return assert_eq!(e.to_string(), ""),
        };
        assert!(!after.still_admits("a", Some(&one)), "revoked");
        assert!(after.still_admits("a", Some(&two)));
        assert!(!after.still_admits("b", Some(&two)), "another tenant's");
        assert_eq!(
            after.authenticate(Some("one")).err(),
            Some(AuthError::Invalid)
        );
        // The two sessions open still count against the raised quota of 3.
        let Ok(a2) = after.authenticate(Some("two")) else {
            return;
        };
        let third = a2.try_session();
        assert!(third.is_some() && a2.try_session().is_none());
        drop(held);
        assert!(a2.try_session().is_some());
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
