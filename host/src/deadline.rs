//! A frame's deadline (`STREAMHOST_FRAME_TIMEOUT_MS`) and its cancellation
//! when its session closes: one token per frame, shared by the session loop,
//! the executor and the node running.
//!
//! Shaped by what can and cannot be stopped. Aborting the session loop's task
//! does not stop a `spawn_blocking` closure, and a native node (libjpeg, our
//! pixel loops) has no safe point to stop at; so the executor checks the
//! token between nodes and stops there, and a native node that runs past the
//! deadline fails the frame when it returns. ONNX Runtime can stop a run in
//! progress (`RunOptions::terminate`), so an `onnx` node registers an
//! [`Interrupt`] for its run and cancelling the token calls it at once. A
//! Wasm call is already bounded by its epoch deadline; the executor shortens
//! that to the frame's remaining time.
//!
//! Who cancels: the deadline is noticed both by whoever checks the clock
//! ([`FrameDeadline::cancelled`] compares it with now, so the executor needs
//! no helper to see it between nodes) and by a watcher that expires the token
//! when it passes, which is what interrupts an ONNX run in progress: the
//! session loop's task awaits the frame through [`FrameDeadline::enforce`],
//! a tokio timer rather than a thread of our own. The session loop calls
//! [`FrameDeadline::abandon`] when its session ends with the frame in flight.
//!
//! The clock starts when the frame starts executing (with its admission turn
//! held), not on arrival: the deadline bounds how long one frame may hold a
//! turn, so a frame waiting for a turn waits at most the deadline for each
//! frame ahead of it. A leaf (it imports nothing from the crate), so nodes,
//! the executor and the session loop can all hold it. Nothing grows: the registered interrupts are the nodes
//! of one wave running at once, each removed when its run ends.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Why a frame stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    /// Its deadline passed.
    Deadline,
    /// Its session closed: nobody waits for the answer.
    SessionClosed,
}

/// Something a cancelled frame stops at once (an ONNX run in progress).
pub trait Interrupt: Send + Sync {
    fn interrupt(&self);
}

const RUNNING: u8 = 0;
const EXPIRED: u8 = 1;
const ABANDONED: u8 = 2;

/// One frame's deadline and cancel flag; clones share them.
#[derive(Clone)]
pub struct FrameDeadline {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: no deadline (the frame may still be abandoned).
    budget: Option<Duration>,
    /// When the frame started executing; the deadline is this plus `budget`.
    started: OnceLock<Instant>,
    state: AtomicU8,
    next_id: AtomicU64,
    /// The interrupts of the runs in progress, by registration id.
    interrupts: Mutex<Vec<(u64, Arc<dyn Interrupt>)>>,
}

impl std::fmt::Debug for FrameDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDeadline")
            .field("budget", &self.inner.budget)
            .field("cancelled", &self.cancelled())
            .finish()
    }
}

impl FrameDeadline {
    /// A token for a frame that may run for `budget` once started (`None`:
    /// as long as it takes). The clock does not run until [`start`](Self::start).
    pub fn new(budget: Option<Duration>) -> Self {
        FrameDeadline {
            inner: Arc::new(Inner {
                budget,
                started: OnceLock::new(),
                state: AtomicU8::new(RUNNING),
                next_id: AtomicU64::new(0),
                interrupts: Mutex::new(Vec::new()),
            }),
        }
    }

    /// No deadline; only [`abandon`](Self::abandon) stops the frame.
    pub fn none() -> Self {
        Self::new(None)
    }

    /// Starts the clock (the first call does; later ones change nothing) and
    /// returns the deadline, if there is one.
    pub fn start(&self) -> Option<Instant> {
        let started = *self.inner.started.get_or_init(Instant::now);
        self.inner.budget.map(|b| started + b)
    }

    /// The budget in whole milliseconds, for messages (0 without one).
    pub fn budget_ms(&self) -> u64 {
        self.inner
            .budget
            .map_or(0, |b| u64::try_from(b.as_millis()).unwrap_or(u64::MAX))
    }

    /// Time left before the deadline, once started (`None`: no deadline or
    /// not started; zero once passed).
    pub fn remaining(&self) -> Option<Duration> {
        let started = self.inner.started.get()?;
        let at = *started + self.inner.budget?;
        Some(at.saturating_duration_since(Instant::now()))
    }

    /// Whether the frame should stop, and why: abandoned by its session, or
    /// past its deadline (whether or not a watcher has expired it yet).
    pub fn cancelled(&self) -> Option<Cancel> {
        match self.inner.state.load(Ordering::Acquire) {
            ABANDONED => Some(Cancel::SessionClosed),
            EXPIRED => Some(Cancel::Deadline),
            _ if self.remaining() == Some(Duration::ZERO) => Some(Cancel::Deadline),
            _ => None,
        }
    }

    /// The deadline passed: interrupt the runs in progress.
    pub fn expire(&self) {
        self.cancel(EXPIRED);
    }

    /// The frame's session closed: interrupt the runs in progress, and the
    /// executor stops before the next node.
    pub fn abandon(&self) {
        self.cancel(ABANDONED);
    }

    fn cancel(&self, why: u8) {
        // The first reason stands: a frame abandoned after it expired is still late.
        let _ =
            self.inner
                .state
                .compare_exchange(RUNNING, why, Ordering::AcqRel, Ordering::Acquire);
        let interrupts: Vec<Arc<dyn Interrupt>> =
            self.lock().iter().map(|(_, i)| Arc::clone(i)).collect();
        for i in interrupts {
            i.interrupt();
        }
    }

    /// Registers `interrupt` for as long as the returned guard lives. If the
    /// frame is cancelled already, it is interrupted at once (a run started
    /// after the deadline passed stops at its first step).
    pub fn on_cancel(&self, interrupt: Arc<dyn Interrupt>) -> Registered {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, Arc::clone(&interrupt)));
        // After registering, so a cancel between the two is not missed.
        if self.cancelled().is_some() {
            interrupt.interrupt();
        }
        Registered {
            deadline: self.clone(),
            id,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<dyn Interrupt>)>> {
        self.inner
            .interrupts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Awaits `work` (the frame's blocking task), expiring the token when the
    /// deadline passes first, then still awaiting `work`: it returns soon
    /// after, the executor failing the frame with the node it was in.
    pub async fn enforce<T>(
        &self,
        work: tokio::task::JoinHandle<T>,
    ) -> Result<T, tokio::task::JoinError> {
        let Some(at) = self.start() else {
            return work.await;
        };
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => return done,
            () = tokio::time::sleep_until(at.into()) => self.expire(),
        }
        work.await
    }
}

/// An [`Interrupt`] registered with a frame; dropping it unregisters it.
pub struct Registered {
    deadline: FrameDeadline,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.deadline.lock().retain(|(id, _)| *id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Interrupt for Count {
        fn interrupt(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn hits(c: &Count) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    #[test]
    fn the_clock_runs_from_start_and_the_deadline_is_seen_without_a_watcher() {
        let d = FrameDeadline::new(Some(Duration::from_millis(30)));
        assert_eq!(d.remaining(), None, "not started");
        assert_eq!(d.cancelled(), None);
        let at = d.start();
        assert_eq!(d.start(), at, "a second start changes nothing");
        assert!(d
            .remaining()
            .is_some_and(|r| r <= Duration::from_millis(30)));
        assert_eq!(d.budget_ms(), 30);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(d.remaining(), Some(Duration::ZERO));
        assert_eq!(d.cancelled(), Some(Cancel::Deadline));
    }

    #[test]
    fn without_a_budget_only_abandoning_cancels() {
        let d = FrameDeadline::none();
        assert_eq!(d.start(), None);
        assert_eq!(d.remaining(), None);
        assert_eq!(d.budget_ms(), 0);
        assert_eq!(d.cancelled(), None);
        d.abandon();
        assert_eq!(d.cancelled(), Some(Cancel::SessionClosed));
    }

    #[test]
    fn cancelling_interrupts_registered_runs_and_the_first_reason_stands() {
        let d = FrameDeadline::new(Some(Duration::from_secs(60)));
        d.start();
        let run = Arc::new(Count::default());
        let done = Arc::new(Count::default());
        let guard = d.on_cancel(run.clone());
        drop(d.on_cancel(done.clone()));
        assert_eq!(hits(&run), 0);
        d.expire();
        assert_eq!(d.cancelled(), Some(Cancel::Deadline));
        assert_eq!(hits(&run), 1);
        assert_eq!(hits(&done), 0, "a finished run was unregistered");
        d.abandon();
        assert_eq!(d.cancelled(), Some(Cancel::Deadline), "still late");
        drop(guard);
        assert!(d.lock().is_empty(), "nothing is kept once runs end");
    }

    #[test]
    fn a_run_registered_after_cancelling_is_interrupted_at_once() {
        let d = FrameDeadline::none();
        d.abandon();
        let late = Arc::new(Count::default());
        let _guard = d.on_cancel(late.clone());
        assert_eq!(hits(&late), 1);
    }

    #[tokio::test]
    async fn enforce_expires_the_token_when_the_work_outlives_the_deadline() {
        let d = FrameDeadline::new(Some(Duration::from_millis(20)));
        let run = Arc::new(Count::default());
        let _guard = d.on_cancel(run.clone());
        let told = run.clone();
        let work = tokio::task::spawn_blocking(move || {
            // Work that only stops when interrupted (as an ONNX run does).
            while hits(&told) == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            "stopped"
        });
        assert_eq!(d.enforce(work).await.ok(), Some("stopped"));
        assert_eq!(hits(&run), 1, "the watcher interrupted the run");
        let quick = FrameDeadline::new(Some(Duration::from_secs(60)));
        let work = tokio::task::spawn_blocking(|| 7);
        assert_eq!(quick.enforce(work).await.ok(), Some(7));
        assert_eq!(quick.cancelled(), None);
    }
}
