//! A short-lived per-process cache of access-token lookups for introspection and userinfo,
//! the hottest read path. Entries are stamped with the time their database read *started*;
//! a revocation through this process stamps its request id (or everything) after the delete
//! commits, so an entry read before the revocation can never be served after it.
use crate::domain::token::TokenSession;
use crate::store::TokenRow;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_ENTRIES: usize = 100_000;

pub type Entry = Arc<(TokenRow, Arc<TokenSession>)>;

#[derive(Debug)]
pub struct TokenCache {
    ttl: Duration,
    origin: Instant,
    entries: DashMap<String, (u64, Entry)>,
    /// Request ids revoked by this process, with the time of revocation.
    revoked: DashMap<String, u64>,
    /// Everything cached before this time is void (flush, per-client deletion).
    cleared: AtomicU64,
}

impl TokenCache {
    pub fn new(ttl: Duration) -> TokenCache {
        TokenCache {
            ttl,
            origin: Instant::now(),
            entries: DashMap::new(),
            revoked: DashMap::new(),
            cleared: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Monotonic microseconds since the cache was created (never 0 for a stamp).
    pub fn stamp(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64 + 1
    }

    pub fn get(&self, signature: &str) -> Option<Entry> {
        if !self.enabled() {
            return None;
        }
        let (at, entry) = {
            let e = self.entries.get(signature)?;
            (e.0, e.1.clone())
        };
        let fresh = self.stamp().saturating_sub(at) < self.ttl.as_micros() as u64;
        let revoked = self
            .revoked
            .get(&entry.0.request_id)
            .is_some_and(|r| *r >= at);
        if !fresh || revoked || at <= self.cleared.load(Ordering::Acquire) {
            self.entries.remove(signature);
            return None;
        }
        Some(entry)
    }

    /// Caches a row read from the database; `read_started` is the stamp taken before the read.
    pub fn put(&self, read_started: u64, entry: Entry) {
        if !self.enabled() {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries
            .insert(entry.0.signature.clone(), (read_started, entry));
    }

    /// Call after the tokens of `request_id` were deleted.
    pub fn revoke_request(&self, request_id: &str) {
        if !self.enabled() {
            return;
        }
        let now = self.stamp();
        if self.revoked.len() >= MAX_ENTRIES {
            let ttl = self.ttl.as_micros() as u64;
            self.revoked.retain(|_, at| now.saturating_sub(*at) < ttl);
        }
        self.revoked.insert(request_id.to_string(), now);
    }

    /// Call after tokens were deleted by a criterion other than the request id.
    pub fn clear(&self) {
        self.cleared.store(self.stamp(), Ordering::Release);
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::TokenKind;

    fn entry(sig: &str, request: &str) -> Entry {
        Arc::new((
            TokenRow {
                signature: sig.into(),
                kind: TokenKind::Access,
                request_id: request.into(),
                client_id: "c".into(),
                active: true,
                requested_at: 0,
                expires_at: 0,
                data: String::new(),
            },
            Arc::new(TokenSession::default()),
        ))
    }

    #[test]
    fn reads_started_before_a_revocation_are_never_served() {
        let cache = TokenCache::new(Duration::from_secs(60));
        let before = cache.stamp();
        cache.put(before, entry("a", "r1"));
        cache.put(before, entry("b", "r2"));
        assert!(cache.get("a").is_some());
        cache.revoke_request("r1");
        assert!(cache.get("a").is_none(), "revoked after the read started");
        assert!(cache.get("b").is_some(), "other grants unaffected");
        // A read that started after the revocation may be cached (equal stamps count as
        // before, so step past the revocation's microsecond).
        std::thread::sleep(Duration::from_millis(2));
        let after = cache.stamp();
        cache.put(after, entry("a", "r1"));
        assert!(cache.get("a").is_some());
        cache.clear();
        assert!(cache.get("b").is_none() && cache.get("a").is_none());
        let off = TokenCache::new(Duration::ZERO);
        off.put(off.stamp(), entry("a", "r1"));
        assert!(off.get("a").is_none());
    }
}
