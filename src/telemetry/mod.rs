//! Logging (text or JSON via `tracing`) and the Prometheus registry served on the admin port
//! at `/metrics/prometheus`. Every metric is listed with its labels in docs/operations.md;
//! deploy/grafana/portcullis.json charts them.
use crate::config::{LogFormat, LogLevel};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Keeps the log writer running; dropping it writes out every line still queued. Hold it for
/// as long as the command runs.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogGuard")
    }
}

/// Installs the global subscriber (`log.level`, `log.format`); a second call is a no-op.
///
/// Lines are formatted on the calling thread and written to stdout by one writer thread, in
/// batches: one `write` for many lines instead of one per line (the access log writes a line
/// per request; written inline it cost strict introspection a third of its throughput). The
/// queue holds 128,000 lines; when it is full, the request waits (no line is dropped).
pub fn init_logging(level: LogLevel, format: LogFormat) -> LogGuard {
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
        ));
    let builder = tracing_subscriber::fmt()
        .with_max_level(max_level(level))
        .with_target(false)
        // Colours only on a terminal: a log file or a collector gets no escape codes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    LogGuard {
        _writer: installed.ok().map(|()| guard),
    }
}

/// Hydra's (logrus) levels on `tracing`'s: `panic` and `fatal` log errors only.
fn max_level(level: LogLevel) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    match level {
        LogLevel::Panic | LogLevel::Fatal | LogLevel::Error => LevelFilter::ERROR,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Trace => LevelFilter::TRACE,
    }
}

#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    /// `portcullis_janitor_deleted_rows_total{kind}` (service/janitor.rs sets the kinds).
    pub janitor_deleted: IntCounterVec,
    /// `portcullis_janitor_runs_total{result}`.
    pub janitor_runs: IntCounterVec,
    /// Counters the OAuth 2.0 service increments.
    pub oauth: OAuthMetrics,
    pool: PoolMetrics,
}

/// A counter vector whose label values all start at 0, so a dashboard sees every series
/// from the first scrape.
fn counter(
    name: &str,
    help: &str,
    label: &str,
    values: &[&str],
) -> Result<IntCounterVec, prometheus::Error> {
    let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
    for v in values {
        c.with_label_values(&[v]);
    }
    Ok(c)
}

/// What the OAuth 2.0 endpoints did (service/oauth2 increments them).
#[derive(Clone, Debug)]
pub struct OAuthMetrics {
    /// `portcullis_tokens_issued_total{grant_type}`: successful token responses by grant
    /// (`authorization_code`, `refresh_token`, `client_credentials`), and access tokens sent
    /// by the authorization endpoint (`implicit`).
    pub tokens_issued: IntCounterVec,
    /// `portcullis_authorization_flows_total{outcome}`: authorization endpoint hits by
    /// outcome (`login_requested`, `consent_requested`, `completed`, `rejected`, `failed`).
    pub flows: IntCounterVec,
    /// `portcullis_introspections_total{result}`: `active`, `inactive`.
    pub introspections: IntCounterVec,
    /// `portcullis_backchannel_logouts_total{result}`: `delivered` (2xx), `failed`.
    pub backchannel: IntCounterVec,
}

/// The `kind` label values of `portcullis_janitor_deleted_rows_total` (service/janitor.rs
/// `Kind::label`).
pub const JANITOR_KINDS: [&str; 7] = [
    "authorization_code",
    "access_token",
    "refresh_token",
    "jti",
    "login_consent_request",
    "logout_request",
    "login_session",
];

pub const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "implicit",
];
pub const FLOW_OUTCOMES: [&str; 5] = [
    "login_requested",
    "consent_requested",
    "completed",
    "rejected",
    "failed",
];

impl OAuthMetrics {
    /// Counters not yet in any registry (`Metrics::new` registers its own).
    pub fn new() -> Result<OAuthMetrics, prometheus::Error> {
        Ok(OAuthMetrics {
            tokens_issued: counter(
                "portcullis_tokens_issued_total",
                "Token responses by grant type (implicit: access tokens from the authorization endpoint)",
                "grant_type",
                &GRANT_TYPES,
            )?,
            flows: counter(
                "portcullis_authorization_flows_total",
                "Authorization endpoint requests by outcome: login_requested, consent_requested, completed, rejected, failed",
                "outcome",
                &FLOW_OUTCOMES,
            )?,
            introspections: counter(
                "portcullis_introspections_total",
                "Token introspections by result: active, inactive",
                "result",
                &["active", "inactive"],
            )?,
            backchannel: counter(
                "portcullis_backchannel_logouts_total",
                "Back-channel logout notifications by result: delivered (2xx), failed",
                "result",
                &["delivered", "failed"],
            )?,
        })
    }

    fn register(&self, r: &Registry) -> Result<(), prometheus::Error> {
        r.register(Box::new(self.tokens_issued.clone()))?;
        r.register(Box::new(self.flows.clone()))?;
        r.register(Box::new(self.introspections.clone()))?;
        r.register(Box::new(self.backchannel.clone()))
    }
}

/// The database pool, read at every scrape.
#[derive(Clone, Debug)]
struct PoolMetrics {
    connections: IntGaugeVec,
    max: IntGauge,
    timeouts: IntCounter,
    waits: IntCounter,
}

impl PoolMetrics {
    fn new(r: &Registry) -> Result<PoolMetrics, prometheus::Error> {
        let connections = IntGaugeVec::new(
            Opts::new(
                "portcullis_db_pool_connections",
                "Database connections of this process by state: in_use, idle",
            ),
            &["state"],
        )?;
        let max = IntGauge::new(
            "portcullis_db_pool_max_connections",
            "Size limit of the database pool (max_conns)",
        )?;
        let timeouts = IntCounter::new(
            "portcullis_db_pool_acquire_timeouts_total",
            "Requests that waited database.acquire_timeout for a connection and gave up",
        )?;
        r.register(Box::new(connections.clone()))?;
        r.register(Box::new(max.clone()))?;
        let waits = IntCounter::new(
            "portcullis_db_pool_acquire_waits_total",
            "Statements that found no idle connection in a pool at its limit and waited for one",
        )?;
        r.register(Box::new(timeouts.clone()))?;
        r.register(Box::new(waits.clone()))?;
        Ok(PoolMetrics {
            connections,
            max,
            timeouts,
            waits,
        })
    }
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["endpoint", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "hydra_response_time_seconds",
                "HTTP response latency by route and status",
            ),
            &["endpoint", "method", "status"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        let janitor_deleted = counter(
            "portcullis_janitor_deleted_rows_total",
            "Rows deleted by the in-process janitor, by kind",
            "kind",
            &JANITOR_KINDS,
        )?;
        let janitor_runs = counter(
            "portcullis_janitor_runs_total",
            "In-process janitor runs by result: ok, failed",
            "result",
            &["ok", "failed"],
        )?;
        registry.register(Box::new(janitor_deleted.clone()))?;
        registry.register(Box::new(janitor_runs.clone()))?;
        let oauth = OAuthMetrics::new()?;
        oauth.register(&registry)?;
        let pool = PoolMetrics::new(&registry)?;
        Ok(Metrics {
            registry,
            requests,
            latency,
            janitor_deleted,
            janitor_runs,
            oauth,
            pool,
        })
    }

    /// Adds a collector owned by another part of the application (e.g. a service's counters).
    pub fn register(
        &self,
        c: Box<dyn prometheus::core::Collector>,
    ) -> Result<(), prometheus::Error> {
        self.registry.register(c)
    }

    /// Records the pool's state (open and idle connections, limit, acquire timeouts so far);
    /// called right before each scrape renders.
    pub fn observe_pool(&self, size: u32, idle: u32, max: u32, timeouts: u64, waits: u64) {
        let idle = i64::from(idle.min(size));
        self.pool
            .connections
            .with_label_values(&["in_use"])
            .set(i64::from(size) - idle);
        self.pool.connections.with_label_values(&["idle"]).set(idle);
        self.pool.max.set(i64::from(max));
        let seen = self.pool.timeouts.get();
        if timeouts > seen {
            self.pool.timeouts.inc_by(timeouts - seen);
        }
        let seen = self.pool.waits.get();
        if waits > seen {
            self.pool.waits.inc_by(waits - seen);
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::level_filters::LevelFilter;

    #[test]
    fn hydra_levels_map_onto_tracing_levels() {
        for (level, want) in [
            (LogLevel::Panic, LevelFilter::ERROR),
            (LogLevel::Fatal, LevelFilter::ERROR),
            (LogLevel::Error, LevelFilter::ERROR),
            (LogLevel::Warn, LevelFilter::WARN),
            (LogLevel::Info, LevelFilter::INFO),
            (LogLevel::Debug, LevelFilter::DEBUG),
            (LogLevel::Trace, LevelFilter::TRACE),
        ] {
            assert_eq!(max_level(level), want, "{level:?}");
        }
    }
}
