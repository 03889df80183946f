//! When a running server reloads: a watcher that polls the files it serves
//! from, SIGHUP, and one thread that does the reloading.
//!
//! What reloads, and how a pipeline's new version replaces the old, is
//! [`crate::pipeline::reconcile`]'s business and the tenants file's is
//! [`crate::tenants`]'s; this module decides *when*. With
//! `STREAMHOST_RELOAD=watch` (the default) a thread stats, every
//! `STREAMHOST_RELOAD_POLL_MS`, the manifests in the pipelines directory,
//! every component and model file they name (missing ones too, so one copied
//! in later is noticed), and the tenants file. Polling rather than inotify:
//! it sees in-place writes, write-then-rename and files replaced behind a
//! symlink alike, needs no watch per file nor a new dependency, and a few
//! dozen stats a second cost nothing; the poll interval is capped at 4 s so
//! a change is always seen within 5. When something changed, the thread
//! waits until the files have stayed the same for `STREAMHOST_RELOAD_DEBOUNCE_MS`
//! (a file being written is not read half-way; if it was, the next poll sees
//! it change again), then runs a pass. SIGHUP asks for a forced pass (which
//! also retries failed versions) in `watch` and `signal` modes; with `off`
//! it is logged and ignored, so a habitual `kill -HUP` does not end the
//! server.
//!
//! One thread, one pass at a time: requests that arrive during a pass are
//! coalesced into one more pass, and loading (compiling, opening models, the
//! int8 gate, each node's `init`) never runs on the async runtime's workers.
//! The thread stops when the server shuts down.

use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::config::{Config, ReloadMode};
use crate::metrics::Metrics;
use crate::pipeline::cache::{Digest, Fingerprint};
use crate::pipeline::reconcile::{manifest_files, PassKind, Reconciler};
use crate::tenants::{LiveTenancy, Tenancy};

/// How often the reload thread looks for shutdown when it is not polling.
const IDLE_TICK: Duration = Duration::from_millis(250);

/// Most debounce rounds before a pass runs anyway (a file rewritten forever
/// must not stop every other reload).
const MAX_DEBOUNCE_ROUNDS: usize = 20;

/// The server's handle on reloading: asks for passes, starts the thread.
pub struct ReloadControl {
    mode: ReloadMode,
    requests: mpsc::Sender<()>,
    /// Taken by [`start`](Self::start); a server that never serves (`check`)
    /// never starts a thread.
    worker: Mutex<Option<Worker>>,
}

/// What the reload thread owns.
struct Worker {
    requests: mpsc::Receiver<()>,
    pipelines: Reconciler,
    tenancy: Arc<LiveTenancy>,
    /// The tenants file's path and the digest of the text last read from it.
    tenants_file: Option<(PathBuf, Option<Digest>)>,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
}

/// What the watcher compares between polls.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    /// Manifests, then the files they name; `None`: missing or unreadable.
    pipelines: Vec<(PathBuf, Option<Fingerprint>)>,
    tenants: Option<Fingerprint>,
}

impl ReloadControl {
    /// `pipelines` has made its start pass; `tenancy` is in force.
    pub fn new(
        config: Arc<Config>,
        pipelines: Reconciler,
        tenancy: Arc<LiveTenancy>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (tx, rx) = mpsc::channel();
        let tenants_file = config.tenants_file.clone().map(|path| {
            let digest = std::fs::read(&path).ok().map(|b| Sha256::digest(b).into());
            (path, digest)
        });
        ReloadControl {
            mode: config.reload,
            requests: tx,
            worker: Mutex::new(Some(Worker {
                requests: rx,
                pipelines,
                tenancy,
                tenants_file,
                config,
                metrics,
            })),
        }
    }

    /// Asks for a forced pass over pipelines and tenants (what SIGHUP does);
    /// `false` when reloading is off.
    pub fn request(&self) -> bool {
        self.mode != ReloadMode::Off && self.requests.send(()).is_ok()
    }

    /// Starts the reload thread and the SIGHUP listener (once; later calls do
    /// nothing). Must be called on a tokio runtime. Both stop when `shutdown`
    /// turns true.
    pub fn start(self: &Arc<Self>, shutdown: watch::Receiver<bool>) {
        let worker = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(worker) = worker else {
            return;
        };
        self.listen_for_sighup(shutdown.clone());
        if self.mode == ReloadMode::Off {
            tracing::info!("reloading is off (STREAMHOST_RELOAD=off)");
            return;
        }
        let mode = self.mode;
        let spawned = std::thread::Builder::new()
            .name("streamhost-reload".into())
            .spawn(move || worker.run(mode, shutdown));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the reload thread; files will not be reloaded");
        }
    }

    #[cfg(unix)]
    fn listen_for_sighup(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        let control = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hangup.recv() => {
                        if got.is_none() {
                            return;
                        }
                        if control.request() {
                            tracing::info!("SIGHUP: reloading pipelines and tenants");
                        } else {
                            tracing::info!("SIGHUP ignored: STREAMHOST_RELOAD=off");
                        }
                    }
                    _ = async { let _ = shutdown.wait_for(|stop| *stop).await; } => return,
                }
            }
        });
    }

    #[cfg(not(unix))]
    fn listen_for_sighup(self: &Arc<Self>, _shutdown: watch::Receiver<bool>) {}
}

impl Worker {
    fn run(mut self, mode: ReloadMode, shutdown: watch::Receiver<bool>) {
        let watching = mode == ReloadMode::Watch;
        let tick = if watching {
            self.config.reload_poll
        } else {
            IDLE_TICK
        };
        // Watching, what changed between the start pass and now (the thread
        // starts when `serve` does) is caught by one pass after the first
        // look, since a pass compares content; what changes after the first
        // look, polling sees. (With `signal`, SIGHUP alone reloads.)
        let mut seen = self.snapshot();
        if watching {
            self.pipelines_pass(PassKind::Changed);
            self.reload_tenants();
        }
        loop {
            if *shutdown.borrow() {
                return;
            }
            match self.requests.recv_timeout(tick) {
                Ok(()) => {
                    // Everything asked for while this pass runs is one more pass.
                    while self.requests.try_recv().is_ok() {}
                    seen = self.snapshot();
                    self.pipelines_pass(PassKind::Forced);
                    self.reload_tenants();
                }
                Err(RecvTimeoutError::Timeout) if watching => {
                    let now = self.snapshot();
                    if now == seen {
                        continue;
                    }
                    let now = self.debounce(now, &shutdown);
                    if now.pipelines != seen.pipelines {
                        self.pipelines_pass(PassKind::Changed);
                    }
                    if now.tenants != seen.tenants {
                        self.reload_tenants();
                    }
                    // Taken before the pass: a change made during it is seen next poll.
                    seen = now;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Waits until two looks `debounce` apart agree (bounded).
    fn debounce(&self, mut now: Snapshot, shutdown: &watch::Receiver<bool>) -> Snapshot {
        let wait = self.config.reload_debounce;
        if wait.is_zero() {
            return now;
        }
        for _ in 0..MAX_DEBOUNCE_ROUNDS {
            std::thread::sleep(wait);
            if *shutdown.borrow() {
                break;
            }
            let again = self.snapshot();
            if again == now {
                break;
            }
            now = again;
        }
        now
    }

    fn snapshot(&self) -> Snapshot {
        let dir = self.pipelines.dir();
        let mut pipelines: Vec<(PathBuf, Option<Fingerprint>)> = match manifest_files(dir) {
            Ok(files) => files
                .into_iter()
                .map(|f| {
                    let fp = Fingerprint::of(&f);
                    (f, fp)
                })
                .collect(),
            Err(_) => vec![(dir.to_path_buf(), None)],
        };
        pipelines.extend(
            self.pipelines
                .deps()
                .iter()
                .map(|f| (f.clone(), Fingerprint::of(f))),
        );
        let tenants = self
            .tenants_file
            .as_ref()
            .and_then(|(path, _)| Fingerprint::of(path));
        Snapshot { pipelines, tenants }
    }

    fn pipelines_pass(&mut self, kind: PassKind) {
        let started = Instant::now();
        let tenants: Vec<String> = self
            .tenancy
            .tenants()
            .iter()
            .map(|t| t.id.clone())
            .collect();
        match self.pipelines.pass(kind, &tenants) {
            Ok(r) if r.loaded.is_empty() && r.failed.is_empty() && r.removed.is_empty() => {
                tracing::debug!(
                    unchanged = r.unchanged,
                    ms = started.elapsed().as_millis() as u64,
                    "pipelines unchanged"
                )
            }
            Ok(r) => {
                tracing::info!(loaded = ?r.loaded, failed = ?r.failed, removed = ?r.removed, unchanged = r.unchanged,
                components_cached = r.cached.0, models_cached = r.cached.1,
                ms = started.elapsed().as_millis() as u64, forced = kind == PassKind::Forced, "pipelines reloaded")
            }
            Err(e) => tracing::error!(dir = %self.pipelines.dir().display(), error = %e,
                "cannot read the pipelines directory; every pipeline stays as it is"),
        }
    }

    /// Reads the tenants file and, if its text changed, puts it in force, or
    /// keeps the one in force when it is not valid.
    fn reload_tenants(&mut self) {
        let Some((path, last_read)) = &mut self.tenants_file else {
            return;
        };
        let text = match std::fs::read_to_string(&*path) {
            Ok(t) => t,
            Err(e) => {
                self.metrics
                    .tenants_reloads
                    .with_label_values(&["failed"])
                    .inc();
                tracing::error!(path = %path.display(), error = %e, "cannot read the tenants file; the one in force stays");
                return;
            }
        };
        let digest: Digest = Sha256::digest(text.as_bytes()).into();
        if *last_read == Some(digest) {
            return;
        }
        *last_read = Some(digest);
        let current = self.tenancy.current();
        match Tenancy::parse_after(&text, path, &self.config, Some(&current)) {
            Ok(next) => {
                let ids: Vec<String> = next.tenants().iter().map(|t| t.id.clone()).collect();
                self.tenancy.replace(next);
                self.metrics
                    .tenants_reloads
                    .with_label_values(&["loaded"])
                    .inc();
                tracing::info!(tenants = ?ids, "tenants file reloaded; sessions of revoked tokens are closed, new quotas apply to new sessions");
            }
            Err(e) => {
                self.metrics
                    .tenants_reloads
                    .with_label_values(&["failed"])
                    .inc();
                tracing::error!(error = %e, "tenants file reload failed; the one in force stays");
            }
        }
    }
}
