//! Client-secret hashing and verification under hostile load.
//!
//! argon2id is deliberately expensive (19 MiB and tens of milliseconds per call by default), and
//! client ids are public, so every unbounded verification is a lever for a denial of service. This
//! module is the only way secrets are hashed or verified, and it keeps five promises:
//!
//! 1. **A bound.** A fixed pool of `workers` threads (default: the number of cores) runs every
//!    hash, so hashing holds at most `workers × memory` at any time, and nothing once the
//!    queue is empty (see `worker`). The threads run at a low CPU priority (nice 10): token traffic
//!    of already-verified clients wins the CPU. A request waits at most
//!    `queue_timeout` for a worker, then gets `Busy` (503 `temporarily_unavailable`).
//! 2. **Single flight.** Concurrent verifications of the same client, stored hash and presented
//!    secret share one computation.
//! 3. **Remembered outcomes.** A success is remembered (until the stored hash changes or the
//!    table is full), a failure for `FAILURE_TTL`, both keyed by an HMAC under a per-process
//!    random key, never by the secret itself.
//! 4. **The real client first.** A remembered success is checked before anything else, so a
//!    client whose secret was verified never waits behind hashing. A (client, address) pair that
//!    keeps failing is throttled (429) for unverified secrets without hashing (see `admit`).
//! 5. **Unknown clients cost the same.** They are verified against a dummy hash made with the
//!    configured parameters, through the same path. An address that keeps presenting unknown
//!    client ids is throttled as a whole: its requests for clients this replica has not cached
//!    get 429 without a database read, one per `THROTTLE_INTERVAL` excepted, unless their
//!    secret was verified here before (see `may_look_up`).
use crate::crypto::hasher::{self, Argon2Settings, HashError, Scratch};
use dashmap::DashMap;
use hmac::{Hmac, Mac};
use prometheus::IntCounterVec;
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, Semaphore};

/// How long a failed verification is remembered.
pub const FAILURE_TTL: Duration = Duration::from_secs(10);
/// Failures of one (client, address), each within `THROTTLE_WINDOW` of the previous one, plus
/// its verifications still being computed, before the pair is throttled; it is forgotten after
/// `THROTTLE_WINDOW` without failures. Counting the computations in flight matters: a burst of
/// a thousand wrong secrets arrives before the first of them has failed.
pub const THROTTLE_AFTER: u32 = 10;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(10);
/// While throttled, one unverified secret of the pair is still hashed per this interval
/// (counted from the end of the previous failed verification).
pub const THROTTLE_INTERVAL: Duration = Duration::from_secs(1);
/// A throttled attempt is answered after this many times `failure_delay`. Each connection of a
/// flood gets one answer per delay, and nearly every answer a flood gets is a throttled one, so
/// this divides the work a flood's connections cause (measured: a 1,000-connection flood went
/// from ~930 to ~250 requests/s). Only an address that keeps failing waits this long.
pub const THROTTLED_DELAY_FACTOR: u32 = 4;
/// CPU niceness of the hashing threads (see `lower_priority`).
const HASHER_NICE: libc::c_int = 10;
/// Entries kept per table before it is cleared (each is ~100 bytes).
const TABLE_MAX: usize = 100_000;

/// The answer for one presented secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid,
    /// This client has failed too often from this address: retry later (429).
    Throttled,
    /// No hashing worker became free in time (503).
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("all secret-hashing workers are busy")]
    Busy,
    #[error(transparent)]
    Failed(#[from] HashError),
}

/// Pool size, queue deadline and argon2 parameters (`oauth2.hashers.*`).
#[derive(Debug, Clone)]
pub struct HashingSettings {
    pub argon2: Argon2Settings,
    pub workers: usize,
    pub queue_timeout: Duration,
    /// How long a wrong secret (or an unknown client, or a throttled attempt) waits before its
    /// answer. It costs the server a timer, and bounds each attacking connection to one guess
    /// per delay, so a flood of cheap rejections cannot crowd out verified clients.
    pub failure_delay: Duration,
    /// Networks whose `X-Forwarded-For` names the real client address
    /// (`serve.tls.allow_termination_from`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

type Job = Box<dyn FnOnce(&mut Scratch) + Send>;
type Key = [u8; 32];

#[derive(Debug)]
struct Strikes {
    last_failure: Instant,
    failures: u32,
    next_allowed: Instant,
    /// Unverified secrets of this pair admitted to hashing and not finished yet.
    pending: u32,
}

type StrikeKey = (String, Option<IpAddr>);

/// What one shared computation needs: the table key, the throttle's client id, the stored hash
/// and the presented secret, and the caller's address.
struct Flight {
    key: Key,
    id: String,
    stored: String,
    secret: String,
    origin: Option<IpAddr>,
}

/// An admitted computation: counted in its pair's `pending` until dropped (also on cancel).
struct Admitted<'a> {
    strikes: &'a DashMap<StrikeKey, Strikes>,
    key: StrikeKey,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        if let Some(mut s) = self.strikes.get_mut(&self.key) {
            s.pending = s.pending.saturating_sub(1);
        }
    }
}

pub struct SecretVerifier {
    settings: HashingSettings,
    slots: Arc<Semaphore>,
    jobs: std::sync::mpsc::SyncSender<Job>,
    mac_key: [u8; 32],
    verified: DashMap<Key, ()>,
    /// (client id, secret) pairs verified on this replica, whatever the stored hash: keyed like
    /// `verified` with an empty stored hash (never a real one). They may look their client up
    /// even from an address throttled for unknown ids.
    vouched: DashMap<Key, ()>,
    failed: DashMap<Key, Instant>,
    inflight: Mutex<HashMap<Key, Arc<OnceCell<Verdict>>>>,
    strikes: DashMap<StrikeKey, Strikes>,
    dummy: OnceCell<String>,
    outcomes: IntCounterVec,
}

impl std::fmt::Debug for SecretVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVerifier")
            .field("settings", &self.settings)
            .field("verified", &self.verified.len())
            .field("failed", &self.failed.len())
            .finish_non_exhaustive()
    }
}

/// The metric counting verifications by outcome: `run` (argon2/bcrypt computed), `shared`
/// (joined a concurrent identical computation), `remembered` (answered from memory),
/// `throttled` (429 without hashing) and `busy` (503, no worker in time).
pub fn outcomes_metric() -> Result<IntCounterVec, prometheus::Error> {
    IntCounterVec::new(
        prometheus::Opts::new(
            "portcullis_secret_verifications_total",
            "Client-secret verifications by outcome: run, shared, remembered, throttled, busy",
        ),
        &["outcome"],
    )
}

impl SecretVerifier {
    /// Starts the hashing threads. They end when the verifier is dropped.
    pub fn start(
        settings: HashingSettings,
        outcomes: IntCounterVec,
    ) -> Result<Arc<SecretVerifier>, std::io::Error> {
        let workers = settings.workers.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(workers);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("secret-hasher-{i}"))
                .spawn(move || worker(&rx))?;
        }
        let mut mac_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut mac_key);
        Ok(Arc::new(SecretVerifier {
            slots: Arc::new(Semaphore::new(workers)),
            settings,
            jobs: tx,
            mac_key,
            verified: DashMap::new(),
            vouched: DashMap::new(),
            failed: DashMap::new(),
            inflight: Mutex::new(HashMap::new()),
            strikes: DashMap::new(),
            dummy: OnceCell::new(),
            outcomes,
        }))
    }

    fn count(&self, outcome: &str) {
        self.outcomes.with_label_values(&[outcome]).inc();
    }

    /// Runs `f` on a hashing worker, waiting at most `queue_timeout` for one to be free. The
    /// worker's slot is held until `f` returns, even if the caller has gone away, so the bound
    /// counts computations, not callers.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let permit = tokio::time::timeout(
            self.settings.queue_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await
        .map_err(|_| HashingError::Busy)?
        .map_err(|_| HashingError::Busy)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |scratch| {
            let _ = tx.send(f(scratch));
            drop(permit);
        });
        // Never blocks: the channel holds as many jobs as there are slots.
        self.jobs.try_send(job).map_err(|_| HashingError::Busy)?;
        rx.await.map_err(|_| HashingError::Busy)
    }

    /// Hashes a new client secret through the same bounded pool.
    pub async fn hash(&self, secret: &str) -> Result<String, HashingError> {
        let (secret, settings) = (secret.to_string(), self.settings.argon2.clone());
        let out = self
            .run(move |scratch| hasher::hash(&secret, &settings, scratch))
            .await;
        if matches!(out, Err(HashingError::Busy)) {
            self.count("busy");
        } else {
            self.count("run");
        }
        Ok(out??)
    }

    /// Waits `failure_delay` (see `HashingSettings`), give or take a quarter at random. The
    /// spread keeps a flood's connections from moving in lockstep: without it, a thousand
    /// connections opened at once are answered at once and come back at once, every delay, and
    /// each such wave stalls the verified clients' requests queued behind it.
    pub async fn delay_failure(&self) {
        self.delay(self.settings.failure_delay).await;
    }

    /// Waits as long as `verdict` is answered after: a failure `failure_delay`, a throttled
    /// attempt longer (`delay_throttled`), a success or a busy pool not at all.
    pub async fn delay_answer(&self, verdict: Verdict) {
        match verdict {
            Verdict::Invalid => self.delay_failure().await,
            Verdict::Throttled => self.delay_throttled().await,
            Verdict::Valid | Verdict::Busy => {}
        }
    }

    /// Waits `THROTTLED_DELAY_FACTOR` times `failure_delay` (give or take a quarter): the answer
    /// to an attempt refused by a throttle, which only an address that keeps failing gets.
    pub async fn delay_throttled(&self) {
        self.delay(self.settings.failure_delay * THROTTLED_DELAY_FACTOR)
            .await;
    }

    async fn delay(&self, delay: Duration) {
        if !delay.is_zero() {
            let spread = rand::Rng::gen_range(&mut rand::thread_rng(), 0.75..1.25);
            tokio::time::sleep(delay.mul_f64(spread)).await;
        }
    }

    /// The address a throttle is kept for: the peer, or for a trusted proxy the last hop it
    /// names in `X-Forwarded-For` (the one it saw, which the client cannot forge).
    pub fn origin(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = peer?;
        if !self
            .settings
            .trusted_proxies
            .iter()
            .any(|n| n.contains(&peer))
        {
            return Some(peer);
        }
        forwarded_for
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok())
            .or(Some(peer))
    }

    /// Verifies a secret presented for `client_id`. `stored` is the client's hash, or `None`
    /// for an unknown client (then a dummy hash is verified, so both cost the same).
    pub async fn verify(
        &self,
        client_id: &str,
        stored: Option<&str>,
        secret: &str,
        origin: Option<IpAddr>,
    ) -> Verdict {
        // Failures for unknown client ids count together per address, so a flood of random ids
        // is throttled like a flood against one client (no real client is unknown).
        let throttle_id = if stored.is_some() { client_id } else { "" };
        let stored = match stored {
            Some(h) if !h.is_empty() => h.to_string(),
            Some(_) => return Verdict::Invalid,
            None => match self.dummy_hash().await {
                Some(h) => h,
                None => return Verdict::Busy,
            },
        };
        let key = self.key(client_id, &stored, secret);
        if let Some(verdict) = self.remembered(&key) {
            return verdict;
        }
        let joined = self.lock_inflight().get(&key).cloned();
        let mut _admitted = None;
        let cell = match joined {
            Some(cell) => {
                self.count("shared");
                cell
            }
            None => {
                let Some(admitted) = self.admit(throttle_id, origin) else {
                    self.count("throttled");
                    if throttle_id.is_empty() {
                        // An unknown id is a failure whether hashed or not: the address stays
                        // throttled for as long as it keeps presenting them.
                        self.strike("", origin);
                    }
                    return Verdict::Throttled;
                };
                _admitted = Some(admitted);
                self.lock_inflight().entry(key).or_default().clone()
            }
        };
        let flight = Flight {
            key,
            id: throttle_id.to_string(),
            stored,
            secret: secret.to_string(),
            origin,
        };
        let verdict = *cell.get_or_init(|| self.compute(flight)).await;
        let mut inflight = self.lock_inflight();
        if inflight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            inflight.remove(&key);
        }
        verdict
    }

    /// The remembered outcome for `key`, if any.
    fn remembered(&self, key: &Key) -> Option<Verdict> {
        let verdict = if self.verified.contains_key(key) {
            Verdict::Valid
        } else if self
            .failed
            .get(key)
            .is_some_and(|at| at.elapsed() < FAILURE_TTL)
        {
            Verdict::Invalid
        } else {
            return None;
        };
        self.count("remembered");
        Some(verdict)
    }

    /// The one computation of a flight, on a hashing worker; remembers its outcome.
    async fn compute(&self, flight: Flight) -> Verdict {
        let Flight {
            key,
            id,
            stored,
            secret,
            origin,
        } = flight;
        // A flight that finished between our table lookups and joining: use its result.
        if self.verified.contains_key(&key) {
            self.count("remembered");
            return Verdict::Valid;
        }
        // The vouching key is made now: the secret itself goes to the worker and is not kept.
        let vouch_key = self.key(&id, "", &secret);
        let computed = self
            .run(move |scratch| hasher::verify(&secret, &stored, scratch))
            .await;
        match computed {
            // `id` is empty for an unknown client: whatever it presented, it failed.
            Ok(true) if !id.is_empty() => {
                self.count("run");
                self.remember_success(key);
                self.vouch(vouch_key);
                Verdict::Valid
            }
            Ok(_) => {
                self.count("run");
                self.remember_failure(key, &id, origin);
                Verdict::Invalid
            }
            Err(_) => {
                self.count("busy");
                Verdict::Busy
            }
        }
    }

    fn lock_inflight(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<OnceCell<Verdict>>>> {
        self.inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A hash of a random secret with the configured parameters, made once through the pool: no
    /// presented secret matches it (and `compute` refuses a match for an unknown client anyway).
    async fn dummy_hash(&self) -> Option<String> {
        self.dummy
            .get_or_try_init(|| async {
                let secret = crate::crypto::random_secret(32);
                self.hash(&secret).await
            })
            .await
            .ok()
            .cloned()
    }

    fn key(&self, client_id: &str, stored: &str, secret: &str) -> Key {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.mac_key) else {
            return [0; 32];
        };
        for part in [client_id, stored, secret] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    fn remember_success(&self, key: Key) {
        if self.verified.len() >= TABLE_MAX {
            self.verified.clear();
        }
        self.verified.insert(key, ());
    }

    /// Remembers a verified (client id, secret) pair; `key` is `self.key(id, "", secret)`.
    fn vouch(&self, key: Key) {
        if self.vouched.len() >= TABLE_MAX {
            self.vouched.clear();
        }
        self.vouched.insert(key, ());
    }

    fn remember_failure(&self, key: Key, client_id: &str, origin: Option<IpAddr>) {
        if self.failed.len() >= TABLE_MAX {
            self.failed.retain(|_, at| at.elapsed() < FAILURE_TTL);
            if self.failed.len() >= TABLE_MAX {
                self.failed.clear();
            }
        }
        self.failed.insert(key, Instant::now());
        self.strike(client_id, origin);
    }

    /// An unknown client id was presented from `origin` with no secret to verify: counted
    /// like a failed secret of an unknown client (see `may_look_up`).
    pub fn strike_unknown(&self, origin: Option<IpAddr>) {
        self.strike("", origin);
    }

    /// Whether a client that is not cached may be read from the database for a request from
    /// `origin`. An address whose recent unknown client ids have reached `THROTTLE_AFTER` gets
    /// one read per `THROTTLE_INTERVAL` (shared with the hashing slot of its unknown ids, which
    /// then never hash: no real client is unknown), the rest are refused (429) without touching
    /// the database. A secret verified on this replica before is let through at once, so a
    /// real client behind the attacker's address is not held back when its cache entry is void.
    pub fn may_look_up(
        &self,
        client_id: &str,
        secret: Option<&str>,
        origin: Option<IpAddr>,
    ) -> bool {
        let now = Instant::now();
        let Some(mut s) = self.strikes.get_mut(&(String::new(), origin)) else {
            return true;
        };
        let recent = if now.duration_since(s.last_failure) < THROTTLE_WINDOW {
            s.failures
        } else {
            0
        };
        if recent.saturating_add(s.pending) < THROTTLE_AFTER {
            return true;
        }
        if secret.is_some_and(|secret| self.vouched.contains_key(&self.key(client_id, "", secret)))
        {
            return true;
        }
        if now < s.next_allowed {
            drop(s);
            self.count("throttled");
            return false;
        }
        s.next_allowed = now + THROTTLE_INTERVAL;
        true
    }

    /// One more failure of (client, address); see `admit`.
    fn strike(&self, client_id: &str, origin: Option<IpAddr>) {
        self.bound_strikes();
        let now = Instant::now();
        let mut s = self
            .strikes
            .entry((client_id.to_string(), origin))
            .or_insert(Strikes {
                last_failure: now,
                failures: 0,
                next_allowed: now,
                pending: 0,
            });
        if now.duration_since(s.last_failure) >= THROTTLE_WINDOW {
            s.failures = 0;
        }
        s.last_failure = now;
        s.failures = s.failures.saturating_add(1);
        if s.failures >= THROTTLE_AFTER {
            s.next_allowed = now + THROTTLE_INTERVAL;
        }
    }

    /// Keeps the throttle table bounded: idle pairs go first, everything if that is not enough.
    fn bound_strikes(&self) {
        if self.strikes.len() >= TABLE_MAX {
            self.strikes
                .retain(|_, s| s.pending > 0 || s.last_failure.elapsed() < THROTTLE_WINDOW);
            if self.strikes.len() >= TABLE_MAX {
                self.strikes.clear();
            }
        }
    }

    /// Admits an unverified secret of this (client, address) to hashing, or `None` when it must
    /// wait instead (429): once recent failures plus computations in flight reach
    /// `THROTTLE_AFTER`, one secret per `THROTTLE_INTERVAL` is still hashed, the rest are
    /// refused until `THROTTLE_WINDOW` passes without failures.
    fn admit(&self, client_id: &str, origin: Option<IpAddr>) -> Option<Admitted<'_>> {
        self.bound_strikes();
        let key = (client_id.to_string(), origin);
        let now = Instant::now();
        {
            let mut s = self.strikes.entry(key.clone()).or_insert(Strikes {
                last_failure: now,
                failures: 0,
                next_allowed: now,
                pending: 0,
            });
            let recent = if now.duration_since(s.last_failure) < THROTTLE_WINDOW {
                s.failures
            } else {
                0
            };
            if recent.saturating_add(s.pending) >= THROTTLE_AFTER {
                if now < s.next_allowed {
                    return None;
                }
                s.next_allowed = now + THROTTLE_INTERVAL;
            }
            s.pending = s.pending.saturating_add(1);
        }
        Some(Admitted {
            strikes: &self.strikes,
            key,
        })
    }
}

/// A hashing thread: lowest CPU priority, jobs until shutdown. Its working memory is reused
/// while jobs are waiting, and released as soon as none is: a replica holds `workers × memory`
/// only while it is hashing, not forever after its first hash (hashing is rare once secrets
/// are remembered, so mapping the memory afresh, a few milliseconds, is cheap).
fn worker(rx: &Mutex<std::sync::mpsc::Receiver<Job>>) {
    lower_priority();
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(mut job) = job else { return };
        let mut scratch = Scratch::default();
        loop {
            job(&mut scratch);
            // `try_lock`: another worker waiting in `recv` holds the lock, and then nothing is
            // queued; blocking on the lock here would keep this memory until the next job.
            let next = match rx.try_lock() {
                Ok(rx) => rx.try_recv(),
                Err(std::sync::TryLockError::WouldBlock) => break,
                Err(std::sync::TryLockError::Poisoned(_)) => return,
            };
            match next {
                Ok(waiting) => job = waiting,
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// nice 10 for the calling thread (Linux applies nice per thread): under CPU contention a
/// hashing thread gets about a tenth of the share of a request thread, so verified clients come
/// first while hashing still progresses on a saturated machine (nice 19 starved it entirely).
/// Only lowers priority, which needs no privilege; failure leaves the default priority.
#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take no pointers and only affect the calling thread.
    unsafe {
        let tid = libc::gettid();
        let _ = libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, HASHER_NICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(workers: usize, queue_timeout: Duration) -> Arc<SecretVerifier> {
        SecretVerifier::start(
            HashingSettings {
                argon2: Argon2Settings {
                    memory_kib: 1024,
                    iterations: 1,
                    parallelism: 1,
                    salt_length: 16,
                    key_length: 32,
                },
                workers,
                queue_timeout,
                failure_delay: Duration::ZERO,
                trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            },
            outcomes_metric().unwrap(),
        )
        .unwrap()
    }

    fn counted(v: &SecretVerifier, outcome: &str) -> u64 {
        v.outcomes.with_label_values(&[outcome]).get()
    }

    #[tokio::test]
    async fn single_flight_and_remembered_outcomes() {
        let v = verifier(2, Duration::from_secs(5));
        let h = v.hash("right").await.unwrap();
        let runs = counted(&v, "run");
        let all = futures_join(&v, &h, "right", 50).await;
        assert!(all.iter().all(|x| *x == Verdict::Valid));
        assert_eq!(
            counted(&v, "run") - runs,
            1,
            "one computation for 50 callers"
        );
        assert_eq!(counted(&v, "shared") + counted(&v, "remembered"), 49);
        let bad = futures_join(&v, &h, "wrong", 20).await;
        assert!(bad.iter().all(|x| *x == Verdict::Invalid));
        assert_eq!(
            counted(&v, "run") - runs,
            2,
            "one computation for the wrong secret"
        );
        let before = counted(&v, "remembered");
        assert_eq!(
            v.verify("c", Some(&h), "wrong", None).await,
            Verdict::Invalid
        );
        assert_eq!(counted(&v, "remembered"), before + 1);
    }

    async fn futures_join(v: &Arc<SecretVerifier>, h: &str, s: &str, n: usize) -> Vec<Verdict> {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (v, h, s) = (v.clone(), h.to_string(), s.to_string());
            set.spawn(async move { v.verify("c", Some(&h), &s, None).await });
        }
        let mut out = vec![];
        while let Some(r) = set.join_next().await {
            out.push(r.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn throttles_a_failing_address_but_not_others_nor_verified_secrets() {
        let v = verifier(2, Duration::from_secs(5));
        let h = v.hash("right").await.unwrap();
        assert_eq!(v.verify("c", Some(&h), "right", None).await, Verdict::Valid);
        let attacker: Option<IpAddr> = Some("192.0.2.1".parse().unwrap());
        for i in 0..THROTTLE_AFTER {
            let s = format!("wrong-{i}");
            assert_eq!(
                v.verify("c", Some(&h), &s, attacker).await,
                Verdict::Invalid
            );
        }
        // Right after the threshold the pair waits (one unverified secret per second is hashed).
        assert_eq!(
            v.verify("c", Some(&h), "x2", attacker).await,
            Verdict::Throttled
        );
        assert!(counted(&v, "throttled") >= 1);
        // The verified secret is never throttled, from any address.
        assert_eq!(
            v.verify("c", Some(&h), "right", attacker).await,
            Verdict::Valid
        );
        // Another address is not throttled.
        let other = Some("198.51.100.7".parse().unwrap());
        assert_eq!(v.verify("c", Some(&h), "x3", other).await, Verdict::Invalid);
    }

    #[tokio::test]
    async fn a_burst_is_throttled_before_its_first_failure_finishes() {
        // One worker, held busy: nothing fails while the burst arrives.
        let v = verifier(1, Duration::from_secs(5));
        let h = v.hash("right").await.unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let v = v.clone();
            tokio::spawn(async move { v.run(move |_| rx.recv().ok()).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let attacker: Option<IpAddr> = Some("192.0.2.9".parse().unwrap());
        let mut set = tokio::task::JoinSet::new();
        for i in 0..50 {
            let (v, h) = (v.clone(), h.clone());
            set.spawn(async move { v.verify("c", Some(&h), &format!("w{i}"), attacker).await });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(()).unwrap();
        let mut verdicts = vec![];
        while let Some(r) = set.join_next().await {
            verdicts.push(r.unwrap());
        }
        let hashed = verdicts.iter().filter(|x| **x == Verdict::Invalid).count();
        let throttled = verdicts
            .iter()
            .filter(|x| **x == Verdict::Throttled)
            .count();
        // THROTTLE_AFTER admitted at once, then the one per THROTTLE_INTERVAL.
        assert_eq!(hashed, THROTTLE_AFTER as usize + 1, "{verdicts:?}");
        assert_eq!(throttled, 50 - hashed);
        assert!(blocker.await.unwrap());
    }

    #[tokio::test]
    async fn busy_when_no_worker_frees_in_time() {
        let v = verifier(1, Duration::from_millis(50));
        // Occupy the only worker.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let v = v.clone();
            tokio::spawn(async move { v.run(move |_| rx.recv().ok()).await.is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(v.verify("c", Some("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"), "s", None).await, Verdict::Busy);
        assert!(matches!(v.hash("new").await, Err(HashingError::Busy)));
        tx.send(()).unwrap();
        assert!(blocker.await.unwrap());
    }

    #[tokio::test]
    async fn unknown_clients_take_the_same_path() {
        let v = verifier(1, Duration::from_secs(5));
        assert_eq!(v.verify("nobody", None, "s", None).await, Verdict::Invalid);
        // Remembered like a known client's failure.
        let before = counted(&v, "remembered");
        assert_eq!(v.verify("nobody", None, "s", None).await, Verdict::Invalid);
        assert_eq!(counted(&v, "remembered"), before + 1);
    }

    #[tokio::test]
    async fn an_address_presenting_unknown_ids_is_refused_reads() {
        let v = verifier(1, Duration::from_secs(5));
        let (a, b): (Option<IpAddr>, Option<IpAddr>) = (
            Some("192.0.2.1".parse().unwrap()),
            Some("192.0.2.2".parse().unwrap()),
        );
        let h = v.hash("right").await.unwrap();
        assert_eq!(v.verify("real", Some(&h), "right", b).await, Verdict::Valid);
        // Nine unknown ids with secrets (hashed against the dummy) and one without.
        for i in 0..THROTTLE_AFTER - 1 {
            let id = format!("unknown-{i}");
            assert!(v.may_look_up(&id, Some("guess"), a), "{id}");
            assert_eq!(v.verify(&id, None, "guess", a).await, Verdict::Invalid);
        }
        assert!(v.may_look_up("unknown-last", None, a));
        v.strike_unknown(a);
        // The address is throttled: no read for an unverified secret, whatever the client.
        let runs = counted(&v, "run");
        assert!(!v.may_look_up("unknown-next", Some("guess"), a));
        assert!(!v.may_look_up("real", Some("wrong"), a));
        assert!(!v.may_look_up("real", None, a));
        assert_eq!(counted(&v, "throttled"), 3);
        // A secret verified here before is read at once, from any address; other addresses are
        // not affected.
        assert!(v.may_look_up("real", Some("right"), a));
        assert!(v.may_look_up("unknown-next", Some("guess"), b));
        // Once the interval has passed, one read goes through; the unknown id it finds is
        // refused without hashing and keeps the address throttled.
        tokio::time::sleep(THROTTLE_INTERVAL + Duration::from_millis(50)).await;
        assert!(v.may_look_up("unknown-slot", Some("guess"), a));
        assert_eq!(
            v.verify("unknown-slot", None, "guess", a).await,
            Verdict::Throttled
        );
        assert!(!v.may_look_up("unknown-after", Some("guess"), a));
        assert_eq!(counted(&v, "run"), runs, "no hashing while throttled");
    }

    #[test]
    fn origin_trusts_only_configured_proxies() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let v = rt.block_on(async { verifier(1, Duration::from_secs(1)) });
        let direct: IpAddr = "192.0.2.1".parse().unwrap();
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(v.origin(Some(direct), Some("1.1.1.1")), Some(direct));
        assert_eq!(
            v.origin(Some(proxy), Some("6.6.6.6, 203.0.113.9")),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(v.origin(Some(proxy), None), Some(proxy));
    }
}
