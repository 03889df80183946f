//! Frame slots shared fairly across tenants: under overload each tenant with
//! frames waiting gets its share of the `STREAMHOST_MAX_FRAMES_IN_FLIGHT`
//! slots (its `weight`, default 1) whatever its number of sessions, and the
//! sessions within a tenant take turns in arrival order.
//!
//! A plain FIFO semaphore is fair per session, so a tenant with eight
//! sessions got eight times the cores of a tenant with one. Here every
//! waiting frame queues under its tenant, and a freed slot goes to the tenant
//! whose virtual time is earliest (start-time fair queuing: each frame
//! granted advances its tenant by `1 / weight`; a tenant that was idle
//! resumes at the current virtual time). A plain round robin was tried first:
//! a tenant whose only session was between frames when its turn came lost
//! the turn, and got a third of the slots instead of half. Each session has at most one frame waiting (the session
//! loop drops the rest as `busy`), so a queue holds at most one entry per
//! open session and nothing grows without bound. A waiter that gives up (its
//! session closed) is skipped when its turn comes. The lock is held only to
//! move an entry between queues: no await and no frame work under it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

/// The shared frame slots.
#[derive(Debug, Clone)]
pub struct FairSlots {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    free: usize,
    /// The virtual time of the last grant: a tenant that was idle starts
    /// here, so idling earns no credit and costs no place.
    now: f64,
    /// Arrival order of waiters, to break ties between tenants.
    next_seq: u64,
    /// Tenants with frames waiting (a tenant leaves when its queue empties).
    tenants: HashMap<String, TenantQueue>,
}

#[derive(Debug)]
struct TenantQueue {
    waiters: VecDeque<(u64, oneshot::Sender<FrameSlot>)>,
    weight: u32,
    /// Its virtual time: advanced by `1 / weight` for each frame granted.
    vtime: f64,
}

/// One frame slot, held while a frame waits no longer and runs; dropping it
/// hands the slot to the next waiter.
#[derive(Debug)]
pub struct FrameSlot {
    slots: Option<FairSlots>,
}

impl Drop for FrameSlot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release();
        }
    }
}

impl FairSlots {
    pub fn new(slots: usize) -> Self {
        FairSlots {
            inner: Arc::new(Mutex::new(State {
                free: slots.max(1),
                now: 0.0,
                next_seq: 0,
                tenants: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a few queue moves that leave the
        // state consistent, so a poisoned lock is still good.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for one frame of `tenant` (`weight`: its share).
    pub async fn acquire(&self, tenant: &str, weight: u32) -> FrameSlot {
        let rx = {
            let mut state = self.lock();
            if state.free > 0 && state.tenants.is_empty() {
                state.free -= 1;
                return FrameSlot {
                    slots: Some(self.clone()),
                };
            }
            let (tx, rx) = oneshot::channel();
            let (seq, now) = (state.next_seq, state.now);
            state.next_seq += 1;
            let queue = state
                .tenants
                .entry(tenant.to_string())
                .or_insert_with(|| TenantQueue {
                    waiters: VecDeque::new(),
                    weight: 1,
                    vtime: now,
                });
            queue.weight = weight.max(1);
            queue.waiters.push_back((seq, tx));
            self.dispatch(&mut state);
            rx
        };
        match rx.await {
            Ok(slot) => slot,
            // The sender is only dropped with the whole `FairSlots`.
            Err(_) => FrameSlot { slots: None },
        }
    }

    fn release(&self) {
        let mut state = self.lock();
        state.free += 1;
        self.dispatch(&mut state);
    }

    /// Hands free slots to waiters: each to the tenant with the earliest
    /// virtual time (start-time fair queuing), ties to the oldest waiter.
    fn dispatch(&self, state: &mut State) {
        while state.free > 0 {
            let now = state.now;
            // Only the chosen tenant's key is copied, once per grant.
            let next = state
                .tenants
                .iter()
                .filter_map(|(id, q)| {
                    let (seq, _) = q.waiters.front()?;
                    Some((q.vtime.max(now), *seq, id))
                })
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .map(|(tag, _, id)| (tag, id.clone()));
            let Some((tag, tenant)) = next else {
                state.tenants.clear();
                return;
            };
            let Some(queue) = state.tenants.get_mut(&tenant) else {
                return;
            };
            let Some((_, waiter)) = queue.waiters.pop_front() else {
                state.tenants.remove(&tenant);
                continue;
            };
            let slot = FrameSlot {
                slots: Some(self.clone()),
            };
            match waiter.send(slot) {
                Ok(()) => {
                    state.free -= 1;
                    state.now = tag;
                    queue.vtime = tag + 1.0 / f64::from(queue.weight);
                }
                // A waiter whose session gave up: its slot comes back unused
                // (not released, so no re-entry here), and the next one is tried.
                Err(mut returned) => returned.slots = None,
            }
            if queue.waiters.is_empty() {
                state.tenants.remove(&tenant);
            }
        }
    }

    /// Slots free now (for tests and metrics).
    pub fn free(&self) -> usize {
        self.lock().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Who got each of `grants` slots when `a` has `na` frames waiting and `b` has `nb`,
    /// with one slot cycling: the order turns are given in.
    async fn turns(weights: (u32, u32), na: usize, nb: usize, grants: usize) -> Vec<&'static str> {
        let slots = FairSlots::new(1);
        let first = slots.acquire("warmup", 1).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for (name, weight, n) in [("a", weights.0, na), ("b", weights.1, nb)] {
            for _ in 0..n {
                let (slots, tx) = (slots.clone(), tx.clone());
                tasks.push(tokio::spawn(async move {
                    let slot = slots.acquire(name, weight).await;
                    tx.send((name, slot)).ok();
                }));
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        let mut order = Vec::new();
        for _ in 0..grants {
            let (name, slot) = rx.recv().await.unwrap();
            order.push(name);
            drop(slot);
        }
        order
    }

    #[tokio::test]
    async fn tenants_take_turns_whatever_their_number_of_waiters() {
        let order = turns((1, 1), 8, 2, 6).await;
        assert_eq!(order, ["a", "b", "a", "b", "a", "a"]);
    }

    #[tokio::test]
    async fn a_weight_of_two_gets_two_frames_for_each_of_the_others() {
        let order = turns((2, 1), 20, 20, 30).await;
        let a = order.iter().filter(|t| **t == "a").count();
        assert_eq!((a, order.len() - a), (20, 10), "{order:?}");
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_is_skipped_and_the_slot_goes_on() {
        let slots = FairSlots::new(1);
        let held = slots.acquire("a", 1).await;
        let gave_up = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire("a", 1).await }
        });
        tokio::task::yield_now().await;
        gave_up.abort();
        let _ = gave_up.await;
        let next = tokio::spawn({
            let slots = slots.clone();
            async move { slots.acquire("b", 1).await }
        });
        tokio::task::yield_now().await;
        drop(held);
        let slot = next.await.unwrap();
        assert_eq!(slots.free(), 0);
        drop(slot);
        assert_eq!(slots.free(), 1);
    }
}
