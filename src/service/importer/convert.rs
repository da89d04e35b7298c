//! Hydra v1.9.2 rows to Portcullis models, without I/O: pipe-joined lists (ory/x sqlxx
//! `StringSlicePipeDelimiter`), the fosite session JSON that Hydra stores with every token
//! (oauth2/session.go wrapping fosite handler/openid `DefaultSession`), and handled consents
//! (consent/types.go).
use crate::domain::client::Client;
use crate::domain::flow::{ConsentResult, Flow, LoginResult, OidcContext};
use crate::domain::token::{IdTokenClaims, TokenKind, TokenSession};
use crate::store::hydra::{HydraClient, HydraConsent, HydraTokenRow};
use crate::store::StoredClient;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Expiry written for refresh tokens Hydra issued without one (`ttl.refresh_token: -1`:
/// fosite strategy_hmacsha.go treats a zero expiry as unlimited): 9999-12-31T23:59:59Z.
pub const NEVER: i64 = 253_402_300_799;

/// ory/x stringsx.Splitx: the empty string is the empty list.
pub fn split_pipe(s: &str) -> Vec<String> {
    if s.is_empty() {
        Vec::new()
    } else {
        s.split('|').map(str::to_string).collect()
    }
}

fn split_opt(s: &Option<String>) -> Vec<String> {
    split_pipe(s.as_deref().unwrap_or(""))
}

/// A JSON object column; empty, `null` or malformed values become `{}`.
fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Hydra's client row as Portcullis stores it. The bcrypt hash in `client_secret` is kept as
/// it is: Portcullis verifies `$2…` hashes, so the old secrets keep working.
pub fn client(h: &HydraClient) -> Result<StoredClient, String> {
    let jwks = {
        let m = object(&h.jwks);
        // A set without keys is stored by Hydra as `{"keys":null}` or `{}`: Portcullis' `{}`.
        match m.get("keys") {
            Some(Value::Array(k)) if !k.is_empty() => Value::Object(m),
            _ => Value::Object(Map::new()),
        }
    };
    let c = Client {
        client_id: h.id.clone(),
        client_name: h.client_name.clone(),
        client_secret: None,
        redirect_uris: split_pipe(&h.redirect_uris),
        grant_types: split_pipe(&h.grant_types),
        response_types: split_pipe(&h.response_types),
        scope: h.scope.clone(),
        audience: split_pipe(&h.audience),
        owner: h.owner.clone(),
        policy_uri: h.policy_uri.clone(),
        allowed_cors_origins: split_pipe(&h.allowed_cors_origins),
        tos_uri: h.tos_uri.clone(),
        client_uri: h.client_uri.clone(),
        logo_uri: h.logo_uri.clone(),
        contacts: split_pipe(&h.contacts),
        client_secret_expires_at: i64::from(h.client_secret_expires_at),
        subject_type: h.subject_type.clone(),
        sector_identifier_uri: h.sector_identifier_uri.clone(),
        jwks,
        jwks_uri: h.jwks_uri.clone(),
        token_endpoint_auth_method: h.token_endpoint_auth_method.clone(),
        token_endpoint_auth_signing_alg: h.token_endpoint_auth_signing_alg.clone(),
        request_uris: split_pipe(&h.request_uris),
        request_object_signing_alg: h.request_object_signing_alg.clone(),
        userinfo_signed_response_alg: h.userinfo_signed_response_alg.clone(),
        created_at: String::new(),
        updated_at: String::new(),
        frontchannel_logout_uri: h.frontchannel_logout_uri.clone(),
        frontchannel_logout_session_required: h.frontchannel_logout_session_required,
        post_logout_redirect_uris: split_pipe(&h.post_logout_redirect_uris),
        backchannel_logout_uri: h.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: h.backchannel_logout_session_required,
        metadata: Value::Object(object(&h.metadata)),
    };
    Ok(StoredClient {
        id: h.id.clone(),
        secret_hash: h.client_secret.clone(),
        data: serde_json::to_string(&c).map_err(|e| e.to_string())?,
        created_at: h.created_at,
        updated_at: h.updated_at,
    })
}

/// Hydra's `oauth2.Session` as encoding/json writes it (no tags on the fosite structs, so the
/// Go field names are the JSON names).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HydraSession {
    #[serde(rename = "idToken")]
    pub id_token: Option<DefaultSession>,
    pub extra: Option<Map<String, Value>>,
    #[serde(rename = "ClientID")]
    pub client_id: String,
    #[serde(rename = "ConsentChallenge")]
    pub consent_challenge: String,
}

/// fosite handler/openid `DefaultSession`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DefaultSession {
    #[serde(rename = "Claims")]
    pub claims: Option<IdClaims>,
    #[serde(rename = "ExpiresAt")]
    pub expires_at: Option<HashMap<String, String>>,
    #[serde(rename = "Subject")]
    pub subject: String,
}

/// fosite token/jwt `IDTokenClaims` (the fields the importer needs).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IdClaims {
    #[serde(rename = "Subject")]
    pub subject: String,
    #[serde(rename = "Nonce")]
    pub nonce: String,
    #[serde(rename = "RequestedAt")]
    pub requested_at: String,
    #[serde(rename = "AuthTime")]
    pub auth_time: String,
    #[serde(rename = "AuthenticationContextClassReference")]
    pub acr: String,
    #[serde(rename = "Extra")]
    pub extra: Option<Map<String, Value>>,
}

/// A Go `time.Time` in JSON (RFC 3339, nanoseconds); Go's zero time is "unset".
pub fn go_time(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    (t.year() > 1).then(|| t.unix_timestamp())
}

/// Why a row is not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    Expired,
    Unreadable(String),
    PlainPkce,
}

impl Skip {
    pub fn reason(&self) -> String {
        match self {
            Skip::Expired => "expired".into(),
            Skip::Unreadable(_) => "session data unreadable".into(),
            Skip::PlainPkce => "PKCE method `plain` (Portcullis accepts S256 only)".into(),
        }
    }
}

/// Lifetimes that fill in expiries a session does not carry (fosite strategy_hmacsha.go uses
/// `requested_at + lifespan` then).
#[derive(Debug, Clone, Copy)]
pub struct Lifespans {
    pub access: i64,
    pub code: i64,
}

fn form_value(form: &str, name: &str) -> String {
    url::form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The Portcullis session of a Hydra token row whose session JSON is `json`, and its expiry.
/// Tokens that expired are refused: nothing dead comes back to life.
pub fn token_session(
    row: &HydraTokenRow,
    json: &[u8],
    kind: TokenKind,
    life: Lifespans,
    now: i64,
) -> Result<TokenSession, Skip> {
    let s: HydraSession =
        serde_json::from_slice(json).map_err(|e| Skip::Unreadable(e.to_string()))?;
    let d = s.id_token.unwrap_or_default();
    let expires_at = expiry(row, &d, kind, life);
    if expires_at < now {
        return Err(Skip::Expired);
    }
    let (redirect_uri, code_challenge) = code_request(row, kind)?;
    let subject = if d.subject.is_empty() {
        row.subject.clone()
    } else {
        d.subject.clone()
    };
    let claims = d.claims.unwrap_or_default();
    // Hydra's introspection (oauth2/handler.go): the ID-token subject differs from the session
    // subject for pairwise clients and forced subject identifiers.
    let obfuscated_subject = if !claims.subject.is_empty() && claims.subject != subject {
        claims.subject.clone()
    } else {
        String::new()
    };
    let via_consent = !s.consent_challenge.is_empty() || row.challenge_id.is_some();
    let id_token = via_consent.then(|| id_token_claims(claims, &subject, row.requested_at));
    Ok(TokenSession {
        client_id: row.client_id.clone(),
        subject,
        obfuscated_subject,
        requested_scope: split_pipe(&row.scope),
        granted_scope: split_pipe(&row.granted_scope),
        requested_audience: split_opt(&row.requested_audience),
        granted_audience: split_opt(&row.granted_audience),
        // Hydra's introspection answers iat and nbf with the row's requested_at.
        requested_at: row.requested_at,
        issued_at: row.requested_at,
        expires_at,
        ext: s.extra.unwrap_or_default(),
        id_token,
        redirect_uri,
        code_challenge,
    })
}

/// The expiry the session stored for `kind`, or the row's age plus the configured lifespan
/// (refresh tokens without one never expire).
fn expiry(row: &HydraTokenRow, d: &DefaultSession, kind: TokenKind, life: Lifespans) -> i64 {
    let expiry_key = match kind {
        TokenKind::Access => "access_token",
        TokenKind::Refresh => "refresh_token",
        TokenKind::Code => "authorize_code",
    };
    let stored = d
        .expires_at
        .as_ref()
        .and_then(|m| m.get(expiry_key))
        .and_then(|t| go_time(t));
    match (stored, kind) {
        (Some(t), _) => t,
        (None, TokenKind::Access) => row.requested_at + life.access,
        (None, TokenKind::Code) => row.requested_at + life.code,
        (None, TokenKind::Refresh) => NEVER,
    }
}

/// A code's redirect URI and S256 code challenge (empty for other kinds); codes with a
/// `plain` challenge are skipped.
fn code_request(row: &HydraTokenRow, kind: TokenKind) -> Result<(String, String), Skip> {
    if kind != TokenKind::Code {
        return Ok((String::new(), String::new()));
    }
    let redirect_uri = form_value(&row.form_data, "redirect_uri");
    let mut code_challenge = String::new();
    if let Some(pkce) = &row.pkce_form {
        code_challenge = form_value(pkce, "code_challenge");
        // fosite handler/pkce: an absent method means `plain`.
        if !code_challenge.is_empty() && form_value(pkce, "code_challenge_method") != "S256" {
            return Err(Skip::PlainPkce);
        }
    }
    Ok((redirect_uri, code_challenge))
}

/// The ID-token claims of a grant that went through consent.
fn id_token_claims(claims: IdClaims, subject: &str, requested_at: i64) -> IdTokenClaims {
    let mut extra = claims.extra.unwrap_or_default();
    let sid = match extra.remove("sid") {
        Some(Value::String(v)) => v,
        _ => String::new(),
    };
    IdTokenClaims {
        subject: if claims.subject.is_empty() {
            subject.to_string()
        } else {
            claims.subject.clone()
        },
        auth_time: go_time(&claims.auth_time).unwrap_or(0),
        requested_at: go_time(&claims.requested_at).unwrap_or(requested_at),
        nonce: claims.nonce.clone(),
        acr: claims.acr.clone(),
        sid,
        extra,
    }
}

/// A remembered consent as a Portcullis flow in its final state, or `Expired` once its
/// `remember_for` has run out (persister_consent.go resolveHandledConsentRequests).
pub fn consent_flow(
    h: &HydraConsent,
    now: i64,
    fresh_id: impl Fn() -> String,
) -> Result<Flow, Skip> {
    if h.remember_for > 0 && h.requested_at + i64::from(h.remember_for) < now {
        return Err(Skip::Expired);
    }
    let oidc_context: OidcContext = serde_json::from_str(&h.oidc_context).unwrap_or_default();
    let context = match serde_json::from_str::<Value>(&h.context) {
        Ok(v @ Value::Object(_)) => v,
        _ => Value::Object(Map::new()),
    };
    let authenticated_at = h.authenticated_at.unwrap_or(0);
    let forced = h.forced_subject_identifier.clone().unwrap_or_default();
    Ok(Flow {
        // The login request may be gone in Hydra (ON DELETE SET NULL): the flow then gets a
        // fresh, never-issued challenge and verifier, which nobody can present.
        login_challenge: h.login_challenge.clone().unwrap_or_else(&fresh_id),
        login_verifier: h.login_verifier.clone().unwrap_or_else(&fresh_id),
        login_csrf: h.login_csrf.clone().unwrap_or_default(),
        client_id: h.client_id.clone(),
        request_url: h.request_url.clone(),
        requested_scope: split_pipe(&h.requested_scope),
        requested_audience: split_opt(&h.requested_at_audience),
        login_skip: false,
        subject: h.subject.clone(),
        oidc_context,
        login_session_id: h.login_session_id.clone().unwrap_or_default(),
        requested_at: h.requested_at,
        authenticated_at,
        login: Some(LoginResult {
            subject: h.subject.clone(),
            remember: h.login_remember.unwrap_or(false),
            remember_for: i64::from(h.login_remember_for.unwrap_or(0)),
            acr: h.acr.clone().unwrap_or_default(),
            context,
            force_subject_identifier: forced,
            authenticated_at,
            denial: None,
        }),
        consent_challenge: h.challenge.clone(),
        consent_verifier: h.verifier.clone(),
        consent_csrf: h.csrf.clone(),
        consent_skip: false,
        consent: Some(ConsentResult {
            grant_scope: split_pipe(&h.granted_scope),
            grant_access_token_audience: split_opt(&h.granted_at_audience),
            access_token_claims: object(&h.session_access_token),
            id_token_claims: object(&h.session_id_token),
            remember: true,
            remember_for: i64::from(h.remember_for),
            handled_at: h.handled_at.unwrap_or(h.requested_at),
            denial: None,
        }),
        state: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_lists_and_go_times() {
        assert!(split_pipe("").is_empty());
        assert_eq!(split_pipe("a|b"), vec!["a", "b"]);
        assert_eq!(go_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(
            go_time("2021-01-02T03:04:05.123456789Z"),
            Some(1_609_556_645)
        );
        assert_eq!(go_time("2021-01-02T04:04:05+01:00"), Some(1_609_556_645));
    }

    fn row() -> HydraTokenRow {
        HydraTokenRow {
            signature: "sig".into(),
            request_id: "req".into(),
            requested_at: 1_000,
            client_id: "c".into(),
            scope: "openid|offline".into(),
            granted_scope: "openid|offline".into(),
            subject: "alice".into(),
            active: true,
            challenge_id: Some("req".into()),
            ..HydraTokenRow::default()
        }
    }

    const SESSION: &str = r#"{"idToken":{"Claims":{"Subject":"pairwise-alice","Nonce":"n","RequestedAt":"1970-01-01T00:15:00Z","AuthTime":"1970-01-01T00:14:00Z","AuthenticationContextClassReference":"acr1","Extra":{"sid":"s1","email":"a@x"}},"Headers":{"Extra":{"kid":"public:k"}},"ExpiresAt":{"access_token":"1970-01-01T01:00:00Z"},"Username":"","Subject":"alice"},"extra":{"tenant":"t1"},"KID":"","ClientID":"c","ConsentChallenge":"req"}"#;

    #[test]
    fn session_json_maps_to_token_session() {
        let life = Lifespans {
            access: 60,
            code: 60,
        };
        let s = token_session(&row(), SESSION.as_bytes(), TokenKind::Access, life, 2_000).unwrap();
        assert_eq!(s.subject, "alice");
        assert_eq!(s.obfuscated_subject, "pairwise-alice");
        assert_eq!(s.expires_at, 3_600);
        assert_eq!(s.ext["tenant"], "t1");
        let id = s.id_token.unwrap();
        assert_eq!(
            (id.sid.as_str(), id.auth_time, id.requested_at),
            ("s1", 840, 900)
        );
        assert_eq!(id.extra.len(), 1);
        // Nothing expired is brought back: the stored expiry, then requested_at + lifespan.
        assert_eq!(
            token_session(&row(), SESSION.as_bytes(), TokenKind::Access, life, 3_601),
            Err(Skip::Expired)
        );
        assert_eq!(
            token_session(&row(), SESSION.as_bytes(), TokenKind::Code, life, 1_061),
            Err(Skip::Expired)
        );
        let never =
            token_session(&row(), SESSION.as_bytes(), TokenKind::Refresh, life, 9_999).unwrap();
        assert_eq!(never.expires_at, NEVER);
    }
}
