//! Tokens at rest (fosite's storage strategies): minting opaque tokens and JWT access tokens,
//! the rows that store their signatures and sealed sessions, and looking presented tokens up.
use super::{cache, reader};
use super::{internal, Fault, OAuth2};
use crate::domain::protocol::AccessTokenStrategy;
use crate::domain::token::{TokenKind, TokenSession};
use crate::oauth2::OAuthError;
use crate::store::TokenRow;
use std::sync::Arc;

impl OAuth2 {
    /// Seals a session for storage (AES-GCM unless `oauth2.session.encrypt_at_rest` is off).
    pub(super) fn seal(&self, s: &TokenSession) -> Result<String, OAuthError> {
        let json = serde_json::to_string(s).map_err(internal)?;
        if !self.settings.tokens.encrypt_at_rest {
            return Ok(json);
        }
        self.aead.encrypt(json.as_bytes()).map_err(internal)
    }

    /// Opens stored session data; plaintext JSON rows are read as they are (Hydra does too).
    pub(super) fn open(&self, data: &str) -> Result<TokenSession, OAuthError> {
        if data.starts_with('{') {
            return serde_json::from_str(data).map_err(internal);
        }
        let plain = self.aead.decrypt(data).map_err(internal)?;
        serde_json::from_slice(&plain).map_err(internal)
    }

    /// Stores a new token (group-inserted with concurrent ones).
    pub(super) async fn write_token(&self, row: TokenRow) -> Result<(), OAuthError> {
        self.writer.insert(row).await.map_err(OAuthError::from)
    }

    /// The row storing a new token's signature and sealed session.
    pub(super) fn token_row(
        &self,
        signature: String,
        kind: TokenKind,
        request_id: &str,
        session: &TokenSession,
    ) -> Result<TokenRow, OAuthError> {
        Ok(TokenRow {
            signature,
            kind,
            request_id: request_id.to_string(),
            client_id: session.client_id.clone(),
            active: true,
            requested_at: session.issued_at,
            expires_at: session.expires_at,
            data: self.seal(session)?,
        })
    }

    /// A new opaque token of `kind` for `session`, and the row that stores its signature.
    pub(super) fn mint(
        &self,
        kind: TokenKind,
        request_id: &str,
        session: &TokenSession,
    ) -> Result<(String, TokenRow), OAuthError> {
        let (token, signature) = self
            .hmac
            .generate()
            .ok_or_else(|| internal(Fault::NoSystemSecret))?;
        let row = self.token_row(signature, kind, request_id, session)?;
        Ok((token, row))
    }

    /// A new access token: opaque, or an RS256 JWT with the `jwt` strategy. JWT rows are keyed
    /// by the hex SHA-384 of the signature segment, as Hydra stores them.
    pub(super) async fn mint_access(
        &self,
        request_id: &str,
        session: &TokenSession,
    ) -> Result<(String, TokenRow), OAuthError> {
        if self.settings.tokens.access_token_strategy != AccessTokenStrategy::Jwt {
            return self.mint(TokenKind::Access, request_id, session);
        }
        let claims = serde_json::json!({
            "jti": crate::crypto::uuid_v4().to_string(),
            "sub": session.subject,
            "iss": self.settings.issuer,
            "aud": session.granted_audience,
            "iat": session.issued_at,
            "nbf": session.issued_at,
            "exp": session.expires_at,
            "scp": session.granted_scope,
            "client_id": session.client_id,
            "ext": session.ext,
        });
        let signer = self
            .jwks
            .signer(crate::domain::jwk::ACCESS_TOKEN_SET)
            .await
            .map_err(internal)?;
        let jwt = tokio::task::spawn_blocking(move || signer.sign(&claims))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let signature = jwt_signature_key(&jwt);
        let row = self.token_row(signature, TokenKind::Access, request_id, session)?;
        Ok((jwt, row))
    }

    /// The storage key of a presented token: the HMAC signature of an opaque token that
    /// verifies, or (JWT strategy, access tokens) the digest of a JWT whose RS256 signature
    /// verifies. None for forgeries, without a database trip.
    pub(super) async fn storage_key(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<Option<String>, OAuthError> {
        if kind == TokenKind::Access
            && self.settings.tokens.access_token_strategy == AccessTokenStrategy::Jwt
            && token.split('.').count() == 3
        {
            let keys = self
                .jwks
                .public_keys(crate::domain::jwk::ACCESS_TOKEN_SET)
                .await
                .map_err(internal)?;
            return Ok(crate::crypto::jws::verify_ignoring_expiry(token, &keys)
                .ok()
                .map(|_| jwt_signature_key(token)));
        }
        Ok(self.hmac.validate(token).map(str::to_string))
    }

    /// An access token for introspection and userinfo: from the database (a coalesced read),
    /// or from the opt-in per-process cache when `oauth2.introspection_cache_ttl` is set.
    pub(super) async fn lookup_access_cached(
        &self,
        token: &str,
    ) -> Result<Option<cache::Entry>, OAuthError> {
        let Some(sig) = self.storage_key(token, TokenKind::Access).await? else {
            return Ok(None);
        };
        let entry = match self.cache.get(&sig) {
            Some(e) => e,
            None => {
                let started = self.cache.stamp();
                let found = self
                    .reader
                    .get_with_session(sig, TokenKind::Access, |data| self.open(data))
                    .await
                    .map_err(|e| match e {
                        reader::ReadError::Store(e) => OAuthError::from(e),
                        reader::ReadError::Open(e) => e,
                    })?;
                let Some((row, session)) = found else {
                    return Ok(None);
                };
                let entry = Arc::new((row, session));
                self.cache.put(started, entry.clone());
                entry
            }
        };
        Ok(Some(entry))
    }

    /// Revokes every access and refresh token of a grant.
    pub(super) async fn revoke_grant(&self, request_id: &str) -> Result<(), OAuthError> {
        self.store.revoke_request(request_id).await?;
        self.cache.revoke_request(request_id);
        Ok(())
    }

    /// Looks a presented token up: signature first (no database trip for forgeries), then the row.
    pub(super) async fn lookup(
        &self,
        token: &str,
        kind: TokenKind,
    ) -> Result<Option<(TokenRow, TokenSession)>, OAuthError> {
        let Some(sig) = self.storage_key(token, kind).await? else {
            return Ok(None);
        };
        let Some(row) = self.reader.get(sig, kind).await.map_err(OAuthError::from)? else {
            return Ok(None);
        };
        let session = self.open(&row.data)?;
        Ok(Some((row, session)))
    }
}

/// Hex SHA-384 of a JWT's signature segment (Hydra's storage key for JWT access tokens).
fn jwt_signature_key(jwt: &str) -> String {
    let segment = jwt.rsplit('.').next().unwrap_or("");
    let digest = ring::digest::digest(&ring::digest::SHA384, segment.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
