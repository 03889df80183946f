//! JSON log lines through `tracing`, filtered by `RUST_LOG` (default `info`).
//!
//! The layer is built by a function that takes any writer so tests can
//! capture exactly what an operator would see, rather than asserting on a mock.
//! Field names are stable: `session_id`, `pipeline_id`, `frame_index`,
//! `node_id`, `error`, `detail`.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// A JSON formatting layer writing to `writer`.
pub fn json_layer<W>(writer: W) -> impl Layer<Registry> + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_writer(writer)
}

/// `RUST_LOG` if set and valid, else `info`.
pub fn env_filter() -> EnvFilter {
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs JSON logging on stdout for the process. Harmless if called twice.
pub fn init() {
    let _ = tracing_subscriber::registry()
        .with(json_layer(std::io::stdout).with_filter(env_filter()))
        .try_init();
}
