//! Cache coherence across replicas. Each process reads the change counters
//! (`portcullis_changes`, bumped in the same transaction as every key-set or client write) every
//! `POLL` and moves a local generation per kind when a counter moved. Caches tag each entry
//! with the generation taken *before* the database read that filled it, and serve it only while
//!
//! - the tag equals the current generation (no change seen since the read began), and
//! - the last successful poll *started* less than `BOUND` ago.
//!
//! A change committed at time T is seen by every poll that starts after T, so no replica serves
//! data older than the change after T + `BOUND`; when polls fail or stall, caches are bypassed
//! instead of trusted. A write through this process moves the generation at once.
use crate::store::changes::{CLIENTS, KEYS};
use crate::store::{Store, StoreError};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How often each process reads the change counters.
pub const POLL: Duration = Duration::from_millis(250);
/// The most a cached key set or client may lag a change made through another replica.
pub const BOUND: Duration = Duration::from_secs(1);

/// The kinds of cached data with a change counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keys,
    Clients,
}

impl Kind {
    fn index(self) -> usize {
        match self {
            Kind::Keys => 0,
            Kind::Clients => 1,
        }
    }

    fn from_name(name: &str) -> Option<Kind> {
        match name {
            KEYS => Some(Kind::Keys),
            CLIENTS => Some(Kind::Clients),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    /// The database counter as last read (-1 before the first read).
    seen: AtomicI64,
    /// Moves on every change seen, here or in the database.
    generation: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    origin: Instant,
    /// Microseconds since `origin` at which the last successful poll started (0: none yet).
    confirmed: AtomicU64,
    /// False for a process-local instance (no watcher): only local writes invalidate.
    watched: bool,
    counters: [Counter; 2],
}

/// Shared by the caches of one process; cheap to clone.
#[derive(Debug, Clone)]
pub struct Changes {
    inner: Arc<Inner>,
}

impl Changes {
    fn new(watched: bool) -> Changes {
        let counters = [Counter::default(), Counter::default()];
        for c in &counters {
            c.seen.store(-1, Ordering::SeqCst);
        }
        Changes {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                confirmed: AtomicU64::new(0),
                watched,
                counters,
            }),
        }
    }

    /// Coherent with this process's own writes only (tools and tests that run no server).
    pub fn local() -> Changes {
        Changes::new(false)
    }

    /// Reads the counters once, then keeps reading them every `POLL` on a background task
    /// that ends when the last clone of the returned value is dropped.
    pub async fn watch(store: Store) -> Result<Changes, StoreError> {
        let changes = Changes::new(true);
        changes.poll(&store).await?;
        let weak = Arc::downgrade(&changes.inner);
        tokio::spawn(watcher(weak, store));
        Ok(changes)
    }

    fn now_micros(&self) -> u64 {
        self.inner.origin.elapsed().as_micros() as u64 + 1
    }

    async fn poll(&self, store: &Store) -> Result<(), StoreError> {
        let started = self.now_micros();
        for (name, version) in store.change_versions().await? {
            let Some(kind) = Kind::from_name(&name) else {
                continue;
            };
            let c = &self.inner.counters[kind.index()];
            let before = c.seen.swap(version, Ordering::SeqCst);
            if before != version && before != -1 {
                c.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.inner.confirmed.fetch_max(started, Ordering::SeqCst);
        Ok(())
    }

    /// The generation to tag an entry with; take it before the read that fills the entry.
    pub fn generation(&self, kind: Kind) -> u64 {
        self.inner.counters[kind.index()]
            .generation
            .load(Ordering::SeqCst)
    }

    /// Whether an entry tagged `tag` may be served now.
    pub fn valid(&self, kind: Kind, tag: u64) -> bool {
        tag == self.generation(kind) && self.fresh()
    }

    /// Whether the last successful poll started less than `BOUND` ago.
    pub fn fresh(&self) -> bool {
        if !self.inner.watched {
            return true;
        }
        let confirmed = self.inner.confirmed.load(Ordering::SeqCst);
        confirmed != 0 && self.now_micros().saturating_sub(confirmed) < BOUND.as_micros() as u64
    }

    /// Call after a write of `kind` through this process committed.
    pub fn changed_here(&self, kind: Kind) {
        self.inner.counters[kind.index()]
            .generation
            .fetch_add(1, Ordering::SeqCst);
    }
}

async fn watcher(weak: Weak<Inner>, store: Store) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        let Some(inner) = weak.upgrade() else { return };
        let changes = Changes { inner };
        match changes.poll(&store).await {
            Ok(()) => {
                if failing {
                    tracing::info!("change counters readable again; caches trusted again");
                }
                failing = false;
            }
            Err(StoreError::Database(sqlx::Error::PoolClosed)) => return,
            Err(e) => {
                // Caches stop being served once BOUND passes without a successful read.
                if !failing {
                    tracing::warn!(error = %e, "cannot read change counters; bypassing caches");
                }
                failing = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_writes_void_older_tags() {
        let c = Changes::local();
        let tag = c.generation(Kind::Keys);
        assert!(c.valid(Kind::Keys, tag));
        c.changed_here(Kind::Keys);
        assert!(!c.valid(Kind::Keys, tag));
        assert!(c.valid(Kind::Clients, c.generation(Kind::Clients)));
    }

    #[tokio::test]
    async fn counters_moved_by_another_writer_void_tags() {
        let store = Store::connect("memory").await.unwrap();
        store.migrate().await.unwrap();
        let c = Changes::watch(store.clone()).await.unwrap();
        let keys = c.generation(Kind::Keys);
        let clients = c.generation(Kind::Clients);
        assert!(c.valid(Kind::Keys, keys));
        // Another replica deletes a key set: only the counter in the database moves.
        store.delete_set("nothing").await.unwrap();
        c.poll(&store).await.unwrap();
        assert!(!c.valid(Kind::Keys, keys));
        assert!(c.valid(Kind::Clients, clients));
    }
}
