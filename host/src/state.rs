//! The state every request handler shares, and how a server builds it.
//!
//! [`AppState`] is built once at start (engine, pipelines, tenants, metrics,
//! limits) and cloned into each handler; the pipelines and tenants in it are
//! replaced while serving by [`crate::reload`]; a [`ConnectionSlot`] travels with
//! each connection. Both live apart from `server.rs`, the accept loop and
//! routes, because the session loop (`ws/`) needs them too: with them in
//! `server.rs`, `server` and `ws` imported each other.

use std::sync::Arc;

use tokio::sync::{watch, Semaphore};

use crate::config::{Config, Int8Resolved};
use crate::fair::FairSlots;
use crate::metrics::Metrics;
use crate::nodes::onnx::OnnxSizing;
use crate::pending::PendingConnections;
use crate::pipeline::exec::{ExecLimits, SessionRunner};
use crate::pipeline::int8_gate::GateSettings;
use crate::pipeline::loader::{Int8Choice, LoadContext};
use crate::pipeline::occupancy::Occupancy;
use crate::pipeline::plan::Plan;
use crate::pipeline::reconcile::{PassKind, Reconciler};
use crate::pipeline::PipelineRegistry;
use crate::reload::ReloadControl;
use crate::tenants::{LiveTenancy, Tenancy, TenantsError};
use crate::tls::TlsError;
use crate::wasm::{InstanceAllocation, InstanceLimits, SandboxLimits, WasmEngine};

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Arc<PipelineRegistry>,
    pub engine: Arc<WasmEngine>,
    pub metrics: Arc<Metrics>,
    /// The tenants file in force (replaced on reload).
    pub tenancy: Arc<LiveTenancy>,
    /// Reloads pipelines and tenants while serving (`serve` starts it).
    pub reload: Arc<ReloadControl>,
    /// WebSocket sessions, all tenants together (`STREAMHOST_MAX_SESSIONS`).
    pub sessions: Arc<Semaphore>,
    /// TCP connections (`STREAMHOST_MAX_CONNECTIONS`).
    pub connections: Arc<Semaphore>,
    /// Connections still waiting for their first request head (see `pending`).
    pub pending: Arc<PendingConnections>,
    /// Frames executing at once (`STREAMHOST_MAX_FRAMES_IN_FLIGHT`); FIFO, so
    /// sessions waiting for a turn are served in arrival order.
    /// The frame slots, shared fairly across tenants (see `fair`).
    pub admission: FairSlots,
    /// Frames executing now (at most the admission limit), which decides how
    /// many threads a frame's nodes may use.
    pub occupancy: Occupancy,
    /// Set when the server speaks HTTPS/WSS (`--tls-cert`, `--tls-key`).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub shutdown: watch::Receiver<bool>,
    /// Tells sessions to finish (see `server::serve`).
    pub(crate) shutdown_tx: Arc<watch::Sender<bool>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the Wasm engine: {0}")]
    Engine(String),
    #[error("cannot read the pipelines directory {dir}: {source}")]
    Pipelines { dir: String, source: std::io::Error },
    #[error("cannot create metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Tenants(#[from] TenantsError),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl AppState {
    /// Starts the engine and loads every pipeline (one [`Reconciler`] pass,
    /// the same that reloads them later); a pipeline that fails its
    /// checks is listed as failed, not fatal. It blocks (compiles components,
    /// opens models, runs the int8 gate, calls each node's `init`, which may
    /// make WASI calls that `block_on` the current runtime): call it from a
    /// plain thread or `spawn_blocking`, never on an async runtime's worker.
    pub fn build(config: Config) -> Result<Self, StartError> {
        // First: a bad certificate should not wait for every component to compile.
        let tls = crate::tls::acceptor(config.tls_cert.as_deref(), config.tls_key.as_deref())?;
        let engine = WasmEngine::with_allocation(
            SandboxLimits::from_config(&config),
            InstanceAllocation::from_pool_instances(config.wasm_pool_instances),
        )
        .map_err(|e| StartError::Engine(format!("{e:#}")))?
        .with_compile_cache(config.compile_cache_dir.clone());
        let engine = Arc::new(engine);
        let int8 = match config.int8_models_resolved(crate::cpu::has_int8_dot_product()) {
            Int8Resolved::Never(why) => Int8Choice::Never(why),
            Int8Resolved::Forced => Int8Choice::Forced,
            Int8Resolved::Gated => Int8Choice::Gated(Arc::new(GateSettings {
                frames_dir: config.int8_gate_frames.clone(),
                max_box_px: config.int8_gate_box_px,
                max_score_diff: config.int8_gate_score_diff,
                exec: exec_limits(&config),
                ort_lib: config.ort_lib.clone(),
            })),
        };
        let load = LoadContext {
            plugin_dir: config.plugin_dir.clone(),
            model_dir: config.model_dir.clone(),
            ort_lib: config.ort_lib.clone(),
            onnx: OnnxSizing::from_config(&config),
            int8,
        };
        // Before the pipelines: a bad tenants file should not wait for every component to compile.
        let tenancy = Tenancy::from_config(&config)?;
        let metrics = Arc::new(Metrics::new()?);
        let tenant_ids: Vec<String> = tenancy.tenants().iter().map(|t| t.id.clone()).collect();
        let registry = Arc::new(PipelineRegistry::default());
        let mut pipelines = Reconciler::new(
            config.pipelines_dir.clone(),
            load,
            engine.clone(),
            registry.clone(),
            metrics.clone(),
        );
        pipelines
            .pass(PassKind::Start, &tenant_ids)
            .map_err(|source| StartError::Pipelines {
                dir: config.pipelines_dir.display().to_string(),
                source,
            })?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let config = Arc::new(config);
        let tenancy = Arc::new(LiveTenancy::new(tenancy));
        let reload = Arc::new(ReloadControl::new(
            config.clone(),
            pipelines,
            tenancy.clone(),
            metrics.clone(),
        ));
        Ok(AppState {
            tenancy,
            reload,
            sessions: Arc::new(Semaphore::new(config.max_sessions)),
            connections: Arc::new(Semaphore::new(config.max_connections)),
            pending: PendingConnections::new(config.max_pending_per_address),
            admission: FairSlots::new(config.max_frames_in_flight_resolved()),
            occupancy: Occupancy::default(),
            tls,
            config,
            registry,
            engine,
            metrics,
            shutdown,
            shutdown_tx: Arc::new(shutdown_tx),
        })
    }

    pub fn exec_limits(&self) -> ExecLimits {
        exec_limits(&self.config)
    }

    /// A fresh executor for one session of `plan`, counted in this server's occupancy.
    pub fn runner(
        &self,
        plan: &Arc<Plan>,
        instance_limits: &[InstanceLimits],
        session_id: &str,
    ) -> SessionRunner {
        SessionRunner::new(
            plan.clone(),
            self.engine.clone(),
            self.exec_limits(),
            instance_limits.to_vec(),
            self.occupancy.clone(),
            session_id.to_string(),
        )
    }
}

fn exec_limits(config: &Config) -> ExecLimits {
    ExecLimits {
        max_frame_pixels: config.max_frame_pixels,
        max_result_bytes: config.max_result_bytes,
        node_threads: config.node_threads_resolved(),
    }
}

/// One of the `STREAMHOST_MAX_CONNECTIONS` slots, held by a connection and,
/// after an upgrade, by its WebSocket session.
#[derive(Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] pub(crate) Arc<tokio::sync::OwnedSemaphorePermit>);
