//! Splitting one node's work for one frame over a few threads.
//!
//! At one session a frame's native stages (normalising, cropping, argmax) run
//! while every other core idles, and their time is the frame's latency. They
//! are loops over independent pieces (rows, bands), so the pieces are cut into
//! contiguous groups: one group runs on the calling thread (whose cache
//! already holds the input) and each other on a scoped thread. On two idle
//! cores that comes near halving a stage; on the 2-vCPU VM the benchmarks ran
//! on it bought 20-30% (its vCPUs scale poorly). A thread pool was tried and
//! was slower: handing all the work to pool threads moved it away from the
//! caller's cache and added a wake-up per call. A thread start costs ~50 us,
//! which the shipped nodes' work at video sizes (about a millisecond) repays;
//! `STREAMHOST_NODE_THREADS=1` keeps everything on the frame's thread.

use std::sync::{Arc, Mutex};

/// Runs `work` on every item, the items cut into contiguous groups over up to
/// `threads` threads; the first group runs on the caller. A thread that cannot
/// be started leaves its group to the caller, so the work is always done.
pub fn for_each<T: Send>(threads: usize, items: Vec<T>, work: impl Fn(T) + Sync) {
    let threads = threads.min(items.len()).max(1);
    if threads == 1 {
        items.into_iter().for_each(work);
        return;
    }
    let per_group = items.len().div_ceil(threads);
    let mut groups: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let group: Vec<T> = rest.by_ref().take(per_group).collect();
        if group.is_empty() {
            break;
        }
        groups.push(group);
    }
    let work = &work;
    std::thread::scope(|scope| {
        let mut groups = groups.into_iter();
        let first = groups.next();
        let mut on_caller: Vec<Vec<T>> = first.into_iter().collect();
        for group in groups {
            // A thread that cannot be started leaves its group to the caller.
            let slot = Arc::new(Mutex::new(Some(group)));
            let theirs = slot.clone();
            let started = std::thread::Builder::new().spawn_scoped(scope, move || {
                if let Some(group) = theirs.lock().ok().and_then(|mut g| g.take()) {
                    group.into_iter().for_each(work);
                }
            });
            if started.is_err() {
                on_caller.extend(slot.lock().ok().and_then(|mut g| g.take()));
            }
        }
        on_caller.into_iter().flatten().for_each(work);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_is_done_exactly_once() {
        for threads in [1, 2, 3, 8] {
            for n in [0usize, 1, 2, 7, 100] {
                let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                for_each(threads, (0..n).collect(), |i| {
                    if let Some(h) = hits.get(i) {
                        h.fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(
                    hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                    "{threads} threads, {n} items"
                );
            }
        }
    }

    #[test]
    fn the_first_group_runs_on_the_caller() {
        let caller = std::thread::current().id();
        let first_on_caller = Mutex::new(None);
        for_each(2, vec![0, 1, 2, 3], |i| {
            if i == 0 {
                if let Ok(mut slot) = first_on_caller.lock() {
                    *slot = Some(std::thread::current().id() == caller);
                }
            }
        });
        assert_eq!(first_on_caller.lock().ok().and_then(|s| *s), Some(true));
    }
}
