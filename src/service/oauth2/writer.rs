//! Group insert of new tokens: requests that arrive while an insert is in flight are written
//! together by the next one, in one multi-row statement and one commit. Under light load a
//! batch is a single row (no added latency); under load the database does one commit for many
//! tokens instead of one each, which is what bounds token issuance on PostgreSQL.
use crate::store::{Store, TokenRow};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Rows per statement at most (8 parameters each stays far below SQLite's limit).
const MAX_BATCH: usize = 64;
/// Concurrent insert statements on PostgreSQL; SQLite has one writer at a time, so one
/// statement in flight is all it can use (more would only hold pool connections waiting).
const PG_WORKERS: usize = 4;

type Job = (TokenRow, oneshot::Sender<Result<(), String>>);

#[derive(Debug, Clone)]
pub struct TokenWriter {
    tx: mpsc::Sender<Job>,
}

impl TokenWriter {
    /// Starts the workers on the current runtime; they stop when the writer is dropped.
    pub fn start(store: Store) -> TokenWriter {
        let workers = match store.backend() {
            crate::store::Backend::Postgres => PG_WORKERS,
            crate::store::Backend::Sqlite => 1,
        };
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * PG_WORKERS * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            let (rx, store) = (rx.clone(), store.clone());
            tokio::spawn(async move {
                loop {
                    let mut batch = Vec::with_capacity(MAX_BATCH);
                    {
                        let mut rx = rx.lock().await;
                        let Some(first) = rx.recv().await else { return };
                        batch.push(first);
                        while batch.len() < MAX_BATCH {
                            match rx.try_recv() {
                                Ok(job) => batch.push(job),
                                Err(_) => break,
                            }
                        }
                    }
                    let (rows, waiting): (Vec<TokenRow>, Vec<_>) = batch.into_iter().unzip();
                    let result = store.insert_tokens(&rows).await.map_err(|e| e.to_string());
                    for done in waiting {
                        let _ = done.send(result.clone());
                    }
                }
            });
        }
        TokenWriter { tx }
    }

    /// Writes one row; returns once it is committed.
    pub async fn insert(&self, row: TokenRow) -> Result<(), String> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((row, done))
            .await
            .map_err(|_| "the token writer has stopped".to_string())?;
        wait.await
            .map_err(|_| "the token writer has stopped".to_string())?
    }
}
