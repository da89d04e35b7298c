//! Coalesced token lookups: lookups that arrive while others are in flight are answered
//! together by the next statement, `WHERE signature IN (...)`, one round trip for many
//! requests (the read-side twin of writer.rs). Under light load a batch is a single lookup.
//!
//! Strictness is kept: a lookup only joins a statement that has not been sent yet, so every
//! answer reflects the database as of a moment after the request arrived. A token revoked on
//! any replica before a request arrives is never found active for that request.
use crate::domain::token::TokenKind;
use crate::store::{Store, TokenRow};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Signatures per statement at most.
const MAX_BATCH: usize = 64;
/// Concurrent lookup statements on PostgreSQL: while some are in flight the next batch fills.
const PG_WORKERS: usize = 4;
/// SQLite readers run in parallel under WAL; its pools are small.
const SQLITE_WORKERS: usize = 2;

type Answer = Result<Option<TokenRow>, String>;
type Job = (String, TokenKind, oneshot::Sender<Answer>);

#[derive(Debug, Clone)]
pub struct TokenReader {
    tx: mpsc::Sender<Job>,
}

impl TokenReader {
    /// Starts the workers on the current runtime; they stop when the reader is dropped.
    pub fn start(store: Store) -> TokenReader {
        let workers = match store.backend() {
            crate::store::Backend::Postgres => PG_WORKERS,
            crate::store::Backend::Sqlite => SQLITE_WORKERS,
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
                    answer(&store, batch).await;
                }
            });
        }
        TokenReader { tx }
    }

    /// The row of `signature` if it stores a token of `kind`.
    pub async fn get(&self, signature: String, kind: TokenKind) -> Answer {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((signature, kind, done))
            .await
            .map_err(|_| "the token reader has stopped".to_string())?;
        wait.await
            .map_err(|_| "the token reader has stopped".to_string())?
    }
}

/// One statement for the whole batch (the same token is often asked for many times at once).
async fn answer(store: &Store, batch: Vec<Job>) {
    let mut wanted: Vec<&str> = batch.iter().map(|j| j.0.as_str()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    match store.get_tokens(&wanted).await {
        Ok(rows) => {
            for (signature, kind, done) in batch {
                let row = rows
                    .iter()
                    .find(|r| r.signature == signature && r.kind == kind)
                    .cloned();
                let _ = done.send(Ok(row));
            }
        }
        Err(e) => {
            let e = e.to_string();
            for (_, _, done) in batch {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}
