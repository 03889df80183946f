//! The HTTP side: routes, shared state, and the serve loop with graceful shutdown.
//!
//! Shaped like mini-redis: [`serve`] takes an already-bound listener and a
//! shutdown future, so tests start a real server on an ephemeral port and stop
//! it when they like, and `main` wires the same function to SIGTERM/Ctrl-C.
//! On shutdown the listener stops accepting, every session is told (a `watch`
//! channel) to finish its frame in flight and close with code 1001, and
//! `serve` returns once sessions are gone or the grace period has passed.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::nodes::onnx::OnnxSizing;
use crate::pipeline::exec::ExecLimits;
use crate::pipeline::registry::LoadContext;
use crate::pipeline::{PipelineRegistry, PipelineStatus};
use crate::wasm::{SandboxLimits, WasmEngine};
use crate::ws;

/// Everything a request handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub registry: Arc<PipelineRegistry>,
    pub engine: Arc<WasmEngine>,
    pub metrics: Arc<Metrics>,
    pub connections: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    shutdown_tx: Arc<watch::Sender<bool>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the Wasm engine: {0}")]
    Engine(String),
    #[error("cannot read the pipelines directory {dir}: {source}")]
    Pipelines { dir: String, source: std::io::Error },
    #[error("cannot create metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl AppState {
    /// Starts the engine and loads every pipeline; a pipeline that fails its
    /// checks is listed as failed, not fatal.
    pub fn build(config: Config) -> Result<Self, StartError> {
        let engine = WasmEngine::new(SandboxLimits {
            call_timeout: config.wasm_call_timeout,
            memory_bytes: config.wasm_memory_bytes,
            epoch_tick: config.wasm_epoch_tick,
            max_stack_bytes: config.wasm_max_stack_bytes,
        })
        .map_err(|e| StartError::Engine(format!("{e:#}")))?;
        let load = LoadContext {
            plugin_dir: config.plugin_dir.clone(),
            model_dir: config.model_dir.clone(),
            ort_lib: config.ort_lib.clone(),
            onnx: OnnxSizing {
                intra_threads: config.onnx_threads_resolved(),
                sessions: config.onnx_sessions_resolved(),
            },
        };
        let registry = PipelineRegistry::load_dir(&config.pipelines_dir, &load, &engine).map_err(
            |source| StartError::Pipelines {
                dir: config.pipelines_dir.display().to_string(),
                source,
            },
        )?;
        let metrics = Metrics::new()?;
        for p in registry.all() {
            if p.status == PipelineStatus::Ready {
                metrics.register_pipeline(&p.id);
            }
        }
        let (shutdown_tx, shutdown) = watch::channel(false);
        Ok(AppState {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            config: Arc::new(config),
            registry: Arc::new(registry),
            engine: Arc::new(engine),
            metrics: Arc::new(metrics),
            shutdown,
            shutdown_tx: Arc::new(shutdown_tx),
        })
    }

    pub fn exec_limits(&self) -> ExecLimits {
        ExecLimits {
            max_frame_pixels: self.config.max_frame_pixels,
            max_result_bytes: self.config.max_result_bytes,
        }
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/pipelines", get(pipelines))
        .route("/ws/video/stream", get(ws::upgrade))
        .with_state(state)
}

/// Serves until `shutdown` resolves, then drains sessions (see module docs).
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tx = state.shutdown_tx.clone();
    let app = router(state.clone());
    let signal = async move {
        shutdown.await;
        tracing::info!("shutdown requested: refusing new connections, draining sessions");
        let _ = tx.send(true);
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await?;
    // Upgraded WebSocket connections are not tracked by axum; wait for ours.
    let deadline = Instant::now() + state.config.shutdown_grace + std::time::Duration::from_secs(1);
    while state.metrics.sessions_active.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tracing::info!(
        sessions_left = state.metrics.sessions_active.get(),
        "server stopped"
    );
    Ok(())
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let ready = state.registry.ready_count();
    let total = state.registry.len();
    Json(json!({
        "status": if ready == total { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "pipelines": total,
        "pipelines_ready": ready,
        "sessions_active": state.metrics.sessions_active.get(),
    }))
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn pipelines(State(state): State<AppState>) -> Json<serde_json::Value> {
    let list: Vec<_> = state
        .registry
        .all()
        .map(|p| {
            let (status, reason) = match &p.status {
                PipelineStatus::Ready => ("ready", None),
                PipelineStatus::Failed(r) => ("failed", Some(r.clone())),
            };
            json!({
                "id": p.id,
                "description": p.description,
                "status": status,
                "reason": reason,
                "nodes": p.nodes,
            })
        })
        .collect();
    Json(json!({ "pipelines": list }))
}

/// The JSON body for HTTP-level refusals (before any WebSocket exists).
pub fn refusal(status: StatusCode, error: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": error, "detail": detail.into() })),
    )
        .into_response()
}
