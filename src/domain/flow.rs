//! One login/consent flow (consent/types.go): what was requested, how the login and consent apps
//! answered, and the state it has reached. States only move forward; the store enforces that
//! with conditional updates so a verifier or challenge can be spent once.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i64)]
pub enum FlowState {
    /// Login requested; the login app has not answered.
    LoginUnhandled = 1,
    /// Login accepted or rejected; the browser has not come back with the verifier.
    LoginHandled = 2,
    /// Login verifier spent.
    LoginUsed = 3,
    /// Consent requested; the consent app has not answered.
    ConsentUnhandled = 4,
    /// Consent accepted or rejected (may be answered again until the verifier is spent).
    ConsentHandled = 5,
    /// Consent verifier spent.
    ConsentUsed = 6,
}

impl FlowState {
    pub fn from_i64(v: i64) -> FlowState {
        match v {
            1 => FlowState::LoginUnhandled,
            2 => FlowState::LoginHandled,
            3 => FlowState::LoginUsed,
            4 => FlowState::ConsentUnhandled,
            5 => FlowState::ConsentHandled,
            _ => FlowState::ConsentUsed,
        }
    }
}

/// `oidc_context` of login and consent requests; empty fields are omitted, lists never null.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct OidcContext {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display: String,
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub id_token_hint_claims: Map<String, Value>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub login_hint: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ui_locales: Vec<String>,
}

/// A denial from `PUT …/reject` (rejectRequest), replayed to the client as an OAuth error.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Denial {
    pub error: String,
    pub error_description: String,
    pub error_hint: String,
    pub error_debug: String,
    pub status_code: u16,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LoginResult {
    pub subject: String,
    pub remember: bool,
    pub remember_for: i64,
    pub acr: String,
    pub context: Value,
    pub force_subject_identifier: String,
    pub authenticated_at: i64,
    pub denial: Option<Denial>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ConsentResult {
    pub grant_scope: Vec<String>,
    pub grant_access_token_audience: Vec<String>,
    pub access_token_claims: Map<String, Value>,
    pub id_token_claims: Map<String, Value>,
    pub remember: bool,
    pub remember_for: i64,
    pub handled_at: i64,
    pub denial: Option<Denial>,
}

/// Everything the flow row stores in its `data` column.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Flow {
    pub login_challenge: String,
    pub login_verifier: String,
    pub login_csrf: String,
    pub client_id: String,
    pub request_url: String,
    pub requested_scope: Vec<String>,
    pub requested_audience: Vec<String>,
    /// Login skipped because a remembered session exists.
    pub login_skip: bool,
    pub subject: String,
    pub oidc_context: OidcContext,
    pub login_session_id: String,
    pub requested_at: i64,
    pub authenticated_at: i64,
    pub login: Option<LoginResult>,
    pub consent_challenge: String,
    pub consent_verifier: String,
    pub consent_csrf: String,
    pub consent_skip: bool,
    pub consent: Option<ConsentResult>,
    #[serde(skip)]
    pub state: Option<FlowState>,
}

impl Flow {
    /// True for a consent that a later flow may reuse (remembered, not skipped, not denied).
    pub fn consent_rememberable(&self) -> bool {
        matches!(&self.consent, Some(c) if c.remember && c.denial.is_none()) && !self.consent_skip
    }

    /// Unix time after which the remembered consent no longer applies; 0 = never.
    pub fn consent_expires_at(&self) -> i64 {
        match &self.consent {
            Some(c) if c.remember_for > 0 => self.requested_at + c.remember_for,
            _ => 0,
        }
    }
}

/// A remembered login (`oauth2_authentication_session`'s `sid`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoginSession {
    pub id: String,
    pub subject: String,
    pub authenticated_at: i64,
    pub remember: bool,
    /// Unix time after which the session no longer skips login (`remember_for`, bounded by
    /// `ttl.authentication_session`).
    pub expires_at: i64,
}

impl LoginSession {
    /// Whether the remembered session may still skip login at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(i64)]
pub enum LogoutState {
    Unhandled = 1,
    Accepted = 2,
    Rejected = 3,
    Used = 4,
}

impl LogoutState {
    pub fn from_i64(v: i64) -> LogoutState {
        match v {
            1 => LogoutState::Unhandled,
            2 => LogoutState::Accepted,
            3 => LogoutState::Rejected,
            _ => LogoutState::Used,
        }
    }
}

/// A logout request (consent/types.go LogoutRequest).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct LogoutRequest {
    pub challenge: String,
    pub verifier: String,
    pub subject: String,
    pub sid: String,
    pub client_id: String,
    pub request_url: String,
    /// Where the browser goes once logged out.
    pub redirect_to: String,
    pub rp_initiated: bool,
    #[serde(skip)]
    pub state: Option<LogoutState>,
}
