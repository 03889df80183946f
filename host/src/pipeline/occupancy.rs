//! How many frames are executing at this moment, across every session.
//!
//! A frame that runs alone may spread its work over every core: ONNX Runtime
//! gives it the model's solo session (one intra-op thread per core) and the
//! native nodes split their loops ([`crate::nodes::par`]). When several frames
//! run at once the cores are already busy with other frames, and the same
//! spreading only oversubscribes them: on the 2-core machine of BENCHMARKS.md,
//! `ocr` at 2-8 sessions with two ONNX threads per frame gave 9.8-11.3
//! frames/s, with this rule 11.8-12.2, at the same latency for one session
//! (92.7 against 93.8 ms). So the executor enters this count for the
//! length of a frame and every node asks [`Occupancy::alone`] when it starts;
//! the answer only chooses how many threads do the work. Native nodes give
//! identical values either way; ONNX Runtime blocks its loops by thread
//! count, which can move the last bits of a float (about 1e-6 on the
//! recogniser's probabilities at four threads against one), never the class
//! a decoding step reads (both tested).
//!
//! The count is shared by all sessions of one server (`AppState` owns it) and
//! is bounded by the admission limit, since only admitted frames execute.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The number of frames executing now; cheap to clone (one shared counter).
#[derive(Debug, Clone, Default)]
pub struct Occupancy(Arc<AtomicUsize>);

/// One executing frame, counted until dropped.
#[derive(Debug)]
pub struct Entered<'a>(&'a AtomicUsize);

impl Occupancy {
    /// Counts one more executing frame until the returned guard is dropped.
    pub fn enter(&self) -> Entered<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Entered(&self.0)
    }

    /// Frames executing now.
    pub fn running(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Whether the caller's frame is the only one executing (a caller that has
    /// not entered counts as alone when nothing else runs).
    pub fn alone(&self) -> bool {
        self.running() <= 1
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_alone_until_another_enters() {
        let occupancy = Occupancy::default();
        assert!(occupancy.alone());
        let first = occupancy.enter();
        assert!(occupancy.alone());
        let shared = occupancy.clone();
        let second = shared.enter();
        assert_eq!(occupancy.running(), 2);
        assert!(!occupancy.alone());
        drop(second);
        assert!(occupancy.alone());
        drop(first);
        assert_eq!(occupancy.running(), 0);
    }

    #[test]
    fn the_count_is_shared_across_threads() {
        let occupancy = Occupancy::default();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        let _frame = occupancy.enter();
                        assert!(occupancy.running() >= 1);
                    }
                });
            }
        });
        assert_eq!(occupancy.running(), 0);
    }
}
