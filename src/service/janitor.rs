//! The janitor: removes rows that can no longer be used, in bounded batches, from the command
//! line (`portcullis janitor`, Hydra >= 1.10's options) or inside the server
//! (`janitor.interval`). Both run [`Janitor::run`].
//!
//! What goes, by kind (`--tokens` for the first four, `--requests` for the last three):
//! - codes, access and refresh tokens past their stored expiry (a code row also carries the
//!   grant's OIDC and PKCE session); with `--access-lifespan` / `--refresh-lifespan`, tokens
//!   requested longer ago than that, as Hydra defines it;
//! - spent client-assertion `jti`s past their expiry;
//! - login/consent flows older than the request lifespan (`ttl.login_consent_request`) that
//!   hold no valid remembered consent and no token of their grant: abandoned at any step,
//!   rejected, or completed with every token gone;
//! - logout requests older than the request lifespan;
//! - remembered login sessions past their expiry.
//!
//! `--keep-if-younger` keeps every row requested (or authenticated) more recently than that.
//! `--limit` bounds the rows deleted per kind and run, `--batch-size` the rows per statement.
use crate::config::Config;
use crate::domain::token::TokenKind;
use crate::service::Clock;
use crate::store::janitor::{FlowCursor, TokenCutoff};
use crate::store::{Store, StoreError};
use prometheus::IntCounterVec;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the janitor deletes, in the order it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Codes,
    AccessTokens,
    RefreshTokens,
    Jtis,
    LoginConsentRequests,
    LogoutRequests,
    LoginSessions,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Codes,
        Kind::AccessTokens,
        Kind::RefreshTokens,
        Kind::Jtis,
        Kind::LoginConsentRequests,
        Kind::LogoutRequests,
        Kind::LoginSessions,
    ];

    /// The `kind` label of `portcullis_janitor_deleted_rows_total` (`telemetry::JANITOR_KINDS`).
    pub fn label(self) -> &'static str {
        match self {
            Kind::Codes => "authorization_code",
            Kind::AccessTokens => "access_token",
            Kind::RefreshTokens => "refresh_token",
            Kind::Jtis => "jti",
            Kind::LoginConsentRequests => "login_consent_request",
            Kind::LogoutRequests => "logout_request",
            Kind::LoginSessions => "login_session",
        }
    }

    /// How the command line names it (Hydra's names where Hydra has the kind).
    pub fn title(self) -> &'static str {
        match self {
            Kind::Codes => "authorization codes",
            Kind::AccessTokens => "access tokens",
            Kind::RefreshTokens => "refresh tokens",
            Kind::Jtis => "client assertion jtis",
            Kind::LoginConsentRequests => "login-consent requests",
            Kind::LogoutRequests => "logout requests",
            Kind::LoginSessions => "expired login sessions",
        }
    }

    fn is_token(self) -> bool {
        matches!(
            self,
            Kind::Codes | Kind::AccessTokens | Kind::RefreshTokens | Kind::Jtis
        )
    }
}

/// One run's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Clean up codes, tokens and jtis.
    pub tokens: bool,
    /// Clean up login/consent and logout requests and expired login sessions.
    pub requests: bool,
    /// Keep rows younger than this.
    pub keep_if_younger: Duration,
    /// Hydra's `--access-lifespan`: tokens requested longer ago are expired.
    pub access_lifespan: Option<Duration>,
    /// Hydra's `--refresh-lifespan`.
    pub refresh_lifespan: Option<Duration>,
    /// Login/consent and logout requests older than this are removed when nothing needs them.
    pub request_lifespan: Duration,
    /// Rows deleted per kind and run, at most.
    pub limit: u64,
    /// Rows per statement, at most.
    pub batch_size: u64,
}

/// Hydra's defaults: `--limit 10000`, `--batch-size 100`.
pub const DEFAULT_LIMIT: u64 = 10_000;
pub const DEFAULT_BATCH_SIZE: u64 = 100;

impl Options {
    /// Everything, with the configuration's lifespans (the in-process janitor).
    pub fn from_config(cfg: &Config) -> Options {
        Options {
            tokens: true,
            requests: true,
            keep_if_younger: Duration::ZERO,
            access_lifespan: None,
            refresh_lifespan: None,
            request_lifespan: cfg.ttl.login_consent_request,
            limit: DEFAULT_LIMIT,
            batch_size: DEFAULT_BATCH_SIZE,
        }
    }

    fn kinds(&self) -> impl Iterator<Item = Kind> + '_ {
        Kind::ALL.into_iter().filter(|k| {
            if k.is_token() {
                self.tokens
            } else {
                self.requests
            }
        })
    }
}

/// What one kind's clean-up did.
#[derive(Debug, Clone, PartialEq)]
pub struct KindReport {
    pub kind: Kind,
    pub deleted: u64,
    /// Batches run (a flow batch is one SELECT and one DELETE, timed together).
    pub statements: u64,
    /// The slowest batch.
    pub longest: Duration,
    /// Time spent on this kind so far.
    pub elapsed: Duration,
}

impl KindReport {
    fn new(kind: Kind) -> KindReport {
        KindReport {
            kind,
            deleted: 0,
            statements: 0,
            longest: Duration::ZERO,
            elapsed: Duration::ZERO,
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub kinds: Vec<KindReport>,
    pub elapsed: Duration,
}

impl Report {
    pub fn deleted(&self) -> u64 {
        self.kinds.iter().map(|k| k.deleted).sum()
    }

    pub fn statements(&self) -> u64 {
        self.kinds.iter().map(|k| k.statements).sum()
    }

    pub fn longest(&self) -> Duration {
        self.kinds
            .iter()
            .map(|k| k.longest)
            .max()
            .unwrap_or_default()
    }

    /// Rows deleted per second of the whole run.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.deleted() as f64 / secs
        } else {
            0.0
        }
    }
}

/// A failed run: the kind that failed, why, and what was deleted before.
#[derive(Debug, thiserror::Error)]
#[error("could not clean up {}: {source}", .kind.title())]
pub struct JanitorError {
    pub kind: Kind,
    #[source]
    pub source: StoreError,
    pub partial: Report,
}

/// The time bounds of one run, from the options and the run's start (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cutoffs {
    now: i64,
    /// Rows requested after this are younger than `--keep-if-younger` and stay (no bound
    /// without it: a token requested this second and already expired goes too).
    not_after: i64,
    /// Login/consent and logout requests older than the request lifespan.
    requests_before: i64,
    codes: TokenCutoff,
    access: TokenCutoff,
    refresh: TokenCutoff,
}

impl Cutoffs {
    fn new(opts: &Options, now: i64) -> Cutoffs {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        let not_after = if opts.keep_if_younger.is_zero() {
            i64::MAX
        } else {
            now.saturating_sub(secs(opts.keep_if_younger))
        };
        let token_cutoff = |lifespan: Option<Duration>| match lifespan {
            Some(l) => TokenCutoff::Requested(not_after.min(now.saturating_sub(secs(l)))),
            None => TokenCutoff::Expiry {
                expired_before: now,
                requested_before: not_after,
            },
        };
        Cutoffs {
            now,
            not_after,
            requests_before: not_after.min(now.saturating_sub(secs(opts.request_lifespan))),
            codes: token_cutoff(None),
            access: token_cutoff(opts.access_lifespan),
            refresh: token_cutoff(opts.refresh_lifespan),
        }
    }
}

/// Retries of one statement on a transient error (deadlock, serialization failure, busy).
const RETRIES: u32 = 5;

#[derive(Debug, Clone)]
pub struct Janitor {
    store: Store,
    deleted: Option<IntCounterVec>,
}

impl Janitor {
    pub fn new(store: Store) -> Janitor {
        Janitor {
            store,
            deleted: None,
        }
    }

    /// Counts deleted rows in `deleted` (`portcullis_janitor_deleted_rows_total{kind}`).
    pub fn counting(mut self, deleted: IntCounterVec) -> Janitor {
        self.deleted = Some(deleted);
        self
    }

    /// Whether the schema has the janitor's indexes and columns (migration 0005); run
    /// `portcullis migrate sql` otherwise.
    pub async fn schema_ready(&self) -> Result<bool, StoreError> {
        self.store
            .has_migration(crate::store::janitor::JANITOR_SCHEMA)
            .await
    }

    /// One run at Unix time `now`. `progress` is called after every batch with the kind's
    /// report so far (`false`) and once when the kind is done (`true`).
    pub async fn run<F>(
        &self,
        opts: &Options,
        now: i64,
        mut progress: F,
    ) -> Result<Report, JanitorError>
    where
        F: FnMut(&KindReport, bool),
    {
        let started = Instant::now();
        let mut report = Report::default();
        for kind in opts.kinds() {
            let mut k = KindReport::new(kind);
            let outcome = self.clean(kind, opts, now, &mut k, &mut progress).await;
            report.kinds.push(k.clone());
            if let Err(source) = outcome {
                report.elapsed = started.elapsed();
                return Err(JanitorError {
                    kind,
                    source,
                    partial: report,
                });
            }
            progress(&k, true);
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    async fn clean<F>(
        &self,
        kind: Kind,
        opts: &Options,
        now: i64,
        k: &mut KindReport,
        progress: &mut F,
    ) -> Result<(), StoreError>
    where
        F: FnMut(&KindReport, bool),
    {
        let cutoffs = Cutoffs::new(opts, now);
        let batch = opts.batch_size.max(1);
        let started = Instant::now();
        let mut cursor = FlowCursor {
            requested_at: i64::MIN,
            login_challenge: String::new(),
        };
        while k.deleted < opts.limit {
            let n = i64::try_from(batch.min(opts.limit - k.deleted)).unwrap_or(i64::MAX);
            let began = Instant::now();
            let (deleted, more) = self.batch(kind, &cutoffs, &mut cursor, n).await?;
            let took = began.elapsed();
            k.statements += 1;
            k.longest = k.longest.max(took);
            k.deleted += deleted;
            k.elapsed = started.elapsed();
            tracing::debug!(
                kind = kind.label(),
                deleted,
                elapsed_ms = took.as_secs_f64() * 1000.0,
                "janitor batch"
            );
            if let Some(c) = &self.deleted {
                c.with_label_values(&[kind.label()]).inc_by(deleted);
            }
            progress(k, false);
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// Deletes at most `n` rows of `kind`: how many went, and whether more may be left.
    async fn batch(
        &self,
        kind: Kind,
        c: &Cutoffs,
        cursor: &mut FlowCursor,
        n: i64,
    ) -> Result<(u64, bool), StoreError> {
        let store = &self.store;
        let deleted = match kind {
            Kind::Codes => {
                self.retry(|| store.janitor_tokens(TokenKind::Code, c.codes, n))
                    .await?
            }
            Kind::AccessTokens => {
                self.retry(|| store.janitor_tokens(TokenKind::Access, c.access, n))
                    .await?
            }
            Kind::RefreshTokens => {
                self.retry(|| store.janitor_tokens(TokenKind::Refresh, c.refresh, n))
                    .await?
            }
            Kind::Jtis => {
                self.retry(|| store.janitor_jtis(c.not_after.min(c.now), n))
                    .await?
            }
            Kind::LogoutRequests => {
                self.retry(|| store.janitor_logouts(c.requests_before, n))
                    .await?
            }
            Kind::LoginSessions => {
                self.retry(|| store.janitor_login_sessions(c.now, c.not_after, n))
                    .await?
            }
            Kind::LoginConsentRequests => {
                let page = self
                    .retry(|| store.janitor_flows(c.requests_before, c.now, &*cursor, n))
                    .await?;
                let more = page.next.is_some();
                if let Some(next) = page.next {
                    *cursor = next;
                }
                return Ok((page.deleted, more));
            }
        };
        Ok((deleted, deleted >= u64::try_from(n).unwrap_or(0)))
    }

    /// Runs one statement, again after a short pause when the database reports a transient
    /// conflict (two janitors, or a janitor and live traffic, on the same rows).
    async fn retry<T, Fut>(&self, mut op: impl FnMut() -> Fut) -> Result<T, StoreError>
    where
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Err(e) if attempt < RETRIES && crate::store::janitor::is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                other => return other,
            }
        }
    }
}

/// Runs the janitor every `interval` inside the server until the task is aborted. Each run
/// is bounded by `--limit`'s default per kind, so a backlog is worked off over several runs.
pub fn spawn(
    janitor: Janitor,
    opts: Options,
    interval: Duration,
    clock: Arc<dyn Clock>,
    runs: IntCounterVec,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match janitor.schema_ready().await {
                Ok(true) => {}
                Ok(false) => {
                    runs.with_label_values(&["failed"]).inc();
                    tracing::warn!(
                        "janitor: the database lacks migration 5; run `portcullis migrate sql`"
                    );
                    continue;
                }
                Err(e) => {
                    runs.with_label_values(&["failed"]).inc();
                    tracing::warn!(error = %e, "janitor: cannot read the schema version");
                    continue;
                }
            }
            let now = clock.now().unix_timestamp();
            match janitor.run(&opts, now, |_, _| {}).await {
                Ok(r) => {
                    runs.with_label_values(&["ok"]).inc();
                    if r.deleted() > 0 {
                        tracing::info!(
                            deleted = r.deleted(),
                            elapsed_ms = r.elapsed.as_millis() as u64,
                            longest_statement_ms = r.longest().as_millis() as u64,
                            "janitor run"
                        );
                    }
                }
                Err(e) => {
                    runs.with_label_values(&["failed"]).inc();
                    tracing::warn!(error = %e, "janitor run failed; retrying at the next interval");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The time bounds a run derives from its options.
    #[test]
    fn cutoffs_follow_the_options() {
        let now = 1_000_000;
        let base = Options {
            tokens: true,
            requests: true,
            keep_if_younger: Duration::ZERO,
            access_lifespan: None,
            refresh_lifespan: None,
            request_lifespan: Duration::from_secs(3600),
            limit: DEFAULT_LIMIT,
            batch_size: DEFAULT_BATCH_SIZE,
        };
        let expiry = |requested_before| TokenCutoff::Expiry {
            expired_before: now,
            requested_before,
        };
        let young = Options {
            keep_if_younger: Duration::from_secs(60),
            ..base.clone()
        };
        let lifespans = Options {
            access_lifespan: Some(Duration::from_secs(10)),
            refresh_lifespan: Some(Duration::from_secs(7200)),
            ..young.clone()
        };
        for (opts, want) in [
            (
                &base,
                Cutoffs {
                    now,
                    not_after: i64::MAX,
                    requests_before: now - 3600,
                    codes: expiry(i64::MAX),
                    access: expiry(i64::MAX),
                    refresh: expiry(i64::MAX),
                },
            ),
            (
                &young,
                Cutoffs {
                    now,
                    not_after: now - 60,
                    requests_before: now - 3600,
                    codes: expiry(now - 60),
                    access: expiry(now - 60),
                    refresh: expiry(now - 60),
                },
            ),
            (
                &lifespans,
                Cutoffs {
                    now,
                    not_after: now - 60,
                    requests_before: now - 3600,
                    codes: expiry(now - 60),
                    access: TokenCutoff::Requested(now - 60),
                    refresh: TokenCutoff::Requested(now - 7200),
                },
            ),
        ] {
            assert_eq!(Cutoffs::new(opts, now), want, "{opts:?}");
        }
    }

    #[test]
    fn metric_labels_match_the_kinds() {
        let labels: Vec<&str> = Kind::ALL.iter().map(|k| k.label()).collect();
        assert_eq!(labels, crate::telemetry::JANITOR_KINDS);
    }
}
