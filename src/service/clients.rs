//! Client management: validation, secret generation and hashing, persistence, and the
//! per-process client cache, kept coherent across replicas by `service::changes`.
use super::changes::{Changes, Kind};
use crate::crypto::hasher::HashError;
use crate::crypto::random_secret;
use crate::domain::client::{Client, ClientError, Policy};
use crate::service::fetch::Fetcher;
use crate::service::secrets::{HashingError, SecretVerifier};
use crate::store::{Store, StoreError, StoredClient};
use dashmap::DashMap;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    #[error(transparent)]
    Invalid(#[from] ClientError),
    #[error("client not found")]
    NotFound,
    #[error("a client with this id exists already")]
    Conflict,
    /// Every secret-hashing worker stayed busy past the queue deadline.
    #[error("secret hashing is at capacity")]
    Busy,
    /// The database failed (not found, conflicts and pool exhaustion have their own variants).
    #[error("internal error: {0}")]
    Store(#[source] StoreError),
    /// A stored client could not be encoded to or decoded from JSON.
    #[error("internal error: {0}")]
    Json(#[from] serde_json::Error),
    /// Hashing a new client secret failed.
    #[error("internal error: {0}")]
    Hashing(#[source] HashError),
}

impl From<HashingError> for ClientsError {
    fn from(e: HashingError) -> Self {
        match e {
            HashingError::Busy => ClientsError::Busy,
            HashingError::Failed(e) => ClientsError::Hashing(e),
        }
    }
}

impl From<StoreError> for ClientsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ClientsError::NotFound,
            StoreError::Conflict(_) => ClientsError::Conflict,
            e if e.is_pool_timeout() => ClientsError::Busy,
            other => ClientsError::Store(other),
        }
    }
}

/// Cached clients at most. An entry is served only while no client change has been seen since
/// it was read: writes through this process void it at once, writes through another replica
/// within `changes::BOUND` (their transaction bumps the `clients` counter).
const CACHE_MAX: usize = 10_000;

/// Client reads that miss the cache hold at most this many pooled connections at once. Client
/// ids arrive unauthenticated: a flood of random ids misses the cache on every request, and
/// without this bound its reads would queue in the pool ahead of the token reads and writes of
/// verified clients (measured: a flood with a third unknown ids cut a verified client's token
/// rate by a fifth). A read that waits longer than the pool's acquire timeout gets `Busy`.
const LOOKUPS: usize = 4;

#[derive(Debug)]
pub struct Clients {
    pub store: Store,
    pub clock: Arc<dyn super::Clock>,
    pub default_scope: Vec<String>,
    pub subject_types: Vec<String>,
    pub secrets: Arc<SecretVerifier>,
    changes: Changes,
    /// Fetches `sector_identifier_uri` documents on create and update.
    fetcher: Fetcher,
    /// Client and stored secret hash, tagged with the generation they were read under.
    cache: DashMap<String, (u64, Arc<Client>, Arc<str>)>,
    /// Database reads of clients missing from the cache, at most `LOOKUPS` at once.
    lookups: tokio::sync::Semaphore,
}

fn rfc3339(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn to_model(row: StoredClient) -> Result<Client, ClientsError> {
    let mut c: Client = serde_json::from_str(&row.data)?;
    c.client_id = row.id;
    c.client_secret = None;
    c.created_at = rfc3339(row.created_at);
    c.updated_at = rfc3339(row.updated_at);
    Ok(c)
}

impl Clients {
    pub fn new(
        store: Store,
        clock: Arc<dyn super::Clock>,
        default_scope: Vec<String>,
        subject_types: Vec<String>,
        secrets: Arc<SecretVerifier>,
    ) -> Clients {
        Clients {
            store,
            clock,
            default_scope,
            subject_types,
            secrets,
            changes: Changes::local(),
            fetcher: Fetcher::default(),
            cache: DashMap::new(),
            lookups: tokio::sync::Semaphore::new(LOOKUPS),
        }
    }

    /// Keeps the cache coherent with client changes made by other replicas.
    pub fn watching(mut self, changes: Changes) -> Clients {
        self.changes = changes;
        self
    }

    /// After a committed write through this process: every cached client is void.
    fn invalidate(&self, id: &str) {
        self.changes.changed_here(Kind::Clients);
        self.cache.remove(id);
    }

    fn policy(&self) -> Policy<'_> {
        Policy {
            default_scope: &self.default_scope,
            subject_types: &self.subject_types,
        }
    }

    fn encode(c: &Client) -> Result<String, ClientsError> {
        let mut stored = c.clone();
        stored.client_secret = None;
        Ok(serde_json::to_string(&stored)?)
    }

    /// With `sector_identifier_uri` set, the document it names must be a JSON array listing every
    /// redirect URI (OIDC Core 8.1; Hydra client/validator.go). Otherwise a client could claim
    /// another relying party's sector and receive the same pairwise subjects.
    async fn check_sector(&self, c: &Client) -> Result<(), ClientsError> {
        if c.sector_identifier_uri.is_empty() {
            return Ok(());
        }
        let invalid = |m: String| ClientsError::Invalid(ClientError::InvalidMetadata(m));
        let body = self
            .fetcher
            .get(&c.sector_identifier_uri)
            .await
            .map_err(|e| {
                invalid(format!(
                    "Unable to connect to URL set by sector_identifier_uri: {e}"
                ))
            })?;
        let urls: Vec<String> = serde_json::from_slice(&body).map_err(|e| {
            invalid(format!(
                "Unable to decode values from sector_identifier_uri: {e}"
            ))
        })?;
        if urls.is_empty() {
            return Err(invalid(
                "Array from sector_identifier_uri contains no items".into(),
            ));
        }
        if let Some(r) = c.redirect_uris.iter().find(|r| !urls.contains(r)) {
            return Err(invalid(format!(
                "Redirect URL \"{r}\" does not match values from sector_identifier_uri."
            )));
        }
        Ok(())
    }

    /// Creates a client; the response carries the plaintext secret once.
    pub async fn create(&self, mut c: Client) -> Result<Client, ClientsError> {
        c.validate(&self.policy())?;
        self.check_sector(&c).await?;
        if c.client_id.is_empty() {
            c.client_id = crate::crypto::uuid_v4().to_string();
        }
        let secret = match c.client_secret.take().filter(|s| !s.is_empty()) {
            Some(s) => Some(s),
            None if c.is_public() => None,
            None => Some(random_secret(26)),
        };
        let secret_hash = match &secret {
            Some(s) => self.secrets.hash(s).await?,
            None => String::new(),
        };
        let now = self.clock.now().unix_timestamp();
        self.store
            .create_client(&StoredClient {
                id: c.client_id.clone(),
                secret_hash,
                data: Self::encode(&c)?,
                created_at: now,
                updated_at: now,
            })
            .await?;
        self.invalidate(&c.client_id);
        c.created_at = rfc3339(now);
        c.updated_at = rfc3339(now);
        c.client_secret = if c.is_public() { None } else { secret };
        Ok(c)
    }

    pub async fn get(&self, id: &str) -> Result<Client, ClientsError> {
        Ok(self.get_shared(id).await?.as_ref().clone())
    }

    /// A client by id, from the read cache while coherent.
    pub async fn get_shared(&self, id: &str) -> Result<Arc<Client>, ClientsError> {
        Ok(self.get_for_auth(id).await?.0)
    }

    /// A client and its stored secret hash (empty for public clients), cached like `get_shared`.
    /// The hash comes from the same read as the client, so a secret changed on any replica is
    /// refused everywhere once the cache entry is void (the verified-secret cache is keyed by
    /// this hash and misses then).
    pub async fn get_for_auth(&self, id: &str) -> Result<(Arc<Client>, Arc<str>), ClientsError> {
        if let Some(found) = self.cached_for_auth(id) {
            return Ok(found);
        }
        let _slot = tokio::time::timeout(self.store.acquire_timeout(), self.lookups.acquire())
            .await
            .map_err(|_| ClientsError::Busy)?
            .map_err(|_| ClientsError::Busy)?;
        let tag = self.changes.generation(Kind::Clients);
        let row = self.store.get_client(id).await?;
        let hash: Arc<str> = Arc::from(row.secret_hash.as_str());
        let client = Arc::new(to_model(row)?);
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache
            .insert(id.to_string(), (tag, client.clone(), hash.clone()));
        Ok((client, hash))
    }

    /// A client and its stored secret hash from the cache, while coherent; no database read.
    pub fn cached_for_auth(&self, id: &str) -> Option<(Arc<Client>, Arc<str>)> {
        let entry = self.cache.get(id)?;
        self.changes
            .valid(Kind::Clients, entry.0)
            .then(|| (entry.1.clone(), entry.2.clone()))
    }

    /// Full replacement; an empty secret keeps the stored hash.
    pub async fn update(&self, id: &str, mut c: Client) -> Result<Client, ClientsError> {
        let existing = self.store.get_client(id).await?;
        c.client_id = id.to_string();
        c.validate(&self.policy())?;
        self.check_sector(&c).await?;
        let new_secret = c.client_secret.take().filter(|s| !s.is_empty());
        let secret_hash = match &new_secret {
            Some(s) => self.secrets.hash(s).await?,
            None => existing.secret_hash.clone(),
        };
        let now = self.clock.now().unix_timestamp();
        self.store
            .update_client(&StoredClient {
                id: id.to_string(),
                secret_hash,
                data: Self::encode(&c)?,
                created_at: existing.created_at,
                updated_at: now,
            })
            .await?;
        self.invalidate(id);
        c.created_at = rfc3339(existing.created_at);
        c.updated_at = rfc3339(now);
        c.client_secret = new_secret;
        Ok(c)
    }

    pub async fn delete(&self, id: &str) -> Result<(), ClientsError> {
        let deleted = self.store.delete_client(id).await;
        self.invalidate(id);
        deleted?;
        Ok(())
    }

    pub async fn list(&self, limit: i64, offset: i64) -> Result<(Vec<Client>, i64), ClientsError> {
        let (rows, total) = self.store.list_clients(limit, offset).await?;
        let list = rows
            .into_iter()
            .map(to_model)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((list, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn errors_keep_their_cause() {
        assert!(matches!(
            ClientsError::from(StoreError::NotFound),
            ClientsError::NotFound
        ));
        assert!(matches!(
            ClientsError::from(StoreError::Conflict("id".into())),
            ClientsError::Conflict
        ));
        assert!(matches!(
            ClientsError::from(StoreError::Database(sqlx::Error::PoolTimedOut)),
            ClientsError::Busy
        ));
        assert!(matches!(
            ClientsError::from(HashingError::Busy),
            ClientsError::Busy
        ));
        let json = serde_json::from_str::<Client>("{").map(|_| ()).unwrap_err();
        for (e, cause) in [
            (
                ClientsError::from(StoreError::Corrupt("row 7".into())),
                "stored data is unreadable: row 7".to_string(),
            ),
            (
                ClientsError::from(json),
                "EOF while parsing an object at line 1 column 1".into(),
            ),
        ] {
            assert_eq!(e.to_string(), format!("internal error: {cause}"));
            let source = e.source().map(ToString::to_string);
            assert_eq!(source, Some(cause), "{e:?}");
        }
    }
}
