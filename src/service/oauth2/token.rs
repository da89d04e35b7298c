//! `POST /oauth2/token` (fosite access_request_handler.go and handler/oauth2, handler/openid,
//! handler/pkce): client authentication, then one of the grants authorization_code,
//! refresh_token, client_credentials.
use super::types::Params;
use super::{client_scopes, internal, ClientCredentials, Fault, OAuth2};
use crate::domain::client::Client;
use crate::domain::protocol::GrantType;
use crate::domain::token::{TokenKind, TokenSession};
use crate::oauth2::{has_offline, pkce, scope, split_spaces, OAuthError};
use crate::store::Exchange;
use serde::Serialize;
use serde_json::{json, Value};

/// oauth2TokenResponse.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
    pub token_type: &'static str,
}

const UNKNOWN_CODE: &str = "The authorization code is unknown or malformed.";
const UNKNOWN_REFRESH: &str = "The refresh token is unknown, malformed or revoked.";

/// Claims ID tokens may not take from consent `session.id_token` (fosite claims_id_token.go).
const RESERVED: [&str; 13] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "jti",
    "auth_time",
    "rat",
    "nonce",
    "at_hash",
    "c_hash",
    "acr",
    "sid",
];

/// The grants the token endpoint serves; fosite answers others with invalid_request (no
/// handler took the request).
fn token_grant(raw: &str) -> Result<GrantType, OAuthError> {
    if raw.is_empty() {
        return Err(OAuthError::invalid_request().hint("Request parameter 'grant_type' is missing"));
    }
    match raw.parse() {
        Ok(
            g @ (GrantType::AuthorizationCode
            | GrantType::RefreshToken
            | GrantType::ClientCredentials),
        ) => Ok(g),
        _ => Err(OAuthError::invalid_request().hint(format!(
            "The grant type '{raw}' is not supported by this server."
        ))),
    }
}

impl OAuth2 {
    pub async fn token(
        &self,
        form: &Params,
        creds: &ClientCredentials,
    ) -> Result<TokenResponse, OAuthError> {
        let grant = token_grant(form.get("grant_type"))?;
        let client = self.authenticate_client(creds).await?;
        if !client.allows_grant(grant) {
            return Err(OAuthError::unauthorized_client().hint(format!(
                "The OAuth 2.0 Client is not allowed to use authorization grant '{grant}'."
            )));
        }
        let issued = match grant {
            GrantType::AuthorizationCode => self.grant_code(&client, form).await,
            GrantType::RefreshToken => self.grant_refresh(&client, form).await,
            GrantType::ClientCredentials | GrantType::Implicit => {
                self.grant_client_credentials(&client, form).await
            }
        };
        if issued.is_ok() {
            self.metrics
                .tokens_issued
                .with_label_values(&[grant.as_str()])
                .inc();
        }
        issued
    }

    async fn grant_code(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let code = form.get("code");
        let invalid = || OAuthError::invalid_grant();
        let (row, session) = self
            .lookup(code, TokenKind::Code)
            .await?
            .ok_or_else(|| invalid().hint(UNKNOWN_CODE))?;
        if !row.active {
            self.revoke_grant(&row.request_id).await?;
            return Err(invalid().hint("The authorization code has already been used; the tokens issued for it are revoked."));
        }
        if row.expires_at < self.now() {
            return Err(invalid().hint("The authorization code has expired."));
        }
        if row.client_id != client.client_id {
            return Err(invalid().hint("The OAuth 2.0 Client ID from this request does not match the one from the authorize request."));
        }
        if !session.redirect_uri.is_empty() && form.get("redirect_uri") != session.redirect_uri {
            return Err(invalid().hint("The 'redirect_uri' from this request does not match the one from the authorize request."));
        }
        pkce::verify(&session.code_challenge, form.get("code_verifier"))?;
        if session.code_challenge.is_empty() && !form.get("code_verifier").is_empty() {
            return Err(invalid().hint("A code_verifier was sent, but the authorization request carried no code_challenge."));
        }
        let (response, rows) = self.issue(client, &row.request_id, session).await?;
        match self
            .store
            .exchange(
                (&row.signature, TokenKind::Code),
                &row.request_id,
                None,
                &rows,
            )
            .await?
        {
            Exchange::Exchanged => Ok(response),
            // Lost a race against another redemption of the same code: treat it as reuse.
            Exchange::AlreadySpent => {
                self.revoke_grant(&row.request_id).await?;
                Err(invalid().hint("The authorization code has already been used; the tokens issued for it are revoked."))
            }
            // The consent was revoked: the code is as dead as if it had been deleted with it.
            Exchange::GrantRevoked => Err(invalid().hint(UNKNOWN_CODE)),
        }
    }

    async fn grant_refresh(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        let invalid = || OAuthError::invalid_grant();
        let (row, session) = self
            .lookup(form.get("refresh_token"), TokenKind::Refresh)
            .await?
            .ok_or_else(|| invalid().hint(UNKNOWN_REFRESH))?;
        if !row.active {
            // A rotated-out refresh token came back: someone holds a copy. Revoke the family.
            self.revoke_grant(&row.request_id).await?;
            return Err(invalid().hint(
                "The refresh token has already been used; every token of this grant is revoked.",
            ));
        }
        if row.expires_at < self.now() {
            return Err(invalid().hint("The refresh token has expired."));
        }
        if row.client_id != client.client_id {
            return Err(invalid().hint("The OAuth 2.0 Client ID from this request does not match the ID during the initial token issuance."));
        }
        if !has_offline(&session.granted_scope) {
            return Err(OAuthError::scope_not_granted()
                .hint("The OAuth 2.0 Client was not granted scope 'offline' and may thus not perform the 'refresh_token' authorization grant."));
        }
        let allowed = client_scopes(client);
        if let Some(s) = self
            .settings
            .scope_strategy
            .first_denied(&allowed, &session.granted_scope)
        {
            return Err(OAuthError::invalid_scope().hint(format!(
                "The OAuth 2.0 Client is not allowed to request scope '{s}'."
            )));
        }
        if let Some(a) = scope::first_denied_audience(&client.audience, &session.granted_audience) {
            return Err(OAuthError::invalid_request().hint(format!(
                "Requested audience '{a}' has not been whitelisted by the OAuth 2.0 Client."
            )));
        }
        let (response, rows) = self.issue(client, &row.request_id, session).await?;
        match self
            .store
            .exchange(
                (&row.signature, TokenKind::Refresh),
                &row.request_id,
                Some(&row.request_id),
                &rows,
            )
            .await?
        {
            Exchange::Exchanged => {}
            Exchange::AlreadySpent => {
                self.revoke_grant(&row.request_id).await?;
                return Err(invalid().hint(
                    "The refresh token has already been used; every token of this grant is revoked.",
                ));
            }
            Exchange::GrantRevoked => {
                return Err(invalid().hint(UNKNOWN_REFRESH));
            }
        }
        // The grant's previous access tokens were deleted by the rotation.
        self.cache.revoke_request(&row.request_id);
        Ok(response)
    }

    async fn grant_client_credentials(
        &self,
        client: &Client,
        form: &Params,
    ) -> Result<TokenResponse, OAuthError> {
        if client.is_public() {
            return Err(OAuthError::invalid_grant().hint(
                "The client is public and thus not allowed to use grant type client_credentials.",
            ));
        }
        let allowed = client_scopes(client);
        let mut scopes = split_spaces(form.get("scope"));
        if let Some(s) = self.settings.scope_strategy.first_denied(&allowed, &scopes) {
            return Err(OAuthError::invalid_scope().hint(format!(
                "The OAuth 2.0 Client is not allowed to request scope '{s}'."
            )));
        }
        if scopes.is_empty() && self.settings.tokens.cc_default_scope {
            scopes = allowed;
        }
        let audience: Vec<String> = form.all("audience").flat_map(split_spaces).collect();
        if let Some(a) = scope::first_denied_audience(&client.audience, &audience) {
            return Err(OAuthError::invalid_request().hint(format!(
                "Requested audience '{a}' has not been whitelisted by the OAuth 2.0 Client."
            )));
        }
        let now = self.now();
        let session = TokenSession {
            client_id: client.client_id.clone(),
            subject: client.client_id.clone(),
            requested_scope: scopes.clone(),
            granted_scope: scopes,
            requested_audience: audience.clone(),
            granted_audience: audience,
            requested_at: now,
            issued_at: now,
            expires_at: now + self.settings.ttl_access,
            ..TokenSession::default()
        };
        let request_id = crate::crypto::uuid_v4().to_string();
        let (access, row) = self.mint_access(&request_id, &session).await?;
        self.write_token(row).await?;
        Ok(TokenResponse {
            access_token: access,
            expires_in: self.settings.ttl_access,
            id_token: None,
            refresh_token: None,
            scope: session.granted_scope.join(" "),
            token_type: "bearer",
        })
    }

    /// Mints the access token, the refresh token (offline granted and the client may refresh)
    /// and the ID token (openid granted) of one grant.
    async fn issue(
        &self,
        client: &Client,
        request_id: &str,
        mut session: TokenSession,
    ) -> Result<(TokenResponse, Vec<crate::store::TokenRow>), OAuthError> {
        let now = self.now();
        session.issued_at = now;
        session.redirect_uri.clear();
        session.code_challenge.clear();
        let mut rows = Vec::with_capacity(2);
        let mut access_session = session.clone();
        access_session.expires_at = now + self.settings.ttl_access;
        let (access, row) = self.mint_access(request_id, &access_session).await?;
        rows.push(row);
        let refresh = if has_offline(&session.granted_scope)
            && client.allows_grant(GrantType::RefreshToken)
        {
            let mut refresh_session = session.clone();
            refresh_session.expires_at = now + self.settings.tokens.ttl_refresh;
            let (token, row) = self.mint(TokenKind::Refresh, request_id, &refresh_session)?;
            rows.push(row);
            Some(token)
        } else {
            None
        };
        let id_token = if session.granted_scope.iter().any(|s| s == "openid") {
            Some(self.id_token(client, &session, Some(&access), None).await?)
        } else {
            None
        };
        Ok((
            TokenResponse {
                access_token: access,
                expires_in: self.settings.ttl_access,
                id_token,
                refresh_token: refresh,
                scope: session.granted_scope.join(" "),
                token_type: "bearer",
            },
            rows,
        ))
    }

    /// An RS256 ID token (fosite token/jwt/claims_id_token.go): consent claims may add to the
    /// reserved ones but never override them. A refresh keeps auth_time, rat and nonce.
    pub(super) async fn id_token(
        &self,
        client: &Client,
        session: &TokenSession,
        access_token: Option<&str>,
        code: Option<&str>,
    ) -> Result<String, OAuthError> {
        let Some(c) = &session.id_token else {
            return Err(internal(Fault::NoIdTokenClaims));
        };
        let now = self.now();
        let mut claims = serde_json::Map::new();
        for (k, v) in &c.extra {
            if !RESERVED.contains(&k.as_str()) {
                claims.insert(k.clone(), v.clone());
            }
        }
        let aud = vec![Value::String(client.client_id.clone())];
        let reserved = json!({
            "iss": self.settings.issuer,
            "sub": c.subject,
            "aud": aud,
            "exp": now + self.settings.tokens.ttl_id_token,
            "iat": now,
            "jti": crate::crypto::uuid_v4().to_string(),
            "auth_time": c.auth_time,
            "rat": c.requested_at,
            "nonce": c.nonce,
            "sid": c.sid,
        });
        if let Value::Object(m) = reserved {
            claims.extend(m);
        }
        if let Some(t) = access_token {
            claims.insert("at_hash".into(), json!(crate::crypto::jws::at_hash(t)));
        }
        if let Some(code) = code {
            claims.insert("c_hash".into(), json!(crate::crypto::jws::at_hash(code)));
        }
        if !c.acr.is_empty() {
            claims.insert("acr".into(), json!(c.acr));
        }
        let signer = self.jwks.id_token_signer().await.map_err(internal)?;
        let claims = Value::Object(claims);
        tokio::task::spawn_blocking(move || signer.sign(&claims))
            .await
            .map_err(internal)?
            .map_err(internal)
    }
}
