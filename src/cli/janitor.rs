//! `portcullis janitor [DSN]`: Hydra >= 1.10's clean-up command (cmd/janitor.go) on the
//! service in service/janitor.rs. Hydra's lines ("Successfully completed Janitor run on …")
//! and a per-kind summary go to stdout, throttled progress within a kind to stderr.
//!
//! Exit codes: 0 done; 1 the database could not be reached or cleaned (what was deleted
//! before the failure is still summarised); 2 invalid arguments.
use super::output::Table;
use crate::config::{parse_duration, Config};
use crate::service::janitor::{Janitor, KindReport, Options, Report};
use crate::store::hydra::redact;
use crate::store::Store;
use clap::Args;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct JanitorArgs {
    /// Database URL; or -e to read DSN from the environment, or -c to read it from a file.
    dsn: Option<String>,
    /// Read the database URL from the environment variable DSN (or the configuration's dsn).
    #[arg(short = 'e', long = "read-from-env")]
    read_from_env: bool,
    /// Configuration file (YAML or JSON): its dsn and ttl.* keys are used; environment
    /// variables override it.
    #[arg(short = 'c', long = "config")]
    config: Option<String>,
    /// Clean up expired codes (with their OIDC and PKCE sessions), access and refresh tokens,
    /// and spent client-assertion jtis.
    #[arg(long = "tokens")]
    tokens: bool,
    /// Clean up abandoned or finished login/consent and logout requests that nothing needs any
    /// more, and expired login sessions.
    #[arg(long = "requests")]
    requests: bool,
    /// Keep rows younger than this (e.g. 1s, 1m, 24h).
    #[arg(long = "keep-if-younger", value_parser = duration, default_value = "0s")]
    keep_if_younger: Duration,
    /// Access tokens requested longer ago than this are expired (default: each token's
    /// stored expiry, from ttl.access_token when it was issued).
    #[arg(long = "access-lifespan", value_parser = duration)]
    access_lifespan: Option<Duration>,
    /// Refresh tokens requested longer ago than this are expired (default: each token's
    /// stored expiry, from ttl.refresh_token when it was issued).
    #[arg(long = "refresh-lifespan", value_parser = duration)]
    refresh_lifespan: Option<Duration>,
    /// Login/consent and logout requests older than this may go (default:
    /// ttl.login_consent_request).
    #[arg(long = "consent-request-lifespan", value_parser = duration)]
    consent_request_lifespan: Option<Duration>,
    /// Most rows deleted per kind in this run.
    #[arg(
        long = "limit",
        default_value_t = 10_000,
        allow_negative_numbers = true
    )]
    limit: i64,
    /// Most rows deleted by one statement.
    #[arg(
        long = "batch-size",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    batch_size: i64,
}

/// A duration in Hydra's syntax (`30s`, `10m`, `24h`), or humantime's (`1h 30m`).
fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
        .or_else(|| humantime::parse_duration(s).ok())
        .ok_or_else(|| format!("`{s}` is not a duration like 30s, 10m or 24h"))
}

/// Progress within one kind goes out at most this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

fn usage_error(err: &mut dyn Write, message: &str) -> i32 {
    let _ = writeln!(
        err,
        "error: {message}\n\nUsage: portcullis janitor [OPTIONS] <--tokens|--requests> [DSN]\nFor more information, try 'portcullis janitor --help'."
    );
    2
}

/// Runs the command; returns the exit code.
pub async fn run(
    args: JanitorArgs,
    root_config: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let config = args.config.clone().or(root_config);
    if let Err(message) = check_usage(&args, config.is_some()) {
        return usage_error(err, message);
    }
    let (cfg, _log) = match super::configured(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return 1;
        }
    };
    let dsn = match database_url(&args, &cfg) {
        Ok(dsn) => dsn,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return 1;
        }
    };
    let opts = options(&args, &cfg);
    let store = match Store::connect(&dsn).await {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                err,
                "error: cannot connect to the database at {}: {e}",
                redact(&dsn)
            );
            return 1;
        }
    };
    let code = clean(&store, &dsn, &opts, out, err).await;
    store.close().await;
    code
}

/// Hydra's usage rules: where the DSN comes from, what to clean, and the batch bounds.
fn check_usage(args: &JanitorArgs, config_file: bool) -> Result<(), &'static str> {
    if args.dsn.is_none() && !args.read_from_env && !config_file {
        return Err("a DSN is required as a positional argument when not passing any of the following flags:\n- Using the environment variable with flag -e, --read-from-env\n- Using the config file with flag -c, --config");
    }
    if !args.tokens && !args.requests {
        return Err("Janitor requires either --tokens or --requests or both to be set");
    }
    if args.limit <= 0 || args.batch_size <= 0 {
        return Err("Values for --limit and --batch-size should both be greater than 0");
    }
    if args.batch_size > args.limit {
        return Err("Value for --batch-size must not be greater than value for --limit");
    }
    Ok(())
}

/// The positional DSN, or the configuration's; never the in-memory database of a server.
fn database_url(args: &JanitorArgs, cfg: &Config) -> Result<String, &'static str> {
    let dsn = args.dsn.clone().unwrap_or_else(|| cfg.dsn.clone());
    if dsn.trim().is_empty() {
        return Err("no database URL: when using flag -e, the environment variable DSN must be set; when using flag -c, the dsn key must be set");
    }
    if dsn.trim() == "memory" || dsn.contains(":memory:") || dsn.contains("mode=memory") {
        return Err("DSN=memory lives inside one server process, out of the janitor's reach; set janitor.interval to clean it from inside the server");
    }
    Ok(dsn)
}

/// The run's options: lifespans of zero mean "not given".
fn options(args: &JanitorArgs, cfg: &Config) -> Options {
    let positive = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    Options {
        tokens: args.tokens,
        requests: args.requests,
        keep_if_younger: args.keep_if_younger,
        access_lifespan: positive(args.access_lifespan),
        refresh_lifespan: positive(args.refresh_lifespan),
        request_lifespan: positive(args.consent_request_lifespan)
            .unwrap_or(cfg.ttl.login_consent_request),
        limit: args.limit.unsigned_abs(),
        batch_size: args.batch_size.unsigned_abs(),
    }
}

async fn clean(
    store: &Store,
    dsn: &str,
    opts: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let janitor = Janitor::new(store.clone());
    match janitor.schema_ready().await {
        Ok(true) => {}
        Ok(false) => {
            let _ = writeln!(
                err,
                "error: the database at {} lacks the janitor's indexes (migration {}); run `portcullis migrate sql` first",
                redact(dsn),
                crate::store::janitor::JANITOR_SCHEMA
            );
            return 1;
        }
        Err(e) => {
            let _ = writeln!(err, "error: cannot read the schema version: {e}");
            return 1;
        }
    }
    let _ = writeln!(
        err,
        "Cleaning up {} (at most {} rows per kind, {} per statement)",
        redact(dsn),
        opts.limit,
        opts.batch_size
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut last = Instant::now();
    let outcome = janitor
        .run(opts, now, |k: &KindReport, done| {
            if done {
                let _ = writeln!(
                    out,
                    "Successfully completed Janitor run on {}",
                    k.kind.title()
                );
            } else if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                let _ = writeln!(
                    err,
                    "{}: {} deleted so far ({:.0} rows/s)",
                    k.kind.title(),
                    k.deleted,
                    k.deleted as f64 / k.elapsed.as_secs_f64().max(1e-3)
                );
            }
        })
        .await;
    match outcome {
        Ok(report) => {
            let _ = write!(out, "{}", summary(&report));
            0
        }
        Err(e) => {
            let _ = write!(out, "{}", summary(&e.partial));
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}

/// The per-kind table and a totals line.
pub(crate) fn summary(r: &Report) -> String {
    let mut t = Table::new(&["Kind", "Deleted", "Statements", "Longest ms"]);
    for k in &r.kinds {
        t.row(&[
            k.kind.title().to_string(),
            k.deleted.to_string(),
            k.statements.to_string(),
            format!("{:.1}", k.longest.as_secs_f64() * 1000.0),
        ]);
    }
    format!(
        "\n{}Deleted {} rows in {:.2} s ({:.0} rows/s); longest statement {:.1} ms.\n",
        t.render(),
        r.deleted(),
        r.elapsed.as_secs_f64(),
        r.rate(),
        r.longest().as_secs_f64() * 1000.0
    )
}
