//! Connections still waiting for their first request head: the ones a
//! connection storm is made of, and the only ones that may be turned away to
//! make room.
//!
//! A client that opens thousands of connections and never sends a request
//! head holds a connection slot each until the header timeout, so well-behaved
//! clients were reset while the slots were full. Two rules fix that. Per
//! address, at most `STREAMHOST_MAX_PENDING_PER_ADDRESS` connections may be
//! waiting for their head at once; more from that address are closed on
//! accept. And at `STREAMHOST_MAX_CONNECTIONS`, a new connection takes the
//! slot of the oldest connection still waiting for its head, which is closed.
//! A connection leaves this registry when its first request head arrives
//! (or it ends), so upgraded sessions and requests in progress are never
//! evicted. Everything here is bounded by the connection limit; the lock is
//! held only to add, remove or pick an entry.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// The registry of connections waiting for their first request head.
#[derive(Debug)]
pub struct PendingConnections {
    per_address: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// By arrival: the first entry is the oldest.
    by_id: BTreeMap<u64, (IpAddr, Arc<Notify>)>,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} has {1} connections waiting for their request head already")]
pub struct TooManyPending(pub IpAddr, pub usize);

/// One connection's place in the registry, until its first request head
/// arrives or it ends.
#[derive(Debug)]
pub struct Pending {
    id: u64,
    registry: Arc<PendingConnections>,
    evict: Arc<Notify>,
    served: AtomicBool,
}

impl PendingConnections {
    pub fn new(per_address: usize) -> Arc<Self> {
        Arc::new(PendingConnections {
            per_address: per_address.max(1),
            inner: Mutex::new(Inner::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Each change is one insert or remove on both maps together.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a just-accepted connection from `ip`.
    pub fn register(self: &Arc<Self>, ip: IpAddr) -> Result<Arc<Pending>, TooManyPending> {
        let mut inner = self.lock();
        let count = inner.per_ip.get(&ip).copied().unwrap_or(0);
        if count >= self.per_address {
            return Err(TooManyPending(ip, count));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evict = Arc::new(Notify::new());
        inner.by_id.insert(id, (ip, evict.clone()));
        *inner.per_ip.entry(ip).or_default() += 1;
        Ok(Arc::new(Pending {
            id,
            registry: self.clone(),
            evict,
            served: AtomicBool::new(false),
        }))
    }

    /// Tells the oldest connection still waiting for its head (other than
    /// `except`) to close, and forgets it; false when there is none.
    pub fn evict_oldest(&self, except: &Pending) -> bool {
        let mut inner = self.lock();
        let oldest = inner.by_id.keys().copied().find(|id| *id != except.id);
        match oldest {
            Some(id) => {
                if let Some((_, notify)) = Self::remove_locked(&mut inner, id) {
                    notify.notify_one();
                }
                true
            }
            None => false,
        }
    }

    fn remove_locked(inner: &mut Inner, id: u64) -> Option<(IpAddr, Arc<Notify>)> {
        let (ip, notify) = inner.by_id.remove(&id)?;
        if let Some(count) = inner.per_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                inner.per_ip.remove(&ip);
            }
        }
        Some((ip, notify))
    }

    /// Connections waiting for their head now.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Pending {
    /// Its first request head arrived: it may no longer be evicted.
    pub fn served(&self) {
        if !self.served.swap(true, Ordering::AcqRel) {
            PendingConnections::remove_locked(&mut self.registry.lock(), self.id);
        }
    }

    /// Resolves when this connection was chosen to make room.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.served();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_holds_at_most_its_share_and_the_oldest_makes_room() {
        let registry = PendingConnections::new(2);
        let storm: IpAddr = "127.0.0.2".parse().unwrap();
        let a = registry.register(storm).unwrap();
        let b = registry.register(storm).unwrap();
        assert_eq!(
            registry.register(storm).unwrap_err(),
            TooManyPending(storm, 2)
        );
        let other = registry.register("127.0.0.3".parse().unwrap()).unwrap();
        // `a` is the oldest: it is told to go, and its address has room again.
        assert!(registry.evict_oldest(&other));
        tokio::time::timeout(std::time::Duration::from_secs(1), a.evicted())
            .await
            .unwrap();
        let c = registry.register(storm).unwrap();
        // A connection whose head arrived is never evicted.
        b.served();
        c.served();
        assert!(!registry.evict_oldest(&other));
        assert_eq!(registry.len(), 1);
        drop(other);
        assert!(registry.is_empty());
    }
}
