//! Login sessions and login/consent flows. Every state change is a conditional UPDATE on the
//! expected state, so two racing requests cannot both spend a challenge or verifier.
use super::{map_err, Store, StoreError};
use crate::domain::flow::{Flow, FlowState, LoginSession, LogoutRequest, LogoutState};
use sqlx::Row;

fn decode_flow(r: &sqlx::any::AnyRow) -> Result<Flow, StoreError> {
    let data: String = r.try_get("data")?;
    let mut flow: Flow =
        serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(format!("flow data: {e}")))?;
    flow.state = Some(FlowState::from_i64(r.try_get("state")?));
    Ok(flow)
}

fn encode(flow: &Flow) -> Result<String, StoreError> {
    serde_json::to_string(flow).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Bound on bind parameters per statement (SQLite allows 32766, PostgreSQL 65535).
const REVOKE_CHUNK: usize = 500;

/// `$1, $2, …, $n`.
fn placeholders(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl Store {
    pub async fn insert_login_session(&self, s: &LoginSession) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO portcullis_login_session (id, subject, authenticated_at, remember, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&s.id)
            .bind(&s.subject)
            .bind(s.authenticated_at)
            .bind(i64::from(s.remember))
            .bind(s.expires_at)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// A remembered login session by id, expired or not (callers compare `expires_at` with
    /// their clock).
    pub async fn get_remembered_session(
        &self,
        id: &str,
    ) -> Result<Option<LoginSession>, StoreError> {
        let row = sqlx::query("SELECT id, subject, authenticated_at, remember, expires_at FROM portcullis_login_session WHERE id = $1 AND remember = 1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            Ok(LoginSession {
                id: r.try_get("id")?,
                subject: r.try_get("subject")?,
                authenticated_at: r.try_get("authenticated_at")?,
                remember: r.try_get::<i64, _>("remember")? == 1,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    /// Records the login on the session row (creating it when a stub was removed meanwhile).
    pub async fn upsert_login_session(&self, s: &LoginSession) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE portcullis_login_session SET subject = $2, authenticated_at = $3, remember = $4, expires_at = $5 WHERE id = $1")
            .bind(&s.id)
            .bind(&s.subject)
            .bind(s.authenticated_at)
            .bind(i64::from(s.remember))
            .bind(s.expires_at)
            .execute(self.pool())
            .await?;
        if done.rows_affected() == 0 {
            self.insert_login_session(s).await?;
        }
        Ok(())
    }

    pub async fn delete_login_session(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM portcullis_login_session WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn insert_flow(&self, flow: &Flow, state: FlowState) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO portcullis_flow (login_challenge, login_verifier, consent_challenge, consent_verifier, state, client_id, subject, requested_at, consent_remember, consent_expires_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .bind(&flow.login_challenge)
            .bind(&flow.login_verifier)
            .bind(opt(&flow.consent_challenge))
            .bind(opt(&flow.consent_verifier))
            .bind(state as i64)
            .bind(&flow.client_id)
            .bind(&flow.subject)
            .bind(flow.requested_at)
            .bind(i64::from(flow.consent_rememberable()))
            .bind(flow.consent_expires_at())
            .bind(encode(flow)?)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// The flow whose `column` (a fixed column name, never user input) equals `value`.
    async fn flow_by(&self, column: &'static str, value: &str) -> Result<Option<Flow>, StoreError> {
        let sql = match column {
            "login_challenge" => {
                "SELECT state, data FROM portcullis_flow WHERE login_challenge = $1"
            }
            "login_verifier" => "SELECT state, data FROM portcullis_flow WHERE login_verifier = $1",
            "consent_challenge" => {
                "SELECT state, data FROM portcullis_flow WHERE consent_challenge = $1"
            }
            _ => "SELECT state, data FROM portcullis_flow WHERE consent_verifier = $1",
        };
        let row = sqlx::query(sql)
            .bind(value)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(decode_flow).transpose()
    }

    pub async fn flow_by_login_challenge(&self, v: &str) -> Result<Option<Flow>, StoreError> {
        self.flow_by("login_challenge", v).await
    }
    pub async fn flow_by_login_verifier(&self, v: &str) -> Result<Option<Flow>, StoreError> {
        self.flow_by("login_verifier", v).await
    }
    pub async fn flow_by_consent_challenge(&self, v: &str) -> Result<Option<Flow>, StoreError> {
        self.flow_by("consent_challenge", v).await
    }
    pub async fn flow_by_consent_verifier(&self, v: &str) -> Result<Option<Flow>, StoreError> {
        self.flow_by("consent_verifier", v).await
    }

    /// Writes `flow` with state `to` only if its stored state is within `from`; false otherwise.
    pub async fn transition_flow(
        &self,
        flow: &Flow,
        from: (FlowState, FlowState),
        to: FlowState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE portcullis_flow SET state = $1, data = $2, consent_challenge = $3, consent_verifier = $4, subject = $5, consent_remember = $6, consent_expires_at = $7 WHERE login_challenge = $8 AND state >= $9 AND state <= $10")
            .bind(to as i64)
            .bind(encode(flow)?)
            .bind(opt(&flow.consent_challenge))
            .bind(opt(&flow.consent_verifier))
            .bind(&flow.subject)
            .bind(i64::from(flow.consent_rememberable() && to >= FlowState::ConsentHandled))
            .bind(flow.consent_expires_at())
            .bind(&flow.login_challenge)
            .bind(from.0 as i64)
            .bind(from.1 as i64)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// The most recent remembered consent of `subject` for `client_id` (consent/strategy_default.go
    /// looks at the newest one only).
    pub async fn latest_remembered_consent(
        &self,
        subject: &str,
        client_id: &str,
    ) -> Result<Option<Flow>, StoreError> {
        let row = sqlx::query("SELECT state, data FROM portcullis_flow WHERE subject = $1 AND client_id = $2 AND consent_remember = 1 ORDER BY requested_at DESC LIMIT 1")
            .bind(subject)
            .bind(client_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(decode_flow).transpose()
    }

    /// Flows of `subject` that reached consent, newest first, optionally for one client.
    pub async fn consent_flows_of(
        &self,
        subject: &str,
        client_id: Option<&str>,
    ) -> Result<Vec<Flow>, StoreError> {
        let rows = match client_id {
            Some(c) => sqlx::query("SELECT state, data FROM portcullis_flow WHERE subject = $1 AND client_id = $2 AND state >= $3 ORDER BY requested_at DESC")
                .bind(subject)
                .bind(c)
                .bind(FlowState::ConsentUnhandled as i64)
                .fetch_all(self.pool())
                .await?,
            None => sqlx::query("SELECT state, data FROM portcullis_flow WHERE subject = $1 AND state >= $2 ORDER BY requested_at DESC")
                .bind(subject)
                .bind(FlowState::ConsentUnhandled as i64)
                .fetch_all(self.pool())
                .await?,
        };
        rows.iter().map(decode_flow).collect()
    }

    /// Revokes the consents of `subject` (for one client, or every client) in one transaction:
    /// the flows, and every artefact of their grants (codes, access and refresh tokens; the
    /// code row also carries the OIDC and PKCE session, so nothing of the grant survives).
    /// Hydra gets the same from its schema, where every token table cascades on the consent
    /// request (persistence/sql/migrations, `hydra_oauth2_*.challenge_id ... ON DELETE CASCADE`).
    /// Returns the request ids (consent challenges) revoked; empty when nothing matched.
    ///
    /// Flows are deleted before tokens: a concurrent redemption locks the flow row first
    /// (`exchange`), so the two serialise on it and no token minted from a revoked grant
    /// survives the commit.
    pub async fn revoke_consents(
        &self,
        subject: &str,
        client_id: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let rows = match client_id {
            Some(c) => sqlx::query("SELECT consent_challenge FROM portcullis_flow WHERE subject = $1 AND client_id = $2 AND state >= $3")
                .bind(subject)
                .bind(c)
                .bind(FlowState::ConsentUnhandled as i64)
                .fetch_all(&mut *tx)
                .await?,
            None => sqlx::query("SELECT consent_challenge FROM portcullis_flow WHERE subject = $1 AND state >= $2")
                .bind(subject)
                .bind(FlowState::ConsentUnhandled as i64)
                .fetch_all(&mut *tx)
                .await?,
        };
        let challenges: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("consent_challenge"))
            .collect::<Result<_, _>>()?;
        if challenges.is_empty() {
            tx.rollback().await?;
            return Ok(challenges);
        }
        for chunk in challenges.chunks(REVOKE_CHUNK) {
            let list = placeholders(chunk.len());
            let sql = format!("DELETE FROM portcullis_flow WHERE consent_challenge IN ({list})");
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q.bind(c);
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in challenges.chunks(REVOKE_CHUNK) {
            let list = placeholders(chunk.len());
            let sql = format!("DELETE FROM portcullis_token WHERE request_id IN ({list})");
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q.bind(c);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(challenges)
    }

    /// Deletes login sessions that expired before `before` (flush).
    pub async fn purge_expired_login_sessions(&self, before: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM portcullis_login_session WHERE expires_at < $1")
            .bind(before)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_login_sessions_of(&self, subject: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM portcullis_login_session WHERE subject = $1")
            .bind(subject)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Stores a new logout request created at Unix time `requested_at` (the janitor removes it
    /// once it is older than the request lifespan).
    pub async fn insert_logout(
        &self,
        l: &LogoutRequest,
        requested_at: i64,
    ) -> Result<(), StoreError> {
        let data = serde_json::to_string(l).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query("INSERT INTO portcullis_logout_request (challenge, verifier, state, data, requested_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&l.challenge)
            .bind(&l.verifier)
            .bind(LogoutState::Unhandled as i64)
            .bind(data)
            .bind(requested_at)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    /// A logout request by challenge (`by_verifier` false) or verifier.
    pub async fn get_logout(
        &self,
        key: &str,
        by_verifier: bool,
    ) -> Result<Option<LogoutRequest>, StoreError> {
        let sql = if by_verifier {
            "SELECT state, data FROM portcullis_logout_request WHERE verifier = $1"
        } else {
            "SELECT state, data FROM portcullis_logout_request WHERE challenge = $1"
        };
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.map(|r| {
            let data: String = r.try_get("data")?;
            let mut l: LogoutRequest = serde_json::from_str(&data)
                .map_err(|e| StoreError::Corrupt(format!("logout data: {e}")))?;
            l.state = Some(LogoutState::from_i64(r.try_get("state")?));
            Ok(l)
        })
        .transpose()
    }

    /// Moves a logout request from `from` to `to`; false when it was not in `from`.
    pub async fn transition_logout(
        &self,
        challenge: &str,
        from: LogoutState,
        to: LogoutState,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE portcullis_logout_request SET state = $1 WHERE challenge = $2 AND state = $3",
        )
        .bind(to as i64)
        .bind(challenge)
        .bind(from as i64)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes flows that can no longer complete: never answered by the consent app and
    /// requested before `before`. Answered consents stay (they are remembered consents and the
    /// consent-session history).
    pub async fn purge_stale_flows(&self, before: i64) -> Result<u64, StoreError> {
        let flows =
            sqlx::query("DELETE FROM portcullis_flow WHERE state < $1 AND requested_at < $2")
                .bind(FlowState::ConsentHandled as i64)
                .bind(before)
                .execute(self.pool())
                .await?;
        Ok(flows.rows_affected())
    }
}
