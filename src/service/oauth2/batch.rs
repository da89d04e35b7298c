//! The batching loop shared by the token reader and writer: requests that arrive while a
//! statement is in flight are collected, and go out together as the next statement.
//!
//! One statement is in flight at a time, so a batch holds everything that arrived while the
//! one before it ran: batches grow with the load, and each statement costs one round trip (and,
//! for writes, one commit). Measured on PostgreSQL with 64 connections introspecting, one
//! statement in flight served ~20 lookups per statement and 38–42k introspections/s; four in
//! flight ~9 per statement and 33–36k. A slow statement must not hold everything behind it, so
//! once it has run for `FOLLOW_AFTER` the next batch goes out next to it, up to `MAX_IN_FLIGHT`.
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Items per statement at most.
pub const MAX_BATCH: usize = 64;
/// Statements in flight at most.
pub const MAX_IN_FLIGHT: usize = 4;
/// How long a batch waits for the statement before it, at most.
pub const FOLLOW_AFTER: Duration = Duration::from_millis(2);

/// A queue deep enough for full batches on every statement in flight.
pub fn queue<J>() -> (mpsc::Sender<J>, mpsc::Receiver<J>) {
    mpsc::channel(MAX_BATCH * MAX_IN_FLIGHT * 4)
}

/// Runs until every sender is dropped: collects batches from `rx` and hands each to `run`,
/// `in_flight` statements at most (1 for a backend with a single writer).
pub async fn dispatch<J, F, Fut>(mut rx: mpsc::Receiver<J>, in_flight: usize, run: F)
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
