//! Use cases shared by both listeners.
pub mod changes;
pub mod clients;
pub mod dev_ui;
pub mod fetch;
pub mod importer;
pub mod janitor;
pub mod jwks;
pub mod oauth2;
pub mod secrets;
#[cfg(test)]
mod tests;
pub mod wellknown;

/// Injected time source: every expiry and TTL rule reads this clock, never the system time,
/// so tests can move time (`service/tests/fixture.rs`).
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> time::OffsetDateTime;
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
    }
}
