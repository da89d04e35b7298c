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
use super::batch::{self, BatchError};
use crate::domain::token::{TokenKind, TokenSession};
use crate::store::{Store, TokenRow};
use dashmap::DashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

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
    /// Starts the batching loop on the current runtime (`batch.rs`); it stops when the reader
    /// is dropped.
    pub fn start(store: Store) -> TokenReader {
        // Two lookups at most on SQLite (one connection in memory, four on a file) leave the
        // rest of its pool to writes and other reads.
        let tx = batch::spawn(
            store,
            2,
            |store, jobs| async move { answer(&store, jobs).await },
        );
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn row(signature: &str, kind: TokenKind) -> TokenRow {
        TokenRow {
            signature: signature.into(),
            kind,
            request_id: format!("req-{signature}"),
            client_id: "c".into(),
            active: true,
            requested_at: 1,
            expires_at: i64::MAX,
            data: format!("data-{signature}"),
        }
    }

    async fn store_with(rows: &[TokenRow]) -> Store {
        let store = Store::connect("memory").await.unwrap();
        store.migrate().await.unwrap();
        store.insert_tokens(rows).await.unwrap();
        store
    }

    /// Hundreds of concurrent lookups, batched together: each gets its own row, of its kind only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_lookups_each_get_their_own_row() {
        let rows: Vec<TokenRow> = (0..40)
            .map(|i| {
                let kind = if i % 2 == 0 {
                    TokenKind::Access
                } else {
                    TokenKind::Refresh
                };
                row(&format!("sig{i}"), kind)
            })
            .collect();
        let reader = TokenReader::start(store_with(&rows).await);
        let mut set = tokio::task::JoinSet::new();
        for n in 0..400 {
            let reader = reader.clone();
            set.spawn(async move {
                let i = n % 50;
                let asked = if n % 3 == 0 {
                    TokenKind::Refresh
                } else {
                    TokenKind::Access
                };
                let found = reader.get(format!("sig{i}"), asked).await.unwrap();
                (i, asked, found)
            });
        }
        while let Some(done) = set.join_next().await {
            let (i, asked, found) = done.unwrap();
            let stored_kind = if i % 2 == 0 {
                TokenKind::Access
            } else {
                TokenKind::Refresh
            };
            match found {
                Some(r) => {
                    assert!(i < 40 && asked == stored_kind, "sig{i} as {asked:?}");
                    assert_eq!(
                        (r.signature, r.data),
                        (format!("sig{i}"), format!("data-sig{i}"))
                    );
                }
                None => assert!(i >= 40 || asked != stored_kind, "sig{i} as {asked:?}"),
            }
        }
    }

    /// A lookup that starts after a revocation never sees the token active, however many
    /// lookups of it are batched around it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lookup_after_a_revocation_sees_it() {
        let store = store_with(&[row("tok", TokenKind::Access)]).await;
        let reader = TokenReader::start(store.clone());
        let mut before = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let reader = reader.clone();
            before.spawn(async move { reader.get("tok".into(), TokenKind::Access).await });
        }
        store.revoke_request("req-tok").await.unwrap();
        for _ in 0..20 {
            let after = reader.get("tok".into(), TokenKind::Access).await.unwrap();
            assert!(after.is_none(), "revoked rows are deleted");
        }
        while let Some(done) = before.join_next().await {
            done.unwrap().unwrap();
        }
    }
}
