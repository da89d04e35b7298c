//! `portcullis migrate from-hydra`: copies what a running Hydra v1.9.2 knows (clients, JSON Web
//! Keys, remembered logins and consents, live tokens, spent assertion `jti`s) into the
//! configured store, so relying parties and users notice no switch. Hydra's database is only
//! read (store/hydra.rs); every write is idempotent (store/import.rs), so a second run changes
//! nothing and an interrupted run is resumed by running it again.
pub mod convert;

use crate::config::Config;
use crate::crypto::aead::Aead;
use crate::domain::jwk::{kid, Jwk};
use crate::domain::token::TokenKind;
use crate::store::hydra::{HydraSource, HydraTokenTable};
use crate::store::{Store, StoreError, StoredKey, TokenRow};
use convert::{Lifespans, Skip};
use std::collections::{BTreeMap, HashSet};
use std::io::Write;

/// Server-side lifetime given to imported remembered logins (seconds).
const IMPORTED_SESSION_LIFETIME: i64 = 30 * 24 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Config(String),
    #[error("SECRETS_SYSTEM does not decrypt Hydra's JSON Web Keys: set it to Hydra's secrets.system (the current secret first, then the rotated ones)")]
    WrongSecret,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Hydra's DSN (PostgreSQL).
    pub hydra_dsn: String,
    /// Read and count only; the target is not opened.
    pub dry_run: bool,
    /// Rows per page read and per write batch.
    pub batch: i64,
}

impl Options {
    pub fn new(hydra_dsn: &str) -> Options {
        Options {
            hydra_dsn: hydra_dsn.to_string(),
            dry_run: false,
            batch: 200,
        }
    }
}

/// Counts for one kind of record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindReport {
    pub kind: &'static str,
    /// Rows read from Hydra.
    pub read: u64,
    /// Rows written (in a dry run: rows that would be written).
    pub imported: u64,
    /// Rows not written, by reason.
    pub skipped: BTreeMap<String, u64>,
}

impl KindReport {
    fn new(kind: &'static str) -> KindReport {
        KindReport {
            kind,
            ..KindReport::default()
        }
    }

    fn skip(&mut self, reason: impl Into<String>, n: u64) {
        if n > 0 {
            *self.skipped.entry(reason.into()).or_default() += n;
        }
    }

    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

/// The final report: one line per kind, and notes on what is deliberately not copied.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub dry_run: bool,
    pub kinds: Vec<KindReport>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn kind(&self, kind: &str) -> Option<&KindReport> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Rows written in total (zero on a second run).
    pub fn imported_total(&self) -> u64 {
        self.kinds.iter().map(|k| k.imported).sum()
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.dry_run {
            writeln!(
                f,
                "Dry run: nothing was written. \"imported\" counts what an import would write (rows the target holds already are not known here)."
            )?;
        }
        writeln!(
            f,
            "{:<22} {:>9} {:>9} {:>9}  skipped because",
            "kind", "read", "imported", "skipped"
        )?;
        for k in &self.kinds {
            let why: Vec<String> = k.skipped.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            writeln!(
                f,
                "{:<22} {:>9} {:>9} {:>9}  {}",
                k.kind,
                k.read,
                k.imported,
                k.skipped_total(),
                why.join("; ")
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

const ALREADY: &str = "already imported";
const UNKNOWN_CLIENT: &str = "client not imported";
const UNDECRYPTABLE: &str = "not decryptable with SECRETS_SYSTEM";

/// Runs the import (or the dry run) at Unix time `now`, writing progress lines to `progress`.
pub async fn run(
    cfg: &Config,
    opts: &Options,
    now: i64,
    progress: &mut dyn Write,
) -> Result<Report, ImportError> {
    if cfg.secrets.system.is_empty() {
        return Err(ImportError::Config(
            "SECRETS_SYSTEM must hold Hydra's secrets.system: Hydra's keys and sessions are encrypted with it, and its tokens are signed with it".into(),
        ));
    }
    if !opts.dry_run && (cfg.dsn.is_empty() || cfg.dsn == "memory") {
        return Err(ImportError::Config(
            "DSN must name the database to import into (postgres://… or sqlite://…)".into(),
        ));
    }
    let secrets: Vec<&[u8]> = cfg.secrets.system.iter().map(|s| s.0.as_bytes()).collect();
    let mut source = HydraSource::open(&opts.hydra_dsn).await?;
    let target = if opts.dry_run {
        None
    } else {
        let store = Store::connect(&cfg.dsn).await?;
        store.migrate().await?;
        Some(store)
    };
    let mut job = Job {
        source: &mut source,
        target: target.as_ref(),
        aead: Aead::new(&secrets),
        seal_sessions: cfg.oauth2.session.encrypt_at_rest,
        life: Lifespans {
            access: cfg.ttl.access_token.as_secs() as i64,
            code: cfg.ttl.auth_code.as_secs() as i64,
        },
        now,
        batch: opts.batch.max(1),
        progress,
        clients: HashSet::new(),
    };
    let result = job.all().await;
    source.close().await;
    if let Some(t) = &target {
        t.close().await;
    }
    let (kinds, notes) = result?;
    Ok(Report {
        dry_run: opts.dry_run,
        kinds,
        notes,
    })
}

struct Job<'a> {
    source: &'a mut HydraSource,
    target: Option<&'a Store>,
    aead: Aead,
    seal_sessions: bool,
    life: Lifespans,
    now: i64,
    batch: i64,
    progress: &'a mut dyn Write,
    /// Hydra clients that exist in the target (imported now or before).
    clients: HashSet<String>,
}

impl Job<'_> {
    async fn all(&mut self) -> Result<(Vec<KindReport>, Vec<String>), ImportError> {
        // Keys first: they prove SECRETS_SYSTEM is Hydra's before anything is written.
        let keys = self.read_keys().await?;
        let mut kinds = vec![self.clients().await?];
        kinds.push(self.keys(keys).await?);
        kinds.push(self.login_sessions().await?);
        kinds.push(self.consents().await?);
        for (table, kind, name) in [
            (
                HydraTokenTable::Code,
                TokenKind::Code,
                "authorization codes",
            ),
            (HydraTokenTable::Access, TokenKind::Access, "access tokens"),
            (
                HydraTokenTable::Refresh,
                TokenKind::Refresh,
                "refresh tokens",
            ),
        ] {
            kinds.push(self.tokens(table, kind, name).await?);
        }
        kinds.push(self.jtis().await?);
        let mut notes = Vec::new();
        for (table, what) in [
            (
                "hydra_oauth2_oidc",
                "OpenID Connect sessions travel inside their authorization codes",
            ),
            (
                "hydra_oauth2_pkce",
                "PKCE sessions travel inside their authorization codes",
            ),
            (
                "hydra_oauth2_obfuscated_authentication_session",
                "pairwise subjects are recomputed from the same salt, not copied",
            ),
            (
                "hydra_oauth2_logout_request",
                "logout requests in progress are not copied: the browser starts logout again",
            ),
        ] {
            let n = self.source.count(table, "TRUE").await?;
            if n > 0 {
                notes.push(format!("{table}: {n} rows; {what}"));
            }
        }
        let pending = self
            .source
            .count(
                "hydra_oauth2_authentication_request l",
                "NOT EXISTS (SELECT 1 FROM hydra_oauth2_consent_request r WHERE r.login_challenge = l.challenge)",
            )
            .await?;
        if pending > 0 {
            notes.push(format!("{pending} login requests without a consent request (flows in progress or abandoned) are not copied: such a flow restarts at /oauth2/auth"));
        }
        Ok((kinds, notes))
    }

    fn tick(&mut self, kind: &str, done: u64, total: i64) {
        if total > self.batch {
            let _ = writeln!(self.progress, "{kind}: {done}/{total}");
        }
    }

    async fn clients(&mut self) -> Result<KindReport, ImportError> {
        let mut r = KindReport::new("clients");
        let total = self.source.count("hydra_client", "TRUE").await?;
        let mut after = String::new();
        loop {
            let page = self.source.clients(&after, self.batch).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for h in &page {
                r.read += 1;
                let stored = match convert::client(h) {
                    Ok(s) => s,
                    Err(e) => {
                        r.skip(format!("unreadable: {e}"), 1);
                        continue;
                    }
                };
                let new = match self.target {
                    Some(t) => t.import_client(&stored).await?,
                    None => true,
                };
                self.clients.insert(h.id.clone());
                if new {
                    r.imported += 1;
                } else {
                    r.skip(ALREADY, 1);
                }
            }
            self.tick(r.kind, r.read, total);
        }
        Ok(r)
    }

    /// Hydra's keys, opened with Hydra's AEAD (same construction and secrets as Portcullis'):
    /// `Ok(None)` per key that no secret opens.
    async fn read_keys(&mut self) -> Result<Vec<(StoredKey, Option<Jwk>)>, ImportError> {
        let rows = self.source.keys().await?;
        let mut out = Vec::with_capacity(rows.len());
        for k in rows {
            let jwk = self
                .aead
                .decrypt(&k.keydata)
                .ok()
                .and_then(|plain| serde_json::from_slice::<Jwk>(&plain).ok());
            out.push((
                StoredKey {
                    set_id: k.sid,
                    kid: k.kid,
                    keydata: String::new(),
                    created_at: k.created_at,
                },
                jwk,
            ));
        }
        if !out.is_empty() && out.iter().all(|(_, j)| j.is_none()) {
            return Err(ImportError::WrongSecret);
        }
        Ok(out)
    }

    /// Per set: on the first import the target's set becomes exactly Hydra's (a key Portcullis
    /// generated on an earlier start would otherwise be newer and sign instead of Hydra's);
    /// later runs only add keys that are missing, so keys rotated since are kept.
    async fn keys(
        &mut self,
        keys: Vec<(StoredKey, Option<Jwk>)>,
    ) -> Result<KindReport, ImportError> {
        let mut r = KindReport::new("json web keys");
        let mut sets: BTreeMap<String, Vec<StoredKey>> = BTreeMap::new();
        for (mut row, jwk) in keys {
            r.read += 1;
            let Some(mut jwk) = jwk else {
                r.skip(UNDECRYPTABLE, 1);
                continue;
            };
            if kid(&jwk).is_empty() {
                jwk.insert("kid".into(), row.kid.clone().into());
            } else if kid(&jwk) != row.kid {
                r.skip("kid differs from the row's kid", 1);
                continue;
            }
            let plain = serde_json::to_vec(&jwk).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            row.keydata = self
                .aead
                .encrypt(&plain)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sets.entry(row.set_id.clone()).or_default().push(row);
        }
        for (set, rows) in sets {
            let Some(target) = self.target else {
                r.imported += rows.len() as u64;
                continue;
            };
            let present: HashSet<String> = target
                .get_set(&set)
                .await?
                .into_iter()
                .map(|k| k.kid)
                .collect();
            let missing: Vec<StoredKey> = rows
                .iter()
                .filter(|k| !present.contains(&k.kid))
                .cloned()
                .collect();
            r.skip(ALREADY, (rows.len() - missing.len()) as u64);
            if missing.is_empty() {
                continue;
            }
            if rows.iter().all(|k| !present.contains(&k.kid)) {
                target.replace_set(&set, &rows).await?;
                if !present.is_empty() {
                    let _ = writeln!(
                        self.progress,
                        "json web keys: {set}: replaced {} key(s) generated by Portcullis with Hydra's",
                        present.len()
                    );
                }
            } else {
                target.add_keys(&missing).await?;
            }
            r.imported += missing.len() as u64;
        }
        Ok(r)
    }

    async fn login_sessions(&mut self) -> Result<KindReport, ImportError> {
        let mut r = KindReport::new("login sessions");
        let total = self
            .source
            .count("hydra_oauth2_authentication_session", "TRUE")
            .await?;
        let mut after = String::new();
        loop {
            let page = self.source.login_sessions(&after, self.batch).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            for s in &page {
                r.read += 1;
                if !s.remember {
                    r.skip("not remembered (lived in a browser-session cookie)", 1);
                    continue;
                }
                // Hydra 1.9 kept no server-side expiry; give imported sessions the bound the
                // 0004 migration gives sessions that predate it: 30 days after authentication.
                let authenticated_at = s.authenticated_at.unwrap_or(0);
                let expires_at = authenticated_at.saturating_add(IMPORTED_SESSION_LIFETIME);
                if expires_at <= self.now {
                    r.skip("remembered for longer than 30 days (expired)", 1);
                    continue;
                }
                let session = crate::domain::flow::LoginSession {
                    id: s.id.clone(),
                    subject: s.subject.clone(),
                    authenticated_at,
                    remember: true,
                    expires_at,
                };
                let new = match self.target {
                    Some(t) => t.import_login_session(&session).await?,
                    None => true,
                };
                if new {
                    r.imported += 1;
                } else {
                    r.skip(ALREADY, 1);
                }
            }
            self.tick(r.kind, r.read, total);
        }
        Ok(r)
    }

    async fn consents(&mut self) -> Result<KindReport, ImportError> {
        let mut r = KindReport::new("remembered consents");
        let total = self.source.count_remembered().await?;
        let mut after = String::new();
        loop {
            let page = self.source.remembered_consents(&after, self.batch).await?;
            let Some(last) = page.last() else { break };
            after = last.challenge.clone();
            for h in &page {
                r.read += 1;
                if !self.clients.contains(&h.client_id) {
                    r.skip(UNKNOWN_CLIENT, 1);
                    continue;
                }
                let flow = match convert::consent_flow(h, self.now, crate::service::oauth2::new_id)
                {
                    Ok(f) => f,
                    Err(Skip::Expired) => {
                        r.skip("remember_for elapsed", 1);
                        continue;
                    }
                    Err(e) => {
                        r.skip(e.reason(), 1);
                        continue;
                    }
                };
                let Some(t) = self.target else {
                    r.imported += 1;
                    continue;
                };
                if t.flow_by_consent_challenge(&flow.consent_challenge)
                    .await?
                    .is_some()
                {
                    r.skip(ALREADY, 1);
                    continue;
                }
                match t
                    .insert_flow(&flow, crate::domain::flow::FlowState::ConsentUsed)
                    .await
                {
                    Ok(()) => r.imported += 1,
                    Err(StoreError::Conflict(_)) => {
                        r.skip("a challenge or verifier collides with a stored flow", 1)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            self.tick(r.kind, r.read, total);
        }
        // Hydra consults only the newest remembered consent of a subject and client.
        let superseded = (total as u64).saturating_sub(r.read);
        r.read += superseded;
        r.skip("superseded by a newer remembered consent", superseded);
        Ok(r)
    }

    async fn tokens(
        &mut self,
        table: HydraTokenTable,
        kind: TokenKind,
        name: &'static str,
    ) -> Result<KindReport, ImportError> {
        let mut r = KindReport::new(name);
        let total = self.source.count_tokens(table).await?;
        let mut after = String::new();
        loop {
            let page = self.source.tokens(table, &after, self.batch).await?;
            let Some(last) = page.last() else { break };
            after = last.signature.clone();
            let mut rows = Vec::with_capacity(page.len());
            for h in &page {
                r.read += 1;
                if !self.clients.contains(&h.client_id) {
                    r.skip(UNKNOWN_CLIENT, 1);
                    continue;
                }
                // persister_oauth2.go toRequest: plain JSON, else AEAD ciphertext.
                let json = if serde_json::from_str::<serde::de::IgnoredAny>(&h.session_data).is_ok()
                {
                    h.session_data.clone().into_bytes()
                } else {
                    match self.aead.decrypt(&h.session_data) {
                        Ok(p) => p,
                        Err(_) => {
                            r.skip(UNDECRYPTABLE, 1);
                            continue;
                        }
                    }
                };
                let session = match convert::token_session(h, &json, kind, self.life, self.now) {
                    Ok(s) => s,
                    Err(e) => {
                        r.skip(e.reason(), 1);
                        continue;
                    }
                };
                let text = serde_json::to_string(&session)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let data = if self.seal_sessions {
                    self.aead
                        .encrypt(text.as_bytes())
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?
                } else {
                    text
                };
                rows.push(TokenRow {
                    // The HMAC signature (or, for JWT access tokens, its SHA-384) as Hydra
                    // stored it: the token the client holds verifies against it unchanged.
                    signature: h.signature.clone(),
                    kind,
                    request_id: h.request_id.clone(),
                    client_id: h.client_id.clone(),
                    // A spent code or rotated refresh token stays spent, so its reuse is still
                    // detected and revokes the grant.
                    active: h.active,
                    requested_at: session.issued_at,
                    expires_at: session.expires_at,
                    data,
                });
            }
            let new = match self.target {
                Some(t) => t.import_tokens(&rows).await?,
                None => rows.len() as u64,
            };
            r.imported += new;
            r.skip(ALREADY, rows.len() as u64 - new);
            self.tick(r.kind, r.read, total);
        }
        Ok(r)
    }

    async fn jtis(&mut self) -> Result<KindReport, ImportError> {
        let mut r = KindReport::new("spent assertion jtis");
        let total = self
            .source
            .count("hydra_oauth2_jti_blacklist", "TRUE")
            .await?;
        let mut after = String::new();
        loop {
            let page = self.source.jtis(&after, self.batch).await?;
            let Some(last) = page.last() else { break };
            after = last.signature.clone();
            for j in &page {
                r.read += 1;
                if j.expires_at < self.now {
                    r.skip("expired", 1);
                    continue;
                }
                let new = match self.target {
                    Some(t) => t.import_jti(&j.signature, j.expires_at).await?,
                    None => true,
                };
                if new {
                    r.imported += 1;
                } else {
                    r.skip(ALREADY, 1);
                }
            }
            self.tick(r.kind, r.read, total);
        }
        Ok(r)
    }
}
