//! Admin login/consent API (consent/handler.go): read a request, accept or reject it. The
//! answers are stored on the flow; the browser then returns with the verifier.
use super::OAuth2;
use crate::domain::client::Client;
use crate::domain::flow::{ConsentResult, Denial, Flow, FlowState, LoginResult};
use crate::oauth2::redirect::BaseUrl;
use crate::service::clients::ClientsError;
use crate::store::StoreError;
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("not found")]
    NotFound,
    /// The verifier was used or the request was answered already.
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("reading the flow's client failed")]
    Client(#[source] ClientsError),
    #[error("the flow's stored request URL does not parse")]
    RequestUrl(#[source] url::ParseError),
}

/// `PUT …/login/accept` as a domain value.
#[derive(Debug, Default, Clone)]
pub struct AcceptLogin {
    pub subject: String,
    pub remember: bool,
    pub remember_for: i64,
    pub acr: String,
    pub context: Value,
    pub force_subject_identifier: String,
}

/// `PUT …/consent/accept` as a domain value.
#[derive(Debug, Default, Clone)]
pub struct AcceptConsent {
    pub grant_scope: Vec<String>,
    pub grant_access_token_audience: Vec<String>,
    pub access_token: Map<String, Value>,
    pub id_token: Map<String, Value>,
    pub remember: bool,
    pub remember_for: i64,
}

impl OAuth2 {
    /// The flow's client; a client deleted meanwhile is "not found", a failed read is not.
    pub(super) async fn client_of(&self, client_id: &str) -> Result<Arc<Client>, FlowError> {
        match self.clients.get_shared(client_id).await {
            Ok(c) => Ok(c),
            Err(ClientsError::NotFound) => Err(FlowError::NotFound),
            Err(e) => Err(FlowError::Client(e)),
        }
    }

    /// The authorization URL the browser returns to, with the verifier added.
    fn redirect_with(flow: &Flow, key: &str, value: &str) -> Result<String, FlowError> {
        let base = BaseUrl::parse(&flow.request_url).map_err(FlowError::RequestUrl)?;
        Ok(base.with_query(&[(key.to_string(), value.to_string())]))
    }

    pub async fn get_login_request(
        &self,
        challenge: &str,
    ) -> Result<(Flow, Arc<Client>), FlowError> {
        let flow = self
            .store
            .flow_by_login_challenge(challenge)
            .await?
            .ok_or(FlowError::NotFound)?;
        if flow.state.unwrap_or(FlowState::ConsentUsed) >= FlowState::LoginUsed {
            return Err(FlowError::Conflict(
                "The login request has been used already.".into(),
            ));
        }
        let client = self.client_of(&flow.client_id).await?;
        Ok((flow, client))
    }

    /// Stores the login app's answer, built from the flow as read (one read, one conditional
    /// update).
    async fn answer_login(
        &self,
        challenge: &str,
        build: impl FnOnce(&Flow) -> Result<LoginResult, FlowError>,
    ) -> Result<String, FlowError> {
        let mut flow = self
            .store
            .flow_by_login_challenge(challenge)
            .await?
            .ok_or(FlowError::NotFound)?;
        if flow.state != Some(FlowState::LoginUnhandled) {
            return Err(FlowError::Conflict(
                "The login request has been answered already.".into(),
            ));
        }
        flow.login = Some(build(&flow)?);
        if !self
            .store
            .transition_flow(
                &flow,
                (FlowState::LoginUnhandled, FlowState::LoginUnhandled),
                FlowState::LoginHandled,
            )
            .await?
        {
            return Err(FlowError::Conflict(
                "The login request has been answered already.".into(),
            ));
        }
        Self::redirect_with(&flow, "login_verifier", &flow.login_verifier)
    }

    pub async fn accept_login(&self, challenge: &str, a: AcceptLogin) -> Result<String, FlowError> {
        if a.subject.is_empty() {
            return Err(FlowError::BadRequest(
                "Field 'subject' must not be empty.".into(),
            ));
        }
        let now = self.now();
        self.answer_login(challenge, |flow| {
            let (remember, authenticated_at) = if flow.login_skip {
                if a.subject != flow.subject {
                    return Err(FlowError::BadRequest(format!(
                        "Field 'subject' does not match subject from previous authentication: expected '{}', got '{}'.",
                        flow.subject, a.subject
                    )));
                }
                (true, flow.authenticated_at)
            } else {
                (a.remember, now)
            };
            let context = if a.context.is_null() {
                Value::Object(Map::new())
            } else {
                a.context
            };
            Ok(LoginResult {
                subject: a.subject,
                remember,
                remember_for: a.remember_for,
                acr: a.acr,
                context,
                force_subject_identifier: a.force_subject_identifier,
                authenticated_at,
                denial: None,
            })
        })
        .await
    }

    pub async fn reject_login(&self, challenge: &str, d: Denial) -> Result<String, FlowError> {
        self.answer_login(challenge, |_| {
            Ok(LoginResult {
                denial: Some(with_defaults(d, "login request denied")),
                ..LoginResult::default()
            })
        })
        .await
    }

    pub async fn get_consent_request(
        &self,
        challenge: &str,
    ) -> Result<(Flow, Arc<Client>), FlowError> {
        let flow = self
            .store
            .flow_by_consent_challenge(challenge)
            .await?
            .ok_or(FlowError::NotFound)?;
        if flow.state == Some(FlowState::ConsentUsed) {
            return Err(FlowError::Conflict(
                "The consent request has been used already.".into(),
            ));
        }
        let client = self.client_of(&flow.client_id).await?;
        Ok((flow, client))
    }

    /// Consent answers may be replaced until the verifier is spent (Hydra upserts them).
    async fn answer_consent(
        &self,
        challenge: &str,
        result: ConsentResult,
    ) -> Result<String, FlowError> {
        let mut flow = self
            .store
            .flow_by_consent_challenge(challenge)
            .await?
            .ok_or(FlowError::NotFound)?;
        let conflict = || FlowError::Conflict("The consent request has been used already.".into());
        if flow.state == Some(FlowState::ConsentUsed) {
            return Err(conflict());
        }
        flow.consent = Some(result);
        if !self
            .store
            .transition_flow(
                &flow,
                (FlowState::ConsentUnhandled, FlowState::ConsentHandled),
                FlowState::ConsentHandled,
            )
            .await?
        {
            return Err(conflict());
        }
        Self::redirect_with(&flow, "consent_verifier", &flow.consent_verifier)
    }

    pub async fn accept_consent(
        &self,
        challenge: &str,
        a: AcceptConsent,
    ) -> Result<String, FlowError> {
        self.answer_consent(
            challenge,
            ConsentResult {
                grant_scope: a.grant_scope,
                grant_access_token_audience: a.grant_access_token_audience,
                access_token_claims: a.access_token,
                id_token_claims: a.id_token,
                remember: a.remember,
                remember_for: a.remember_for,
                handled_at: self.now(),
                denial: None,
            },
        )
        .await
    }

    pub async fn reject_consent(&self, challenge: &str, d: Denial) -> Result<String, FlowError> {
        self.answer_consent(
            challenge,
            ConsentResult {
                handled_at: self.now(),
                denial: Some(with_defaults(d, "consent request denied")),
                ..ConsentResult::default()
            },
        )
        .await
    }
}

fn with_defaults(mut d: Denial, default_error: &str) -> Denial {
    if d.error.is_empty() {
        d.error = default_error.to_string();
    }
    if d.status_code == 0 {
        d.status_code = 400;
    }
    d
}
