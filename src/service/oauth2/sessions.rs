//! Login and consent session management for the admin API (consent/handler.go,
//! persister_consent.go): list a subject's consents, revoke them with their tokens, forget a
//! subject's remembered logins.
use super::flows::FlowError;
use super::OAuth2;
use crate::domain::client::Client;
use crate::domain::flow::{Flow, FlowState};
use std::sync::Arc;

impl OAuth2 {
    /// One page of the handled, successful, non-skipped consents of `subject`, newest first,
    /// each with its client, and the total. Remembered ones whose `remember_for` ran out are
    /// dropped (Hydra lists unremembered ones too).
    pub async fn consent_sessions(
        &self,
        subject: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<(Flow, Arc<Client>)>, i64), FlowError> {
        let now = self.now();
        let live: Vec<Flow> = self
            .store
            .consent_flows_of(subject, None)
            .await?
            .into_iter()
            .filter(|f| {
                let expires = f.consent_expires_at();
                f.state >= Some(FlowState::ConsentHandled)
                    && !f.consent_skip
                    && matches!(&f.consent, Some(c) if c.denial.is_none())
                    && (expires == 0 || expires >= now)
            })
            .collect();
        let total = live.len() as i64;
        let mut page = Vec::new();
        for f in live
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(0))
            .take(usize::try_from(limit).unwrap_or(0))
        {
            let client = self
                .clients
                .get_shared(&f.client_id)
                .await
                .map_err(FlowError::Client)?;
            page.push((f, client));
        }
        Ok((page, total))
    }

    /// Revokes the consents of `subject` (for one client, or all) and every artefact they
    /// granted, codes included, in one transaction; then this process forgets the cached
    /// lookups of their tokens. Nothing to revoke is a 404, as in Hydra.
    pub async fn revoke_consent_sessions(
        &self,
        subject: &str,
        client_id: Option<&str>,
    ) -> Result<(), FlowError> {
        let revoked = self.store.revoke_consents(subject, client_id).await?;
        if revoked.is_empty() {
            return Err(FlowError::NotFound);
        }
        for request_id in &revoked {
            self.cache.revoke_request(request_id);
        }
        Ok(())
    }

    /// Forgets every remembered login of `subject`; their cookies stop resolving.
    pub async fn revoke_login_sessions(&self, subject: &str) -> Result<(), FlowError> {
        self.store.delete_login_sessions_of(subject).await?;
        Ok(())
    }
}
