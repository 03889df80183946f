//! The `streamhost` binary: `streamhost serve` runs the server,
//! `streamhost settings` prints every setting with its default.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use streamhost::config::{Config, SETTINGS};
use streamhost::{logging, serve, AppState};

#[derive(Parser)]
#[command(
    name = "streamhost",
    version,
    about = "Live video analysis over WebSocket"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the pipelines and serve HTTP and WebSocket clients.
    Serve {
        /// Address to bind.
        #[arg(long, env = "STREAMHOST_LISTEN")]
        listen: Option<String>,
        /// Directory of pipeline manifests.
        #[arg(long, env = "STREAMHOST_PIPELINES_DIR")]
        pipelines: Option<PathBuf>,
        /// Directory relative component paths resolve against.
        #[arg(long, env = "STREAMHOST_PLUGIN_DIR")]
        plugins: Option<PathBuf>,
    },
    /// Print every setting, its environment variable and default.
    Settings,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Settings => {
            for s in SETTINGS {
                println!("{:<34} {:<16} {}", s.env, s.default, s.meaning);
            }
            ExitCode::SUCCESS
        }
        Command::Serve {
            listen,
            pipelines,
            plugins,
        } => {
            logging::init();
            let mut config = match Config::from_env() {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "invalid setting");
                    return ExitCode::from(2);
                }
            };
            if let Some(l) = listen {
                config.listen = l;
            }
            if let Some(p) = pipelines {
                config.pipelines_dir = p;
            }
            if let Some(p) = plugins {
                config.plugin_dir = p;
            }
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "server failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listen = config.listen.clone();
        let state = AppState::build(config)?;
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        tracing::info!(listen = %listener.local_addr()?, pipelines = state.registry.len(),
            ready = state.registry.ready_count(), version = env!("CARGO_PKG_VERSION"), "streamhost listening");
        serve(listener, state, shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
