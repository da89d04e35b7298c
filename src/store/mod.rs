//! Persistence. One portable SQL dialect (no triggers, stored functions or advisory locks, so
//! CockroachDB works too) runs through sqlx's `Any` driver on PostgreSQL and SQLite; only the
//! migrations differ per backend. Unique violations become `StoreError::Conflict` here.
pub mod changes;
mod clients;
mod flows;
pub mod hydra;
mod import;
pub mod janitor;
mod jwks;
mod tokens;

pub use clients::StoredClient;
pub use jwks::StoredKey;
pub use tokens::{Exchange, TokenRow};

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unsupported DSN `{0}`: use memory, sqlite://… or postgres://…")]
    Dsn(String),
}

/// Pool acquire timeouts of this process (`portcullis_db_pool_acquire_timeouts_total`). Every
/// sqlx error becomes a `StoreError` through `From`, so each timeout is counted once.
static ACQUIRE_TIMEOUTS: AtomicU64 = AtomicU64::new(0);
/// Statements that found no idle connection in a pool at its limit, so had to wait for one
/// (`portcullis_db_pool_acquire_waits_total`).
static ACQUIRE_WAITS: AtomicU64 = AtomicU64::new(0);

impl StoreError {
    /// No pooled connection came free within `database.acquire_timeout`: overload, not a fault.
    pub fn is_pool_timeout(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::PoolTimedOut))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        if matches!(e, sqlx::Error::PoolTimedOut) {
            ACQUIRE_TIMEOUTS.fetch_add(1, Ordering::Relaxed);
        }
        StoreError::Database(e)
    }
}

pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_string());
        }
    }
    StoreError::from(e)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A snapshot of the connection pool (`Store::pool_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections, in use or idle.
    pub size: u32,
    pub idle: u32,
    /// The pool's limit (`max_conns`).
    pub max: u32,
    /// Acquire timeouts in this process so far.
    pub timeouts: u64,
    /// Statements that had to wait for a connection, so far.
    pub waits: u64,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A pooled connection idle this long is pinged before it is handed out again.
const TEST_IDLE_AFTER: Duration = Duration::from_secs(1);

static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

impl Store {
    /// Connects to the DSN: `memory`, `sqlite://path`, `postgres://…` (also `postgresql://`,
    /// `cockroach://`). Pool sizes come from Hydra's `max_conns` query parameter.
    pub async fn connect(dsn: &str) -> Result<Store, StoreError> {
        Self::connect_with(dsn, Duration::from_secs(3)).await
    }

    /// As `connect`, with the pool's acquire timeout (`database.acquire_timeout`): a request
    /// waits at most this long for a connection, so a database outage fails requests in
    /// bounded time instead of hanging them.
    pub async fn connect_with(dsn: &str, acquire_timeout: Duration) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (url, backend, memory) = normalize(dsn)?;
        let max_conns = query_param(&url, "max_conns").and_then(|v| v.parse().ok());
        let url = strip_params(&url, &["max_conns", "max_idle_conns", "max_conn_lifetime"]);
        let mut opts = AnyPoolOptions::new()
            .acquire_timeout(acquire_timeout)
            // sqlx pings every connection it hands out, a round trip per statement. Only a
            // connection that sat idle for a while is tested (a database restart or a proxy's
            // idle timeout breaks those); one in steady use proves itself with every statement,
            // and a broken one fails its statement and is discarded on release.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= TEST_IDLE_AFTER {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            });
        opts = match (backend, memory) {
            // One connection keeps the in-memory database alive and shared.
            (Backend::Sqlite, true) => opts
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None),
            (Backend::Sqlite, false) => opts.max_connections(max_conns.unwrap_or(4)),
            (Backend::Postgres, _) => opts
                .max_connections(max_conns.unwrap_or(32))
                .min_connections(1),
        };
        if backend == Backend::Sqlite {
            opts = opts.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA journal_mode = WAL")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = opts.connect(&url).await?;
        Ok(Store { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// How long a statement waits for a pooled connection (`database.acquire_timeout`).
    pub fn acquire_timeout(&self) -> Duration {
        self.pool.options().get_acquire_timeout()
    }

    /// The pool's connections now, its limit, and the acquire timeouts so far.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
            timeouts: ACQUIRE_TIMEOUTS.load(Ordering::Relaxed),
            waits: ACQUIRE_WAITS.load(Ordering::Relaxed),
        }
    }

    /// The pool, for one statement or transaction; counts the statement as waiting when no
    /// connection is idle and the pool is at its limit.
    fn pool(&self) -> &AnyPool {
        if self.pool.num_idle() == 0
            && self.pool.size() >= self.pool.options().get_max_connections()
        {
            ACQUIRE_WAITS.fetch_add(1, Ordering::Relaxed);
        }
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Postgres => PG_MIGRATOR.run(&self.pool).await?,
            Backend::Sqlite => SQLITE_MIGRATOR.run(&self.pool).await?,
        }
        Ok(())
    }

    /// Readiness probe: one round trip.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from)
    }

    /// Readiness probe bounded in time: a stopped or black-holed database answers `Timeout`
    /// after `limit` instead of holding the probe for the pool's acquire timeout.
    pub async fn ping_within(&self, limit: Duration) -> Result<(), StoreError> {
        match tokio::time::timeout(limit, self.ping()).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(limit)),
        }
    }

    /// Closes the pool, waiting at most `limit` for connections in use (a black-holed
    /// connection must not hold up shutdown).
    pub async fn close_within(&self, limit: Duration) {
        if tokio::time::timeout(limit, self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections did not close in time");
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn normalize(dsn: &str) -> Result<(String, Backend, bool), StoreError> {
    let dsn = dsn.trim();
    if dsn == "memory" {
        return Ok(("sqlite::memory:".into(), Backend::Sqlite, true));
    }
    if let Some(rest) = dsn
        .strip_prefix("sqlite://")
        .or_else(|| dsn.strip_prefix("sqlite:"))
    {
        let memory = rest.starts_with(":memory:") || rest.contains("mode=memory");
        let mut url = format!("sqlite://{rest}");
        if !memory && !rest.contains("mode=") {
            url.push(if rest.contains('?') { '&' } else { '?' });
            url.push_str("mode=rwc");
        }
        return Ok((url, Backend::Sqlite, memory));
    }
    for prefix in ["postgres://", "postgresql://", "cockroach://", "pgx://"] {
        if let Some(rest) = dsn.strip_prefix(prefix) {
            return Ok((format!("postgres://{rest}"), Backend::Postgres, false));
        }
    }
    Err(StoreError::Dsn(
        dsn.split('@').next_back().unwrap_or("").to_string(),
    ))
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let (_, q) = url.split_once('?')?;
    q.split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

fn strip_params(url: &str, names: &[&str]) -> String {
    let Some((base, q)) = url.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|kv| !names.iter().any(|n| kv.split('=').next() == Some(*n)))
        .collect();
    if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

impl Store {
    /// Runs one statement without parameters (administrative use: tests, tooling).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn execute_raw(&self, sql: &str) -> Result<(), StoreError> {
        sqlx::raw_sql(sql).execute(&self.pool).await?;
        Ok(())
    }

    /// Raw stored key material, for checks that keys are encrypted at rest.
    #[cfg(any(test, feature = "test-support"))]
    pub async fn raw_keydata(&self, set: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .get_set(set)
            .await?
            .into_iter()
            .map(|k| k.keydata)
            .collect())
    }
}
