//! Introspection (RFC 7662), revocation (RFC 7009), userinfo (OIDC Core 5.3), flush and
//! per-client token deletion, as Hydra's oauth2/handler.go answers them.
use super::authorize::Params;
use super::{internal, ClientCredentials, OAuth2};
use crate::domain::token::{TokenKind, TokenSession};
use crate::oauth2::{split_spaces, OAuthError};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// oAuth2TokenIntrospection; inactive tokens serialise as `{"active":false}` only.
#[derive(Debug, Serialize, Default)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obfuscated_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_use: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext: Option<Map<String, Value>>,
}

/// The userinfo answer: claims as JSON, or a signed JWT when the client asks for RS256.
#[derive(Debug)]
pub enum Userinfo {
    Json(Value),
    Jwt(String),
}

/// Claims `/userinfo` never returns (Hydra oauth2/handler.go UserinfoHandler).
const USERINFO_DROPPED: [&str; 6] = ["nonce", "at_hash", "c_hash", "exp", "sid", "jti"];

impl OAuth2 {
    /// Any failure is `{"active": false}`; only storage failures surface as errors.
    pub async fn introspect(
        &self,
        token: &str,
        hint: &str,
        scope: &str,
    ) -> Result<Introspection, OAuthError> {
        let answer = self.introspect_token(token, hint, scope).await;
        if let Ok(a) = &answer {
            let result = if a.active { "active" } else { "inactive" };
            self.metrics
                .introspections
                .with_label_values(&[result])
                .inc();
        }
        answer
    }

    async fn introspect_token(
        &self,
        token: &str,
        hint: &str,
        scope: &str,
    ) -> Result<Introspection, OAuthError> {
        let order = if hint == "refresh_token" {
            [TokenKind::Refresh, TokenKind::Access]
        } else {
            [TokenKind::Access, TokenKind::Refresh]
        };
        let now = self.now();
        for kind in order {
            let found = if kind == TokenKind::Access {
                self.lookup_access_cached(token).await?
            } else {
                self.lookup(token, kind)
                    .await?
                    .map(|(row, s)| std::sync::Arc::new((row, std::sync::Arc::new(s))))
            };
            let Some(entry) = found else {
                continue;
            };
            let (row, s) = (&entry.0, &entry.1);
            if !row.active || row.expires_at < now {
                return Ok(Introspection::default());
            }
            let wanted = split_spaces(scope);
            if wanted
                .iter()
                .any(|w| !self.settings.scope_strategy.allows(&s.granted_scope, w))
            {
                return Ok(Introspection::default());
            }
            return Ok(Introspection {
                active: true,
                scope: Some(s.granted_scope.join(" ")),
                client_id: Some(s.client_id.clone()),
                sub: Some(s.subject.clone()),
                obfuscated_subject: (!s.obfuscated_subject.is_empty())
                    .then(|| s.obfuscated_subject.clone()),
                exp: Some(row.expires_at),
                iat: Some(row.requested_at),
                nbf: Some(s.requested_at),
                aud: Some(s.granted_audience.clone()),
                iss: Some(self.settings.issuer.clone()),
                token_type: Some("Bearer"),
                token_use: Some(if kind == TokenKind::Access {
                    "access_token"
                } else {
                    "refresh_token"
                }),
                ext: (!s.ext.is_empty()).then(|| s.ext.clone()),
            });
        }
        Ok(Introspection::default())
    }

    /// RFC 7009: revokes every access and refresh token of the token's grant. Unknown tokens and
    /// tokens of other clients are answered with success, as Hydra does.
    pub async fn revoke(&self, form: &Params, creds: &ClientCredentials) -> Result<(), OAuthError> {
        let client = self.authenticate_client(creds).await?;
        let token = form.get("token");
        if token.is_empty() {
            return Err(OAuthError::invalid_request().hint("The 'token' parameter is missing."));
        }
        let order = if form.get("token_type_hint") == "access_token" {
            [TokenKind::Access, TokenKind::Refresh]
        } else {
            [TokenKind::Refresh, TokenKind::Access]
        };
        for kind in order {
            if let Some((row, _)) = self.lookup(token, kind).await? {
                if row.client_id == client.client_id {
                    self.revoke_grant(&row.request_id).await?;
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// The claims of the access token's ID-token session (minus the per-token ones).
    pub async fn userinfo(&self, token: &str) -> Result<Userinfo, OAuthError> {
        let Some(entry) = self.lookup_access_cached(token).await? else {
            return Err(OAuthError::request_unauthorized()
                .hint("The access token is unknown, malformed or revoked."));
        };
        let (row, s) = (&entry.0, &entry.1);
        if row.expires_at < self.now() {
            return Err(OAuthError::token_expired().hint("The access token expired."));
        }
        let claims = self.userinfo_claims(s);
        let client = self
            .clients
            .get_shared(&s.client_id)
            .await
            .map_err(internal)?;
        if client.userinfo_signed_response_alg != "RS256" {
            return Ok(Userinfo::Json(claims));
        }
        let mut claims = claims;
        claims["jti"] = json!(crate::crypto::uuid_v4().to_string());
        claims["iat"] = json!(self.now());
        let signer = self.jwks.id_token_signer().await.map_err(internal)?;
        let jwt = tokio::task::spawn_blocking(move || signer.sign(&claims))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        Ok(Userinfo::Jwt(jwt))
    }

    fn userinfo_claims(&self, s: &TokenSession) -> Value {
        let mut m = Map::new();
        match &s.id_token {
            Some(c) => {
                for (k, v) in &c.extra {
                    m.insert(k.clone(), v.clone());
                }
                m.insert("sub".into(), json!(c.subject));
                m.insert("auth_time".into(), json!(c.auth_time));
                m.insert("rat".into(), json!(c.requested_at));
                if !c.acr.is_empty() {
                    m.insert("acr".into(), json!(c.acr));
                }
            }
            None => {
                m.insert("sub".into(), json!(s.subject));
            }
        }
        m.insert("iss".into(), json!(self.settings.issuer));
        m.insert("aud".into(), json!([s.client_id]));
        // Claims that belong to one ID token, not to the user (Hydra oauth2/handler.go
        // UserinfoHandler deletes exactly these), even when the consent app put them in
        // `session.id_token`. The signed form adds a fresh `jti` and `iat` afterwards.
        for claim in USERINFO_DROPPED {
            m.remove(claim);
        }
        Value::Object(m)
    }

    /// `POST /oauth2/flush`: access tokens older than `ttl.access_token` and requested before
    /// `not_after` (default now); spent codes and refresh tokens past their expiry; and
    /// login/consent flows abandoned for longer than `ttl.login_consent_request`.
    pub async fn flush(&self, not_after: Option<i64>) -> Result<u64, OAuthError> {
        let now = self.now();
        let cutoff = not_after.unwrap_or(now).min(now - self.settings.ttl_access);
        let expired = not_after.unwrap_or(now).min(now);
        let n = self.store.flush_tokens(cutoff, expired).await?;
        self.cache.clear();
        let stale = not_after.unwrap_or(now).min(now - self.settings.ttl_flow);
        let flows = self.store.purge_stale_flows(stale).await?;
        Ok(n + flows + self.store.purge_expired_login_sessions(now).await?)
    }

    pub async fn delete_client_tokens(&self, client_id: &str) -> Result<u64, OAuthError> {
        let n = self.store.delete_access_tokens_of_client(client_id).await?;
        self.cache.clear();
        Ok(n)
    }
}
