//! The `streamhost` binary: `streamhost serve` runs the server,
//! `streamhost check` loads every pipeline as `serve` would and reports,
//! `streamhost settings` prints every setting's effective value and where it
//! came from (flags > environment > `--config` file > defaults), and
//! `streamhost new-token` / `streamhost hash-token` make API tokens and the
//! digests a tenants file lists, and `streamhost new-node` writes a new node
//! and its pipeline.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use streamhost::config::Config;
use streamhost::config_file::{self, ConfigFile, Resolved};
use streamhost::pipeline::PipelineStatus;
use streamhost::scaffold::{new_node, Lang};
use streamhost::tenants::token_digest_hex;
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
        /// Config file (TOML; keys are the settings lower-cased without `streamhost_`).
        #[arg(long, env = "STREAMHOST_CONFIG")]
        config: Option<PathBuf>,
        /// Address to bind.
        #[arg(long, env = "STREAMHOST_LISTEN")]
        listen: Option<String>,
        /// Directory of pipeline manifests.
        #[arg(long, env = "STREAMHOST_PIPELINES_DIR")]
        pipelines: Option<PathBuf>,
        /// Directory relative component paths resolve against.
        #[arg(long, env = "STREAMHOST_PLUGIN_DIR")]
        plugins: Option<PathBuf>,
        /// Tenants file (TOML); without one the server is open and single-tenant.
        #[arg(long, env = "STREAMHOST_TENANTS_FILE")]
        tenants: Option<PathBuf>,
        /// PEM certificate chain: serve HTTPS and WSS (with --tls-key).
        #[arg(long, env = "STREAMHOST_TLS_CERT")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, env = "STREAMHOST_TLS_KEY")]
        tls_key: Option<PathBuf>,
    },
    /// Load every pipeline exactly as `serve` does, print each one's status and
    /// reasons, and exit 0 when all are ready, 1 when any is not (2: usage or
    /// a setting, the tenants file or the pipelines directory is unusable).
    Check {
        /// Config file (TOML; keys are the settings lower-cased without `streamhost_`).
        #[arg(long, env = "STREAMHOST_CONFIG")]
        config: Option<PathBuf>,
        /// Directory of pipeline manifests.
        #[arg(long, env = "STREAMHOST_PIPELINES_DIR")]
        pipelines: Option<PathBuf>,
        /// Directory relative component paths resolve against.
        #[arg(long, env = "STREAMHOST_PLUGIN_DIR")]
        plugins: Option<PathBuf>,
    },
    /// Print one line per setting: its name, its effective value and where
    /// it came from (environment, file or default).
    Settings {
        /// Config file (TOML; keys are the settings lower-cased without `streamhost_`).
        #[arg(long, env = "STREAMHOST_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Make a new random API token and print it with its SHA-256 digest.
    NewToken,
    /// Read a token from stdin (so it stays out of shell history) and print its digest.
    HashToken,
    /// Write a new node, plugins/NAME/, that builds as it is (`make plugins` makes NAME.wasm)
    /// and answers each frame with its index and size, and pipelines/NAME.toml running it.
    NewNode {
        /// The node's name: lowercase letters, digits and '_'; also the component NAME.wasm
        /// and the pipeline id.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum)]
        lang: Lang,
        /// The repository checkout to write into (it has plugins/ and pipelines/).
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Settings { config } => match load_config(config.as_deref()) {
            Ok((_, resolved)) => {
                for (name, value, source) in resolved.settings {
                    println!("{name}\t{value}\t{}", source.as_str());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("invalid setting: {e}");
                ExitCode::from(2)
            }
        },
        Command::NewToken => match new_token() {
            Ok(token) => {
                println!("token:        {token}");
                println!("token_sha256: {}", token_digest_hex(&token));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cannot read /dev/urandom: {e}");
                ExitCode::FAILURE
            }
        },
        Command::HashToken => {
            let mut token = String::new();
            match std::io::stdin().read_line(&mut token) {
                Ok(_) if !token.trim().is_empty() => {
                    println!("{}", token_digest_hex(token.trim()));
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!(
                        "give the token on stdin, e.g. echo -n TOKEN | streamhost hash-token"
                    );
                    ExitCode::from(2)
                }
            }
        }
        Command::NewNode { name, lang, root } => match new_node(&root, &name, lang) {
            Ok(created) => {
                println!("wrote, under {}:", root.display());
                for file in &created.files {
                    println!("  {}", file.display());
                }
                println!("next:");
                print!("{}", created.next_steps);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("new-node: {e}");
                ExitCode::from(2)
            }
        },
        Command::Check {
            config,
            pipelines,
            plugins,
        } => {
            let mut config = match load_config(config.as_deref()) {
                Ok((c, _)) => c,
                Err(e) => {
                    eprintln!("invalid setting: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(p) = pipelines {
                config.pipelines_dir = p;
            }
            if let Some(p) = plugins {
                config.plugin_dir = p;
            }
            check(config)
        }
        Command::Serve {
            config,
            listen,
            pipelines,
            plugins,
            tenants,
            tls_cert,
            tls_key,
        } => {
            logging::init();
            let mut config = match load_config(config.as_deref()) {
                Ok((c, _)) => c,
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
            if let Some(t) = tenants.filter(|t| !t.as_os_str().is_empty()) {
                config.tenants_file = Some(t);
            }
            if let Some(c) = tls_cert.filter(|c| !c.as_os_str().is_empty()) {
                config.tls_cert = Some(c);
            }
            if let Some(k) = tls_key.filter(|k| !k.as_os_str().is_empty()) {
                config.tls_key = Some(k);
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

/// The settings from the environment over the config file (when given) over
/// the defaults; flags are applied by each command after.
fn load_config(file: Option<&std::path::Path>) -> Result<(Config, Resolved), String> {
    let file = match file.filter(|f| !f.as_os_str().is_empty()) {
        Some(path) => Some(ConfigFile::read(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let env = |name: &str| std::env::var(name).ok();
    config_file::load(&env, file.as_ref()).map_err(|e| e.to_string())
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listen = config.listen.clone();
        let int8_models = format!("{:?}", config.int8_models);
        let cpu = streamhost::cpu::kernel_features();
        // Loading blocks (compiling components, opening models, the int8 gate, WASI
        // calls in `init`), so it runs off the runtime's worker threads.
        let state = tokio::task::spawn_blocking(move || AppState::build(config)).await??;
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        tracing::info!(listen = %listener.local_addr()?, pipelines = state.registry.len(),
            ready = state.registry.ready_count(), version = env!("CARGO_PKG_VERSION"), %int8_models, %cpu, tls = state.tls.is_some(), "streamhost listening");
        let scheme = if state.tls.is_some() { "https" } else { "http" };
        tracing::info!(url = %format!("{scheme}://{}/", listener.local_addr()?), "live view");
        if state.tenancy.is_open() {
            tracing::warn!("no tenants file: running single-tenant and open (no API token needed); set STREAMHOST_TENANTS_FILE for multi-tenant use");
        } else {
            let tenants: Vec<String> = state.tenancy.tenants().iter().map(|t| t.id.clone()).collect();
            tracing::info!(tenants = ?tenants, "tenants loaded; clients must present an API token");
        }
        serve(listener, state, shutdown_signal()).await?;
        Ok(())
    })
}

/// `streamhost check`: the same start-up as `serve` (`AppState::build`, which
/// loads and checks every manifest, compiles every component, opens every
/// model and runs the int8 gate), then one line per pipeline instead of a
/// listener: `ID<TAB>ready` or `ID<TAB>failed<TAB>REASON`, plus the int8
/// choice where a pipeline has int8 variants.
fn check(config: Config) -> ExitCode {
    let dir = config.pipelines_dir.display().to_string();
    let state = match AppState::build(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot check: {e}");
            return ExitCode::from(2);
        }
    };
    if state.registry.is_empty() {
        println!("no pipeline manifests (*.toml) in {dir}");
    }
    let mut all_ready = true;
    for p in state.registry.all() {
        match &p.status {
            PipelineStatus::Ready => println!("{}\tready", p.id),
            PipelineStatus::Failed(reason) => {
                all_ready = false;
                println!("{}\tfailed\t{reason}", p.id);
            }
        }
        if let Some(int8) = &p.int8 {
            let runs = if int8.runs {
                "int8 models"
            } else {
                "fp32 models"
            };
            println!("{}\t{runs}\t{}", p.id, int8.reason);
        }
    }
    if all_ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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

/// 32 random bytes from the OS, URL-safe (hex), fit for a header, a query
/// parameter or a `bearer.<token>` subprotocol.
fn new_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(format!("sh_{}", streamhost::tenants::hex(&bytes)))
}
