//! Group insert of new tokens: requests that arrive while an insert is in flight are written
//! together by the next one, in one multi-row statement and one commit. Under light load a
//! batch is a single row (no added latency); under load the database does one commit for many
//! tokens instead of one each, which is what bounds token issuance on PostgreSQL.
//!
//! A failed batch statement writes nothing (one statement is atomic), so its rows are then
//! written one by one: only the request whose row is at fault fails, not its neighbours.
use super::batch::{self, BatchError};
use crate::store::{Store, TokenRow};
use tokio::sync::{mpsc, oneshot};

type Job = (TokenRow, oneshot::Sender<Result<(), BatchError>>);

#[derive(Debug, Clone)]
pub struct TokenWriter {
    tx: mpsc::Sender<Job>,
}

impl TokenWriter {
    /// Starts the batching loop on the current runtime (`batch.rs`); it stops when the
    /// writer is dropped. Rows per statement stay at most `batch::MAX_BATCH` (8 parameters each
    /// stays far below SQLite's limit). SQLite has one writer at a time, so one statement in
    /// flight is all it can use (more would only hold pool connections waiting).
    pub fn start(store: Store) -> TokenWriter {
        let tx = batch::spawn(
            store,
            1,
            |store, jobs| async move { write(&store, jobs).await },
        );
        TokenWriter { tx }
    }

    /// Writes one row; returns once it is committed.
    pub async fn insert(&self, row: TokenRow) -> Result<(), BatchError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((row, done))
            .await
            .map_err(|_| BatchError::Stopped("writer"))?;
        wait.await.map_err(|_| BatchError::Stopped("writer"))?
    }
}

/// Writes a batch in one statement; if that fails and the batch has several rows, retries each
/// row alone so that each request gets the outcome of its own row.
async fn write(store: &Store, batch: Vec<Job>) {
    let (rows, waiting): (Vec<TokenRow>, Vec<_>) = batch.into_iter().unzip();
    let result = store.insert_tokens(&rows).await.map_err(BatchError::from);
    if result.is_ok() || rows.len() == 1 {
        for done in waiting {
            let _ = done.send(result.clone());
        }
        return;
    }
    for (row, done) in rows.into_iter().zip(waiting) {
        let alone = store
            .insert_tokens(std::slice::from_ref(&row))
            .await
            .map_err(BatchError::from);
        let _ = done.send(alone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::TokenKind;
    use crate::store::StoreError;

    fn row(sig: &str) -> TokenRow {
        TokenRow {
            signature: sig.into(),
            kind: TokenKind::Access,
            request_id: format!("req-{sig}"),
            client_id: "c".into(),
            active: true,
            requested_at: 0,
            expires_at: 0,
            data: String::new(),
        }
    }

    #[test]
    fn a_pool_timeout_is_overload_and_nothing_else_is() {
        let timeout = BatchError::from(StoreError::Database(sqlx::Error::PoolTimedOut));
        assert!(timeout.is_pool_timeout());
        assert!(!BatchError::from(StoreError::NotFound).is_pool_timeout());
        assert!(!BatchError::Stopped("writer").is_pool_timeout());
        assert_eq!(
            BatchError::Stopped("reader").to_string(),
            "the token reader has stopped"
        );
    }

    /// A batch of twenty rows, one of which repeats a stored signature: that row's request
    /// fails alone and the other nineteen are stored.
    #[tokio::test]
    async fn one_bad_row_fails_only_its_own_request() {
        let store = Store::connect("memory").await.unwrap();
        store.migrate().await.unwrap();
        store.insert_tokens(&[row("taken")]).await.unwrap();
        let mut batch = Vec::new();
        let mut answers = Vec::new();
        for i in 0..20 {
            let sig = if i == 7 {
                "taken".to_string()
            } else {
                format!("s{i}")
            };
            let (done, wait) = oneshot::channel();
            batch.push((row(&sig), done));
            answers.push(wait);
        }
        write(&store, batch).await;
        for (i, wait) in answers.into_iter().enumerate() {
            let r = wait.await.unwrap();
            assert_eq!(r.is_ok(), i != 7, "row {i}: {r:?}");
        }
        assert_eq!(store.count_tokens(TokenKind::Access).await.unwrap(), 20);
    }
}
