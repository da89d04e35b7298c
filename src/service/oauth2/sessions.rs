//! Login and consent session management for the admin API (consent/handler.go,
//! persister_consent.go): list a subject's consents, revoke them with their tokens, forget a
//! subject's remembered logins.
use super::flows::FlowError;
use super::OAuth2;
use crate::domain::flow::Flow;

impl OAuth2 {
    /// Handled, successful, non-skipped consents of `subject`, newest first; remembered ones
    /// whose `remember_for` ran out are dropped (Hydra lists unremembered ones too).
    pub async fn consent_sessions(&self, subject: &str) -> Result<Vec<Flow>, FlowError> {
        let now = self.now();
        Ok(self
            .store
            .consent_flows_of(subject, None)
            .await?
            .into_iter()
            .filter(|f| {
                f.state >= Some(crate::domain::flow::FlowState::ConsentHandled)
                    && !f.consent_skip
                    && matches!(&f.consent, Some(c) if c.denial.is_none())
            })
            .filter(|f| {
                let expires = f.consent_expires_at();
                expires == 0 || expires >= now
            })
            .collect())
    }

    /// Revokes the consents of `subject` (for one client, or all) and every token they granted.
    /// Nothing to revoke is a 404, as in Hydra.
    pub async fn revoke_consent_sessions(
        &self,
        subject: &str,
        client_id: Option<&str>,
    ) -> Result<(), FlowError> {
        let flows = self.store.consent_flows_of(subject, client_id).await?;
        if flows.is_empty() {
            return Err(FlowError::NotFound);
        }
        for f in &flows {
            self.store.delete_flow_and_grant(f).await?;
            self.cache.revoke_request(&f.consent_challenge);
        }
        Ok(())
    }

    /// Forgets every remembered login of `subject`; their cookies stop resolving.
    pub async fn revoke_login_sessions(&self, subject: &str) -> Result<(), FlowError> {
        self.store.delete_login_sessions_of(subject).await?;
        Ok(())
    }
}
