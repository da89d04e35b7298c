//! What a code, access token or refresh token row carries (encrypted at rest): the grant it
//! belongs to and the claims to put in introspection, userinfo and ID tokens.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Code,
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Code => "code",
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct TokenSession {
    pub client_id: String,
    /// The real subject (the client id for client_credentials).
    pub subject: String,
    /// The pairwise identifier the client sees, for pairwise clients (introspection).
    pub obfuscated_subject: String,
    pub requested_scope: Vec<String>,
    pub granted_scope: Vec<String>,
    pub requested_audience: Vec<String>,
    pub granted_audience: Vec<String>,
    /// Unix time of the original authorization (introspection `nbf`, refresh keeps it).
    pub requested_at: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Consent `session.access_token` claims (introspection `ext`).
    pub ext: Map<String, Value>,
    /// ID-token claims recorded at consent time (userinfo and new ID tokens on refresh).
    pub id_token: Option<IdTokenClaims>,
    /// Authorization-code only: binding of the code to its request.
    pub redirect_uri: String,
    pub code_challenge: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct IdTokenClaims {
    /// `sub` as the client sees it (forced subject identifier when set).
    pub subject: String,
    pub auth_time: i64,
    pub requested_at: i64,
    pub nonce: String,
    pub acr: String,
    pub sid: String,
    pub extra: Map<String, Value>,
}
