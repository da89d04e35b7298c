//! Coalesced token lookups: lookups that arrive while others are in flight are answered
//! together by the next statement, `WHERE signature IN (...)`, one round trip for many
//! requests (the read-side twin of writer.rs). Under light load a batch is a single lookup.
//!
//! Strictness is kept: a lookup only joins a statement that has not been sent yet, so every
//! answer reflects the database as of a moment after the request arrived. A token revoked on
//! any replica before a request arrives is never found active for that request.
//!
//! The reader also keeps the decoded sessions of recently read signatures (`Sessions`). A
//! token's session never changes once written (rows are only inserted, deactivated or
//! deleted), so a remembered session cannot be stale: whether the token is still active, and
//! its expiry, are read from the database on every lookup. Only the sealed session column and
//! its decryption and parsing are skipped.
use super::writer::BatchError;
use crate::domain::token::{TokenKind, TokenSession};
use crate::store::{Store, TokenRow};
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

/// Signatures per statement at most.
const MAX_BATCH: usize = 64;
/// Concurrent lookup statements on PostgreSQL: while some are in flight the next batch fills.
const PG_WORKERS: usize = 4;
/// SQLite readers run in parallel under WAL; its pools are small.
const SQLITE_WORKERS: usize = 2;

/// Decoded sessions remembered at most; the table is emptied when full. A session is about
/// 0.5–2 KiB, so this holds at most ~20 MiB.
const MAX_SESSIONS: usize = 10_000;

type Answer = Result<Option<TokenRow>, BatchError>;

struct Job {
    signature: String,
    kind: TokenKind,
    /// Whether the sealed session must be read too.
    with_data: bool,
    done: oneshot::Sender<Answer>,
}

#[derive(Debug, Clone)]
pub struct TokenReader {
    tx: mpsc::Sender<Job>,
    sessions: Arc<DashMap<String, Arc<TokenSession>>>,
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
        TokenReader {
            tx,
            sessions: Arc::new(DashMap::new()),
        }
    }

    /// The row of `signature` if it stores a token of `kind`.
    pub async fn get(&self, signature: String, kind: TokenKind) -> Answer {
        self.fetch(signature, kind, true).await
    }

    /// The row of `signature` with its decoded session: the remembered one, or `open(data)`
    /// (which is then remembered). The row itself is always read from the database.
    pub async fn get_with_session<E>(
        &self,
        signature: String,
        kind: TokenKind,
        open: impl FnOnce(&str) -> Result<TokenSession, E>,
    ) -> Result<Option<(TokenRow, Arc<TokenSession>)>, ReadError<E>> {
        let known = self.sessions.get(&signature).map(|s| s.clone());
        let Some(row) = self
            .fetch(signature, kind, known.is_none())
            .await
            .map_err(ReadError::Store)?
        else {
            return Ok(None);
        };
        let session = match known {
            Some(s) => s,
            None => {
                let s = Arc::new(open(&row.data).map_err(ReadError::Open)?);
                if self.sessions.len() >= MAX_SESSIONS {
                    self.sessions.clear();
                }
                self.sessions.insert(row.signature.clone(), s.clone());
                s
            }
        };
        Ok(Some((row, session)))
    }

    async fn fetch(&self, signature: String, kind: TokenKind, with_data: bool) -> Answer {
        let (done, wait) = oneshot::channel();
        let job = Job {
            signature,
            kind,
            with_data,
            done,
        };
        self.tx
            .send(job)
            .await
            .map_err(|_| BatchError::Stopped("reader"))?;
        wait.await.map_err(|_| BatchError::Stopped("reader"))?
    }
}

/// A failed `get_with_session`: the read, or the decoding of the session.
#[derive(Debug)]
pub enum ReadError<E> {
    Store(BatchError),
    Open(E),
}

/// One statement for the whole batch (the same token is often asked for many times at once).
async fn answer(store: &Store, batch: Vec<Job>) {
    let mut wanted: Vec<&str> = batch.iter().map(|j| j.signature.as_str()).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let with_data = batch.iter().any(|j| j.with_data);
    match store.get_tokens(&wanted, with_data).await {
        Ok(rows) => {
            for job in batch {
                let row = rows
                    .iter()
                    .find(|r| r.signature == job.signature && r.kind == job.kind)
                    .cloned();
                let _ = job.done.send(Ok(row));
            }
        }
        Err(e) => {
            let e = BatchError::from(e);
            for job in batch {
                let _ = job.done.send(Err(e.clone()));
            }
        }
    }
}
