//! Every limit and default the server has, declared once, each settable by an
//! environment variable.
//!
//! The wire contract's own variables (`STREAM_MAX_FRAME_SIZE_MB`,
//! `STREAM_SLOWDOWN_THRESHOLD`) keep the seed's names; everything the seed did
//! not name is prefixed `STREAMHOST_`. Settings are read through an injectable
//! lookup function so tests can exercise parsing without touching the process
//! environment, and [`SETTINGS`] is the single documented table that both
//! `streamhost settings` and the README print.

use std::path::PathBuf;
use std::time::Duration;

/// Why a setting could not be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{name}={value:?} is not a valid {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{name}={value} is out of range: {why}")]
    OutOfRange {
        name: &'static str,
        value: String,
        why: &'static str,
    },
}

impl ConfigError {
    /// The environment variable of the setting that is wrong.
    pub fn name(&self) -> &'static str {
        match self {
            ConfigError::Invalid { name, .. } | ConfigError::OutOfRange { name, .. } => name,
        }
    }
}

/// One documented setting: its variable, default (as text) and meaning.
pub struct SettingDoc {
    pub env: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// The highest frames-per-second quota a server or tenant may set.
pub const MAX_FPS: f64 = 10_000.0;

/// The most threads one native node may split a frame's work over.
pub const MAX_NODE_THREADS: usize = 64;

/// Most slots `STREAMHOST_WASM_POOL_INSTANCES` may ask for: about 8 GiB of
/// address space each (`wasm/engine.rs`), so 8192 reserve 64 TiB of the
/// 128 TiB a process may address.
pub const MAX_WASM_POOL_INSTANCES: usize = 8192;

/// The most model runs one `onnx` node makes for one frame's ragged batch
/// (the most boxes `text_crop` may crop, so every shipped layout fits).
pub const MAX_RAGGED_RUNS: usize = 1000;

/// After the server closes a session for shutdown, how long it waits for the
/// client's close frame before dropping the socket. Dropping it at once reset
/// connections whose client had a frame on the wire, and a proxy in between
/// (nginx) then lost the close frame it had not forwarded yet, so the client
/// never saw 1001 (measured in the rolling-update test, about one run in four).
pub const CLOSE_HANDSHAKE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The documented table of every setting. Keep in step with [`Config::from_lookup`].
/// Most compiled components `STREAMHOST_COMPILE_CACHE_DIR` keeps (the oldest go first).
pub const MAX_COMPILE_CACHE_FILES: usize = 64;

pub const SETTINGS: &[SettingDoc] = &[
    SettingDoc { env: "STREAMHOST_LISTEN", default: "127.0.0.1:8000", meaning: "Address the HTTP/WebSocket server binds (also `--listen`)." },
    SettingDoc { env: "STREAMHOST_PIPELINES_DIR", default: "pipelines", meaning: "Directory of pipeline manifests (`*.toml`) loaded at start and reloaded while serving (see `STREAMHOST_RELOAD`; also `--pipelines`)." },
    SettingDoc { env: "STREAMHOST_PLUGIN_DIR", default: "target/plugins", meaning: "Directory that relative `component` paths in manifests resolve against (also `--plugins`)." },
    SettingDoc { env: "STREAMHOST_MODEL_DIR", default: "models", meaning: "Directory that relative `model` paths of `onnx` nodes resolve against (`make models` fills it)." },
    SettingDoc { env: "STREAMHOST_ORT_LIB", default: ".deps/onnxruntime/libonnxruntime.so", meaning: "ONNX Runtime shared library loaded at start (`ORT_DYLIB_PATH` is honoured when this is unset)." },
    SettingDoc { env: "STREAMHOST_ONNX_THREADS", default: "0", meaning: "Intra-op threads per ONNX Runtime session. 0: a frame executing alone runs each model on a session with one thread per available core, frames executing concurrently on single-thread sessions; N: every session has N threads." },
    SettingDoc { env: "STREAMHOST_NODE_THREADS", default: "0", meaning: "Threads one native node (normalising, text crops, argmax) may split one frame's work over while that frame is the only one executing, and with 2 or more a to_tensor that reads only the decoded image runs beside the decoder on rows already decoded; 0 means one per available core, at most 4; 1 keeps it all on the frame's thread; at most 64." },
    SettingDoc { env: "STREAMHOST_INT8_MODELS", default: "auto", meaning: "Whether an `onnx` node's `int8_model` replaces its `model`: `auto` where the CPU has integer dot-product instructions (x86-64 AVX512-VNNI or AVX-VNNI, aarch64 dotprod) and the int8 gate finds the pipeline's answers unchanged on this CPU; `on` wherever the gate finds them unchanged, whatever the CPU; `force` always, unchecked (for measuring only); `off` never." },
    SettingDoc { env: "STREAMHOST_INT8_GATE_FRAMES", default: "models/int8-gate", meaning: "Held-out JPEG frames (`make models` renders them; never the benchmark corpus) that the int8 gate runs through a pipeline with and without its int8 models before the int8 ones may serve. Verdicts are cached in its `.verdicts` folder, keyed by the models, plugins, manifest, frames and CPU features." },
    SettingDoc { env: "STREAMHOST_INT8_GATE_BOX_PX", default: "2", meaning: "How far (pixels) a box coordinate in a result may move under int8 for the gate to call the answers unchanged; every text must be identical." },
    SettingDoc { env: "STREAMHOST_INT8_GATE_SCORE_DIFF", default: "0.05", meaning: "How far any other number in a result (scores, confidences) may move under int8 for the gate to call the answers unchanged." },
    SettingDoc { env: "STREAMHOST_ONNX_SESSIONS", default: "0", meaning: "ONNX Runtime sessions per model (frames of different sessions run a model concurrently); 0 means one per available core." },
    SettingDoc { env: "STREAM_MAX_FRAME_SIZE_MB", default: "5", meaning: "Largest accepted frame in MiB; larger frames get `frame_too_large` and the session closes." },
    SettingDoc { env: "STREAM_SLOWDOWN_THRESHOLD", default: "0.30", meaning: "Drop rate (0..1) over the drop window above which `{\"warning\":\"slow_down\"}` is sent." },
    SettingDoc { env: "STREAM_DROP_WINDOW", default: "20", meaning: "Number of most recent frames the drop rate is measured over; judged once the window is full." },
    SettingDoc { env: "STREAM_MAX_FRAME_PIXELS", default: "40000000", meaning: "Largest width x height a JPEG header may declare; larger is `invalid_frame` (decompression bombs)." },
    SettingDoc { env: "STREAMHOST_FRAME_TIMEOUT_MS", default: "10000", meaning: "Deadline for one frame's whole pipeline, counted from when it starts executing (after its admission turn): past it the frame is answered `pipeline_failure` naming the node it was in, an ONNX run in progress is terminated, a Wasm call is cut short, and no further node starts. 0: no deadline. At most 3600000." },
    SettingDoc { env: "STREAMHOST_WASM_CALL_TIMEOUT_MS", default: "1000", meaning: "Wall-clock limit for one call into a Wasm node (epoch interruption)." },
    SettingDoc { env: "STREAMHOST_WASM_MEMORY_MB", default: "64", meaning: "Cap on the sum of all linear memories of one Wasm node instance." },
    SettingDoc { env: "STREAMHOST_WASM_EPOCH_TICK_MS", default: "5", meaning: "Granularity of the Wasm time limit (how often the epoch ticker runs)." },
    SettingDoc { env: "STREAMHOST_WASM_MAX_STACK_KB", default: "512", meaning: "Largest Wasm stack a guest may use before it traps." },
    SettingDoc { env: "STREAMHOST_WASM_MAX_INSTANCES", default: "16", meaning: "Most core instances, and separately most memories and most tables, one node instance may create." },
    SettingDoc { env: "STREAMHOST_WASM_POOL_INSTANCES", default: "0", meaning: "0: each Wasm node instance's memory is mapped when its session starts it and unmapped when the session ends (copy-on-write from the component's image either way). N: wasmtime's pooling allocator with slots for N node instances alive at once (a session takes one per Wasm node of its pipeline; beyond N a frame fails until one frees), reserving about 8 GiB of address space per slot up front; starts instances faster." },
    SettingDoc { env: "STREAMHOST_WASM_MAX_TABLE_ELEMENTS", default: "100000", meaning: "Largest table (function references) a node instance may grow." },
    SettingDoc { env: "STREAMHOST_PLUGIN_LOG_LINES_PER_SEC", default: "20", meaning: "Log lines per second one node instance may emit (burst of the same size); the rest are counted and summarised." },
    SettingDoc { env: "STREAMHOST_MAX_RESULT_KB", default: "1024", meaning: "Largest JSON result a pipeline may return for one frame; larger is `pipeline_failure`." },
    SettingDoc { env: "STREAMHOST_IDLE_TIMEOUT_SECS", default: "120", meaning: "A session that receives nothing from its client (no frame, no pong) for this long is closed with 1001." },
    SettingDoc { env: "STREAMHOST_PING_INTERVAL_SECS", default: "30", meaning: "How often the server pings each session's client; a live client's automatic pong keeps it from the idle timeout." },
    SettingDoc { env: "STREAMHOST_MAX_SESSIONS", default: "1024", meaning: "WebSocket sessions open at once, all tenants together; further upgrades are refused with HTTP 503 `too_many_sessions`." },
    SettingDoc { env: "STREAMHOST_MAX_CONNECTIONS", default: "2048", meaning: "TCP connections open at once (HTTP and WebSocket). At the limit a new connection takes the slot of the oldest connection still waiting for its request head (closed); when every connection has sent one, the new one is closed on accept." },
    SettingDoc { env: "STREAMHOST_MAX_PENDING_PER_ADDRESS", default: "64", meaning: "Connections from one IP address that may wait for their request head at once; more from that address are closed on accept, so one address cannot hold most of the connection slots." },
    SettingDoc { env: "STREAMHOST_MAX_HEADER_BYTES", default: "65536", meaning: "Largest HTTP request head (request line and headers) a connection may send; at least 8192. Larger heads are refused with 431." },
    SettingDoc { env: "STREAMHOST_HEADER_READ_TIMEOUT_SECS", default: "10", meaning: "A connection that has not sent complete request headers within this time (also between keep-alive requests) is closed." },
    SettingDoc { env: "STREAMHOST_DROP_LOG_INTERVAL_SECS", default: "10", meaning: "Per session, at most one `frame dropped` log line per this many seconds; the drops in between are counted into one `frames dropped` summary line (0: a line per dropped frame)." },
    SettingDoc { env: "STREAMHOST_SEND_TIMEOUT_SECS", default: "10", meaning: "A reply the client does not take within this time (a reader that stopped reading) closes its session." },
    SettingDoc { env: "STREAMHOST_MAX_FRAMES_IN_FLIGHT", default: "0", meaning: "Frames executing at once across all sessions (the admission limit); waiting frames get turns fairly across tenants (each tenant its `weight`, whatever its number of sessions), in arrival order within a tenant. 0 means one per available core." },
    SettingDoc { env: "STREAMHOST_MAX_SESSION_FPS", default: "0", meaning: "Frames per second one session may send; faster frames are answered `dropped` with `reason: rate_limited`. 0 means no limit. A tenant's `max_fps` overrides it." },
    SettingDoc { env: "STREAMHOST_METRICS_TOKEN", default: "", meaning: "When set, `GET /metrics` needs `Authorization: Bearer <this token>` (401 otherwise); a tenant's token does not open it. Empty: `/metrics` is open (keep it behind your network's ACLs)." },
    SettingDoc { env: "STREAMHOST_COMPILE_CACHE_DIR", default: "", meaning: "A directory where compiled Wasm components are kept (native code, by the component's sha256 and the engine's settings), so a restart or a new replica loads them instead of compiling (Python and JavaScript nodes take 10-20 s each). At most 64 files; the oldest go first. Anyone who can write there can run code as the server: give it to the server's user alone. Empty: compile at every start." },
    SettingDoc { env: "STREAMHOST_TENANTS_FILE", default: "", meaning: "Tenants file (TOML, see the operator's guide; also `--tenants`). Empty: single-tenant and open, for local use." },
    SettingDoc { env: "STREAMHOST_RELOAD", default: "watch", meaning: "How a running server notices changed pipelines, components, models and the tenants file: `watch` polls them (and SIGHUP forces a reload), `signal` reloads on SIGHUP only, `off` never reloads (SIGHUP is logged and ignored)." },
    SettingDoc { env: "STREAMHOST_RELOAD_POLL_MS", default: "1000", meaning: "With `STREAMHOST_RELOAD=watch`, how often the pipelines directory, every component and model a manifest names, and the tenants file are checked for changes (size, times, inode: a stat each, no reading); 10-4000, so a change is seen within 5 seconds." },
    SettingDoc { env: "STREAMHOST_RELOAD_DEBOUNCE_MS", default: "250", meaning: "How long changed files must stay unchanged before they are reloaded (a file being written is not read half-way); 0-2000." },
    SettingDoc { env: "STREAMHOST_ALLOWED_ORIGINS", default: "", meaning: "Comma-separated origins (`https://kiosk.example:8443`) whose pages may open WebSockets, or `*` for any; a browser's upgrade from another origin is refused with HTTP 403 `forbidden`. Unset: loopback hosts (`localhost`, `127.0.0.0/8`, `[::1]`, any port). The server's own origin (the request's `Host`) is always allowed, and clients that send no `Origin` (non-browsers) are unaffected." },
    SettingDoc { env: "STREAMHOST_TLS_CERT", default: "", meaning: "PEM certificate chain for HTTPS and WSS (also `--tls-cert`); set with `STREAMHOST_TLS_KEY`. Unset: plain HTTP and WS." },
    SettingDoc { env: "STREAMHOST_TLS_KEY", default: "", meaning: "PEM private key of `STREAMHOST_TLS_CERT` (also `--tls-key`)." },
    SettingDoc { env: "STREAMHOST_SHUTDOWN_GRACE_SECS", default: "10", meaning: "On SIGTERM/Ctrl-C, how long sessions get to finish frames in flight before they are closed. Meanwhile the listener stays open: `/ready` answers 503 `draining` and new WebSocket upgrades get 503." },
    SettingDoc { env: "STREAMHOST_READY_PIPELINES", default: "*", meaning: "Pipelines that must be loaded (ready) for `GET /ready` to answer 200: comma-separated ids, `*` for every listed pipeline, `none` for none (ready once started). A pipeline whose reload failed while its previous version serves counts as ready." },
    SettingDoc { env: "RUST_LOG", default: "info", meaning: "Log filter (tracing-subscriber EnvFilter syntax); logs are JSON lines on stdout." },
];

/// When an `onnx` node's int8-quantised variant runs instead of its model
/// (`STREAMHOST_INT8_MODELS`). ONNX Runtime's int8 kernels pay where the CPU
/// has integer dot-product instructions (about 3x faster than fp32 for the
/// text detector with AVX512-VNNI); on a CPU without them they were no faster
/// and less exact (as if AVX2's 16-bit intermediate sums saturate). Being fast
/// is not enough: a quantised model that moves a box edge by a few pixels can
/// eat the space between two words, so except under `Force` an int8 variant
/// serves only after the int8 gate (`pipeline::int8_gate`) has found the
/// pipeline's answers unchanged with it on held-out frames, on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Models {
    /// Gated, and only on a CPU with integer dot-product instructions.
    Auto,
    /// Gated, on any CPU.
    On,
    /// Always, unchecked: for measuring what int8 costs in accuracy.
    Force,
    Off,
}

impl std::str::FromStr for Int8Models {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "auto" => Ok(Int8Models::Auto),
            "on" => Ok(Int8Models::On),
            "force" => Ok(Int8Models::Force),
            "off" => Ok(Int8Models::Off),
            _ => Err(()),
        }
    }
}

/// How a running server notices changed files (`STREAMHOST_RELOAD`; see `crate::reload`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadMode {
    /// Poll the files every `STREAMHOST_RELOAD_POLL_MS`; SIGHUP forces a reload too.
    Watch,
    /// Reload on SIGHUP only.
    Signal,
    /// Never reload; SIGHUP is logged and ignored.
    Off,
}

impl std::str::FromStr for ReloadMode {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "watch" => Ok(ReloadMode::Watch),
            "signal" => Ok(ReloadMode::Signal),
            "off" => Ok(ReloadMode::Off),
            _ => Err(()),
        }
    }
}

/// What decides whether int8 variants run, once `auto` is resolved against the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Resolved {
    /// Never, and why (shown where a pipeline has an int8 variant).
    Never(&'static str),
    /// Where the gate finds the answers unchanged.
    Gated,
    /// Always, unchecked.
    Forced,
}

/// Limits and defaults the server runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub listen: String,
    pub pipelines_dir: PathBuf,
    pub plugin_dir: PathBuf,
    pub model_dir: PathBuf,
    pub ort_lib: PathBuf,
    pub onnx_threads: usize,
    pub onnx_sessions: usize,
    pub int8_models: Int8Models,
    pub int8_gate_frames: PathBuf,
    pub int8_gate_box_px: f64,
    pub int8_gate_score_diff: f64,
    pub node_threads: usize,
    pub max_frame_bytes: usize,
    pub slowdown_threshold: f64,
    pub drop_window: usize,
    pub max_frame_pixels: u64,
    /// A frame's deadline once executing (`None`: none); see `crate::deadline`.
    pub frame_timeout: Option<Duration>,
    pub wasm_call_timeout: Duration,
    pub wasm_memory_bytes: usize,
    pub wasm_epoch_tick: Duration,
    pub wasm_max_stack_bytes: usize,
    pub max_result_bytes: usize,
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    pub max_sessions: usize,
    pub max_connections: usize,
    pub max_pending_per_address: usize,
    pub header_read_timeout: Duration,
    /// Read buffer for HTTP request heads (hyper's `max_buf_size`).
    pub max_header_bytes: usize,
    pub send_timeout: Duration,
    pub drop_log_interval: Duration,
    pub max_frames_in_flight: usize,
    pub max_session_fps: f64,
    pub tenants_file: Option<PathBuf>,
    /// Where compiled components are kept across starts (`wasm::compiled`), if anywhere.
    pub compile_cache_dir: Option<PathBuf>,
    /// The bearer token `/metrics` asks for, when set.
    pub metrics_token: Option<String>,
    pub reload: ReloadMode,
    pub reload_poll: Duration,
    pub reload_debounce: Duration,
    /// Origins allowed to open WebSockets besides the server's own, lower-cased
    /// (`*` for any); empty: loopback hosts (see `crate::origin`).
    pub allowed_origins: Vec<String>,
    /// PEM certificate chain and key for HTTPS/WSS; both or neither (see `crate::tls`).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub wasm_max_instances: usize,
    pub wasm_max_table_elements: usize,
    /// Node instances the pooling allocator holds slots for; 0: on demand.
    pub wasm_pool_instances: usize,
    pub plugin_log_lines_per_sec: u32,
    pub shutdown_grace: Duration,
    /// `None`: every listed pipeline must be ready for `/ready`; else these ids.
    pub ready_pipelines: Option<Vec<String>>,
}

impl Default for Config {
    /// The documented defaults (a unit test checks they equal what [`SETTINGS`] parses to).
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8000".into(),
            pipelines_dir: "pipelines".into(),
            plugin_dir: "target/plugins".into(),
            model_dir: "models".into(),
            ort_lib: ".deps/onnxruntime/libonnxruntime.so".into(),
            onnx_threads: 0,
            onnx_sessions: 0,
            int8_models: Int8Models::Auto,
            int8_gate_frames: "models/int8-gate".into(),
            int8_gate_box_px: 2.0,
            int8_gate_score_diff: 0.05,
            node_threads: 0,
            max_frame_bytes: 5 << 20,
            slowdown_threshold: 0.30,
            drop_window: 20,
            max_frame_pixels: 40_000_000,
            frame_timeout: Some(Duration::from_millis(10_000)),
            wasm_call_timeout: Duration::from_millis(1000),
            wasm_memory_bytes: 64 << 20,
            wasm_epoch_tick: Duration::from_millis(5),
            wasm_max_stack_bytes: 512 << 10,
            max_result_bytes: 1 << 20,
            idle_timeout: Duration::from_secs(120),
            ping_interval: Duration::from_secs(30),
            max_sessions: 1024,
            max_connections: 2048,
            max_pending_per_address: 64,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 << 10,
            send_timeout: Duration::from_secs(10),
            drop_log_interval: Duration::from_secs(10),
            max_frames_in_flight: 0,
            max_session_fps: 0.0,
            tenants_file: None,
            compile_cache_dir: None,
            metrics_token: None,
            reload: ReloadMode::Watch,
            reload_poll: Duration::from_millis(1000),
            reload_debounce: Duration::from_millis(250),
            allowed_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            wasm_max_instances: 16,
            wasm_max_table_elements: 100_000,
            wasm_pool_instances: 0,
            plugin_log_lines_per_sec: 20,
            shutdown_grace: Duration::from_secs(10),
            ready_pipelines: None,
        }
    }
}

impl Config {
    /// Reads every setting from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `get`, falling back to the documented default.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let s = Settings { get: &get };
        let max_frame_mb: f64 = s.parse("STREAM_MAX_FRAME_SIZE_MB", "a number of MiB")?;
        if !(max_frame_mb > 0.0 && max_frame_mb <= 1024.0) {
            return Err(s.out_of_range("STREAM_MAX_FRAME_SIZE_MB", "must be in (0, 1024]"));
        }
        let slowdown_threshold: f64 = s.parse("STREAM_SLOWDOWN_THRESHOLD", "fraction")?;
        if !(0.0..=1.0).contains(&slowdown_threshold) {
            return Err(s.out_of_range("STREAM_SLOWDOWN_THRESHOLD", "must be in [0, 1]"));
        }
        let drop_window: usize = s.parse("STREAM_DROP_WINDOW", "frame count")?;
        if !(1..=10_000).contains(&drop_window) {
            return Err(s.out_of_range("STREAM_DROP_WINDOW", "must be in [1, 10000]"));
        }
        let positive = |name: &'static str, what: &'static str| -> Result<u64, ConfigError> {
            let v: u64 = s.parse(name, what)?;
            if v == 0 {
                return Err(s.out_of_range(name, "must be at least 1"));
            }
            Ok(v)
        };
        let max_session_fps: f64 = s.parse("STREAMHOST_MAX_SESSION_FPS", "frames per second")?;
        if !(0.0..=MAX_FPS).contains(&max_session_fps) {
            return Err(s.out_of_range("STREAMHOST_MAX_SESSION_FPS", "must be in [0, 10000]"));
        }
        // hyper refuses (panics on) a read buffer under 8 KiB.
        let max_header_bytes: usize = s.parse("STREAMHOST_MAX_HEADER_BYTES", "byte count")?;
        if !(8192..=16 << 20).contains(&max_header_bytes) {
            return Err(
                s.out_of_range("STREAMHOST_MAX_HEADER_BYTES", "must be in [8192, 16777216]")
            );
        }
        let node_threads: usize = s.parse("STREAMHOST_NODE_THREADS", "thread count")?;
        if node_threads > MAX_NODE_THREADS {
            return Err(s.out_of_range(
                "STREAMHOST_NODE_THREADS",
                "must be in [0, 64] (MAX_NODE_THREADS)",
            ));
        }
        let wasm_pool_instances: usize =
            s.parse("STREAMHOST_WASM_POOL_INSTANCES", "instance count")?;
        if wasm_pool_instances > MAX_WASM_POOL_INSTANCES {
            return Err(s.out_of_range(
                "STREAMHOST_WASM_POOL_INSTANCES",
                "must be in [0, 8192] (MAX_WASM_POOL_INSTANCES)",
            ));
        }
        let int8_gate_box_px: f64 = s.parse("STREAMHOST_INT8_GATE_BOX_PX", "number of pixels")?;
        if !(0.0..=64.0).contains(&int8_gate_box_px) {
            return Err(s.out_of_range("STREAMHOST_INT8_GATE_BOX_PX", "must be in [0, 64]"));
        }
        let int8_gate_score_diff: f64 = s.parse("STREAMHOST_INT8_GATE_SCORE_DIFF", "number")?;
        if !(0.0..=1.0).contains(&int8_gate_score_diff) {
            return Err(s.out_of_range("STREAMHOST_INT8_GATE_SCORE_DIFF", "must be in [0, 1]"));
        }
        let frame_timeout_ms: u64 = s.parse("STREAMHOST_FRAME_TIMEOUT_MS", "millisecond count")?;
        if frame_timeout_ms > 3_600_000 {
            return Err(s.out_of_range("STREAMHOST_FRAME_TIMEOUT_MS", "must be in [0, 3600000]"));
        }
        let reload_poll_ms: u64 = s.parse("STREAMHOST_RELOAD_POLL_MS", "millisecond count")?;
        if !(10..=4000).contains(&reload_poll_ms) {
            return Err(s.out_of_range("STREAMHOST_RELOAD_POLL_MS", "must be in [10, 4000]"));
        }
        let reload_debounce_ms: u64 =
            s.parse("STREAMHOST_RELOAD_DEBOUNCE_MS", "millisecond count")?;
        if reload_debounce_ms > 2000 {
            return Err(s.out_of_range("STREAMHOST_RELOAD_DEBOUNCE_MS", "must be in [0, 2000]"));
        }
        Ok(Config {
            listen: s.text("STREAMHOST_LISTEN"),
            pipelines_dir: s.text("STREAMHOST_PIPELINES_DIR").into(),
            plugin_dir: s.text("STREAMHOST_PLUGIN_DIR").into(),
            model_dir: s.text("STREAMHOST_MODEL_DIR").into(),
            ort_lib: match (get("STREAMHOST_ORT_LIB"), get("ORT_DYLIB_PATH")) {
                (None, Some(ort)) if !ort.trim().is_empty() => ort.trim().into(),
                _ => s.text("STREAMHOST_ORT_LIB").into(),
            },
            onnx_threads: s.parse("STREAMHOST_ONNX_THREADS", "thread count")?,
            onnx_sessions: s.parse("STREAMHOST_ONNX_SESSIONS", "session count")?,
            int8_models: s.parse("STREAMHOST_INT8_MODELS", "auto, on, force or off")?,
            int8_gate_frames: s.text("STREAMHOST_INT8_GATE_FRAMES").into(),
            int8_gate_box_px,
            int8_gate_score_diff,
            node_threads,
            max_frame_bytes: (max_frame_mb * (1u64 << 20) as f64) as usize,
            slowdown_threshold,
            drop_window,
            max_frame_pixels: positive("STREAM_MAX_FRAME_PIXELS", "pixel count")?,
            frame_timeout: (frame_timeout_ms > 0).then(|| Duration::from_millis(frame_timeout_ms)),
            wasm_call_timeout: Duration::from_millis(positive(
                "STREAMHOST_WASM_CALL_TIMEOUT_MS",
                "millisecond count",
            )?),
            wasm_memory_bytes: mib(positive("STREAMHOST_WASM_MEMORY_MB", "MiB count")?),
            wasm_epoch_tick: Duration::from_millis(positive(
                "STREAMHOST_WASM_EPOCH_TICK_MS",
                "millisecond count",
            )?),
            wasm_max_stack_bytes: (positive("STREAMHOST_WASM_MAX_STACK_KB", "KiB count")? as usize)
                .saturating_mul(1024),
            max_result_bytes: (positive("STREAMHOST_MAX_RESULT_KB", "KiB count")? as usize)
                .saturating_mul(1024),
            idle_timeout: Duration::from_secs(positive(
                "STREAMHOST_IDLE_TIMEOUT_SECS",
                "second count",
            )?),
            ping_interval: Duration::from_secs(positive(
                "STREAMHOST_PING_INTERVAL_SECS",
                "second count",
            )?),
            max_sessions: positive("STREAMHOST_MAX_SESSIONS", "session count")? as usize,
            max_connections: positive("STREAMHOST_MAX_CONNECTIONS", "connection count")? as usize,
            max_pending_per_address: positive(
                "STREAMHOST_MAX_PENDING_PER_ADDRESS",
                "connection count",
            )? as usize,
            header_read_timeout: Duration::from_secs(positive(
                "STREAMHOST_HEADER_READ_TIMEOUT_SECS",
                "second count",
            )?),
            max_header_bytes,
            drop_log_interval: Duration::from_secs(
                s.parse("STREAMHOST_DROP_LOG_INTERVAL_SECS", "second count")?,
            ),
            send_timeout: Duration::from_secs(positive(
                "STREAMHOST_SEND_TIMEOUT_SECS",
                "second count",
            )?),
            max_frames_in_flight: s.parse("STREAMHOST_MAX_FRAMES_IN_FLIGHT", "frame count")?,
            max_session_fps,
            metrics_token: Some(s.text("STREAMHOST_METRICS_TOKEN")).filter(|t| !t.is_empty()),
            tenants_file: Some(s.text("STREAMHOST_TENANTS_FILE"))
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            compile_cache_dir: Some(s.text("STREAMHOST_COMPILE_CACHE_DIR"))
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            reload: s.parse("STREAMHOST_RELOAD", "watch, signal or off")?,
            reload_poll: Duration::from_millis(reload_poll_ms),
            reload_debounce: Duration::from_millis(reload_debounce_ms),
            allowed_origins: parse_origins(&s.text("STREAMHOST_ALLOWED_ORIGINS"))
                .map_err(|_| s.out_of_range("STREAMHOST_ALLOWED_ORIGINS", "each entry must be `*` or an origin like `https://host:port` (scheme and host, no path)"))?,
            tls_cert: Some(s.text("STREAMHOST_TLS_CERT"))
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            tls_key: Some(s.text("STREAMHOST_TLS_KEY"))
                .filter(|f| !f.is_empty())
                .map(PathBuf::from),
            wasm_max_instances: positive("STREAMHOST_WASM_MAX_INSTANCES", "instance count")?
                as usize,
            wasm_max_table_elements: positive(
                "STREAMHOST_WASM_MAX_TABLE_ELEMENTS",
                "element count",
            )? as usize,
            wasm_pool_instances,
            plugin_log_lines_per_sec: positive("STREAMHOST_PLUGIN_LOG_LINES_PER_SEC", "line count")?
                .min(u32::MAX as u64) as u32,
            ready_pipelines: parse_ready_pipelines(&s.text("STREAMHOST_READY_PIPELINES")),
            shutdown_grace: Duration::from_secs(
                s.parse("STREAMHOST_SHUTDOWN_GRACE_SECS", "second count")?,
            ),
        })
    }

    /// The frame budget's message limit for the WebSocket layer: twice the frame
    /// limit, so a frame somewhat over budget still reaches the contract's
    /// `frame_too_large` reply instead of a bare protocol close; anything beyond
    /// that is cut off by the WebSocket layer (it drops the connection, without a
    /// close frame) before it is buffered.
    pub fn ws_message_limit(&self) -> usize {
        self.max_frame_bytes.saturating_mul(2)
    }

    /// Whether int8 model variants may run, resolving `auto` with what the CPU
    /// has (`cpu::has_int8_dot_product()`; a parameter so this module stays a leaf).
    pub fn int8_models_resolved(&self, cpu_has_dot_product: bool) -> Int8Resolved {
        match self.int8_models {
            Int8Models::Auto if cpu_has_dot_product => Int8Resolved::Gated,
            Int8Models::Auto => Int8Resolved::Never(
                "this CPU has no integer dot-product instructions (AVX512-VNNI, AVX-VNNI, dotprod), where int8 is neither faster nor exact",
            ),
            Int8Models::On => Int8Resolved::Gated,
            Int8Models::Force => Int8Resolved::Forced,
            Int8Models::Off => Int8Resolved::Never("STREAMHOST_INT8_MODELS=off"),
        }
    }

    /// Threads per native node (resolving 0 to the core count, at most 4:
    /// these loops are memory-bound, and more threads only add start-up cost).
    pub fn node_threads_resolved(&self) -> usize {
        match self.node_threads {
            0 => resolve_cores(0).min(4),
            n => n,
        }
    }

    /// The admission limit (resolving 0 to the core count).
    pub fn max_frames_in_flight_resolved(&self) -> usize {
        resolve_cores(self.max_frames_in_flight)
    }

    /// The frame limit as the contract's detail text shows it ("5MB").
    pub fn max_frame_label(&self) -> String {
        let mb = self.max_frame_bytes as f64 / (1u64 << 20) as f64;
        if mb.fract() == 0.0 {
            format!("{}MB", mb as u64)
        } else {
            format!("{mb}MB")
        }
    }
}

/// `n`, or with `0` the number of cores this process may use.
pub fn resolve_cores(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }
}

/// `STREAMHOST_ALLOWED_ORIGINS`: comma-separated `*` or `http(s)://host[:port]`
/// (what browsers send in `Origin`: no path, no trailing slash), lower-cased.
/// `*` (every listed pipeline), `none`, or a comma-separated list of ids.
fn parse_ready_pipelines(text: &str) -> Option<Vec<String>> {
    match text.trim() {
        "*" => return None,
        "none" => return Some(Vec::new()),
        _ => {}
    }
    Some(
        text.split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(String::from)
            .collect(),
    )
}

fn parse_origins(text: &str) -> Result<Vec<String>, ()> {
    let mut out = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let entry = entry.to_ascii_lowercase();
        let host = entry
            .strip_prefix("http://")
            .or_else(|| entry.strip_prefix("https://"));
        match host {
            _ if entry == "*" => {}
            Some(h) if !h.is_empty() && !h.contains(['/', '?', '#', '@', ' ']) => {}
            _ => return Err(()),
        }
        out.push(entry);
    }
    Ok(out)
}

fn mib(v: u64) -> usize {
    (v as usize).saturating_mul(1 << 20)
}

struct Settings<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
}

impl Settings<'_> {
    fn default_of(name: &str) -> &'static str {
        SETTINGS
            .iter()
            .find(|d| d.env == name)
            .map(|d| d.default)
            .unwrap_or("")
    }

    fn raw(&self, name: &'static str) -> String {
        (self.get)(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| Self::default_of(name).to_string())
    }

    fn text(&self, name: &'static str) -> String {
        self.raw(name)
    }

    fn parse<T: std::str::FromStr>(
        &self,
        name: &'static str,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        let value = self.raw(name);
        value.parse().map_err(|_| ConfigError::Invalid {
            name,
            value,
            expected,
        })
    }

    fn out_of_range(&self, name: &'static str, why: &'static str) -> ConfigError {
        ConfigError::OutOfRange {
            name,
            value: self.raw(name),
            why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |k| map.get(k).cloned())
    }

    #[test]
    fn documented_defaults_parse_and_match_the_fallback() {
        let parsed = with(&[]).map_err(|e| e.to_string());
        assert_eq!(parsed, Ok(Config::default()));
        let c = Config::default();
        assert_eq!(c.max_frame_bytes, 5 * 1024 * 1024);
        assert_eq!(c.max_frame_label(), "5MB");
        assert!((c.slowdown_threshold - 0.30).abs() < 1e-12);
    }

    #[test]
    fn the_frame_deadline_is_milliseconds_and_zero_turns_it_off() {
        let timeout =
            |v: &str| with(&[("STREAMHOST_FRAME_TIMEOUT_MS", v)]).map(|c| c.frame_timeout);
        assert_eq!(timeout("250"), Ok(Some(Duration::from_millis(250))));
        assert_eq!(timeout("0"), Ok(None));
        assert!(matches!(timeout("1s"), Err(ConfigError::Invalid { .. })));
        assert!(matches!(
            timeout("3600001"),
            Err(ConfigError::OutOfRange { .. })
        ));
    }

    #[test]
    fn thresholds_load_from_the_environment() {
        let c = with(&[
            ("STREAM_MAX_FRAME_SIZE_MB", "2"),
            ("STREAM_SLOWDOWN_THRESHOLD", "0.5"),
            ("STREAM_DROP_WINDOW", "8"),
            ("STREAMHOST_WASM_CALL_TIMEOUT_MS", "250"),
        ])
        .map_err(|e| e.to_string());
        let c = match c {
            Ok(c) => c,
            Err(e) => return assert_eq!(e, "no error"),
        };
        assert_eq!(c.max_frame_bytes, 2 << 20);
        assert_eq!(c.max_frame_label(), "2MB");
        assert_eq!(c.slowdown_threshold, 0.5);
        assert_eq!(c.drop_window, 8);
        assert_eq!(c.wasm_call_timeout, Duration::from_millis(250));
    }

    #[test]
    fn int8_models_are_auto_on_or_off() {
        let int8 = |v: &str| with(&[("STREAMHOST_INT8_MODELS", v)]).map(|c| c.int8_models);
        assert_eq!(int8(""), Ok(Int8Models::Auto));
        assert_eq!(int8("on"), Ok(Int8Models::On));
        assert_eq!(int8("off"), Ok(Int8Models::Off));
        assert_eq!(int8("force"), Ok(Int8Models::Force));
        assert!(matches!(int8("yes"), Err(ConfigError::Invalid { .. })));
        let resolved = |v: &str, dot: bool| {
            with(&[("STREAMHOST_INT8_MODELS", v)]).map(|c| c.int8_models_resolved(dot))
        };
        for dot in [false, true] {
            assert_eq!(resolved("on", dot), Ok(Int8Resolved::Gated));
            assert_eq!(resolved("force", dot), Ok(Int8Resolved::Forced));
            assert!(matches!(resolved("off", dot), Ok(Int8Resolved::Never(_))));
        }
        assert_eq!(resolved("auto", true), Ok(Int8Resolved::Gated));
        assert!(
            matches!(resolved("auto", false), Ok(Int8Resolved::Never(r)) if r.contains("dot-product"))
        );
    }

    #[test]
    fn the_wasm_pool_is_off_by_default_and_bounded() {
        assert_eq!(with(&[]).map(|c| c.wasm_pool_instances), Ok(0));
        let on = with(&[("STREAMHOST_WASM_POOL_INSTANCES", "300")]);
        assert_eq!(on.map(|c| c.wasm_pool_instances), Ok(300));
        assert!(matches!(
            with(&[("STREAMHOST_WASM_POOL_INSTANCES", "9000")]),
            Err(ConfigError::OutOfRange { .. })
        ));
    }

    #[test]
    fn the_int8_gate_tolerances_are_bounded() {
        let c = with(&[
            ("STREAMHOST_INT8_GATE_BOX_PX", "1.5"),
            ("STREAMHOST_INT8_GATE_SCORE_DIFF", "0.1"),
        ]);
        assert_eq!(
            c.as_ref()
                .map(|c| (c.int8_gate_box_px, c.int8_gate_score_diff)),
            Ok((1.5, 0.1))
        );
        for (name, bad) in [
            ("STREAMHOST_INT8_GATE_BOX_PX", "-1"),
            ("STREAMHOST_INT8_GATE_BOX_PX", "100"),
            ("STREAMHOST_INT8_GATE_SCORE_DIFF", "2"),
        ] {
            assert!(
                matches!(with(&[(name, bad)]), Err(ConfigError::OutOfRange { .. })),
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err = with(&[("STREAM_SLOWDOWN_THRESHOLD", "lots")]).err();
        assert!(matches!(
            err,
            Some(ConfigError::Invalid {
                name: "STREAM_SLOWDOWN_THRESHOLD",
                ..
            })
        ));
        let err = with(&[("STREAM_SLOWDOWN_THRESHOLD", "1.5")]).err();
        assert!(matches!(
            err,
            Some(ConfigError::OutOfRange {
                name: "STREAM_SLOWDOWN_THRESHOLD",
                ..
            })
        ));
        let err = with(&[("STREAMHOST_WASM_MEMORY_MB", "0")]).err();
        assert!(matches!(err, Some(ConfigError::OutOfRange { .. })));
        // hyper needs at least 8 KiB of read buffer.
        let err = with(&[("STREAMHOST_MAX_HEADER_BYTES", "4096")]).err();
        assert!(matches!(
            err,
            Some(ConfigError::OutOfRange {
                name: "STREAMHOST_MAX_HEADER_BYTES",
                ..
            })
        ));
        let ok = with(&[("STREAMHOST_MAX_HEADER_BYTES", "8192")]).ok();
        assert_eq!(ok.map(|c| c.max_header_bytes), Some(8192));
        // Node threads: bounded, 0 resolves to the cores (at most 4), n is n.
        let err = with(&[("STREAMHOST_NODE_THREADS", "65")]).err();
        assert!(matches!(
            err,
            Some(ConfigError::OutOfRange {
                name: "STREAMHOST_NODE_THREADS",
                ..
            })
        ));
        let auto = with(&[]).map(|c| c.node_threads_resolved()).unwrap_or(0);
        assert!((1..=4).contains(&auto), "{auto}");
        let three = with(&[("STREAMHOST_NODE_THREADS", "3")]).map(|c| c.node_threads_resolved());
        assert_eq!(three, Ok(3));
    }

    #[test]
    fn reload_settings_are_a_mode_and_bounded_intervals() {
        let c = with(&[
            ("STREAMHOST_RELOAD", "signal"),
            ("STREAMHOST_RELOAD_POLL_MS", "100"),
            ("STREAMHOST_RELOAD_DEBOUNCE_MS", "0"),
        ]);
        assert_eq!(
            c.map(|c| (c.reload, c.reload_poll, c.reload_debounce)),
            Ok((
                ReloadMode::Signal,
                Duration::from_millis(100),
                Duration::ZERO
            ))
        );
        assert!(matches!(
            with(&[("STREAMHOST_RELOAD", "inotify")]),
            Err(ConfigError::Invalid { .. })
        ));
        for (name, bad) in [
            ("STREAMHOST_RELOAD_POLL_MS", "5"),
            ("STREAMHOST_RELOAD_POLL_MS", "5000"),
            ("STREAMHOST_RELOAD_DEBOUNCE_MS", "2001"),
        ] {
            assert!(
                matches!(with(&[(name, bad)]), Err(ConfigError::OutOfRange { .. })),
                "{name}={bad}"
            );
        }
    }

    #[test]
    fn allowed_origins_are_origins_or_a_star() {
        assert_eq!(with(&[]).map(|c| c.allowed_origins), Ok(vec![]));
        let c = with(&[(
            "STREAMHOST_ALLOWED_ORIGINS",
            " https://Kiosk.example:8443 , http://10.0.0.5:8000,*",
        )]);
        assert_eq!(
            c.map(|c| c.allowed_origins),
            Ok(vec![
                "https://kiosk.example:8443".to_string(),
                "http://10.0.0.5:8000".to_string(),
                "*".to_string()
            ])
        );
        for bad in [
            "kiosk.example",
            "https://kiosk.example/",
            "ftp://x",
            "https://",
        ] {
            assert!(
                matches!(
                    with(&[("STREAMHOST_ALLOWED_ORIGINS", bad)]),
                    Err(ConfigError::OutOfRange {
                        name: "STREAMHOST_ALLOWED_ORIGINS",
                        ..
                    })
                ),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn every_setting_read_is_documented() {
        // Each variable parsed above must appear in SETTINGS (else its default is "").
        for name in [
            "STREAMHOST_LISTEN",
            "STREAM_MAX_FRAME_SIZE_MB",
            "STREAM_DROP_WINDOW",
            "STREAMHOST_SHUTDOWN_GRACE_SECS",
            "STREAMHOST_MAX_CONNECTIONS",
            "STREAMHOST_MAX_SESSIONS",
            "STREAMHOST_MAX_SESSION_FPS",
            "STREAMHOST_WASM_MAX_INSTANCES",
            "STREAMHOST_MAX_HEADER_BYTES",
        ] {
            assert!(
                !Settings::default_of(name).is_empty(),
                "{name} undocumented"
            );
        }
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .unwrap_or_default();
        for s in SETTINGS {
            let shown = match s.default {
                "" => "(unset)".to_string(),
                d => format!("`{d}`"),
            };
            assert!(
                readme.contains(&format!("| `{}` | {shown} |", s.env)),
                "README lacks {} = {}",
                s.env,
                s.default
            );
        }
    }
}
