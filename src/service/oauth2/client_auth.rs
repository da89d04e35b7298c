//! Client authentication at the token and revocation endpoints, in the order of fosite's
//! client_authentication.go: a client assertion (`private_key_jwt`, see `assertion.rs`) when
//! one is presented; else the id and secret from HTTP Basic (form-url-decoded) or the form;
//! the client; its registered method; public clients stop there; else the secret.
use super::{assertion, internal, storage_failure, OAuth2};
use crate::domain::client::Client;
use crate::domain::protocol::ClientAuthMethod;
use crate::oauth2::OAuthError;
use crate::service::clients::ClientsError;
use crate::service::secrets::Verdict;
use std::net::IpAddr;
use std::sync::Arc;

/// Credentials as presented: HTTP Basic (already decoded) or form fields.
#[derive(Debug, Default)]
pub struct ClientCredentials {
    pub basic: Option<(String, String)>,
    /// `client_assertion_type` and `client_assertion` (private_key_jwt).
    pub assertion: Option<(String, String)>,
    pub form_id: String,
    pub form_secret: Option<String>,
    /// The TCP peer and its `X-Forwarded-For`, for the per-address failure throttle.
    pub peer: Option<std::net::IpAddr>,
    pub forwarded_for: Option<String>,
}

/// The id and secret a request presents, and the method it used to present them.
struct Presented<'a> {
    id: &'a str,
    secret: Option<&'a str>,
    method: ClientAuthMethod,
}

impl<'a> Presented<'a> {
    /// fosite clientCredentialsFromRequest: HTTP Basic wins over the form.
    fn read(creds: &'a ClientCredentials) -> Result<Presented<'a>, OAuthError> {
        let presented = match &creds.basic {
            Some((id, secret)) => Presented {
                id,
                secret: Some(secret),
                method: ClientAuthMethod::ClientSecretBasic,
            },
            None => Presented {
                id: &creds.form_id,
                secret: creds.form_secret.as_deref(),
                method: ClientAuthMethod::ClientSecretPost,
            },
        };
        if presented.id.is_empty() {
            return Err(OAuthError::invalid_client()
                .hint("Client credentials missing or malformed in both HTTP Authorization header and HTTP POST body."));
        }
        Ok(presented)
    }

    /// The secret, unless missing or empty.
    fn secret(&self) -> Option<&'a str> {
        self.secret.filter(|s| !s.is_empty())
    }
}

fn unknown_client() -> OAuthError {
    OAuthError::invalid_client().hint("The requested OAuth 2.0 Client does not exist.")
}

/// The registered method must be the one used; `none` accepts any (public clients).
fn check_method(client: &Client, used: ClientAuthMethod) -> Result<(), OAuthError> {
    let registered = client.auth_method();
    if registered == Some(ClientAuthMethod::PrivateKeyJwt) {
        return Err(OAuthError::invalid_client().hint(
            "The OAuth 2.0 Client must authenticate with a client assertion (private_key_jwt).",
        ));
    }
    if registered != Some(ClientAuthMethod::None) && registered != Some(used) {
        let method = &client.token_endpoint_auth_method;
        return Err(OAuthError::invalid_client().hint(format!(
            "The OAuth 2.0 Client supports client authentication method '{method}', but method '{used}' was requested. You must configure the OAuth 2.0 client's 'token_endpoint_auth_method' value to accept '{used}'."
        )));
    }
    Ok(())
}

/// 503 when no hashing worker was free in time, 429 for a throttled client and address.
fn overload(verdict: Verdict) -> Result<(), OAuthError> {
    match verdict {
        Verdict::Busy => Err(OAuthError::temporarily_unavailable()
            .hint("All client-secret verifications are busy; retry shortly.")),
        Verdict::Throttled => Err(OAuthError::throttled()),
        Verdict::Valid | Verdict::Invalid => Ok(()),
    }
}

impl OAuth2 {
    /// Authenticates the client of a token or revocation request; the registered method is
    /// enforced.
    pub async fn authenticate_client(
        &self,
        creds: &ClientCredentials,
    ) -> Result<Arc<Client>, OAuthError> {
        // The address the throttles count failures for.
        let origin = self
            .secrets
            .origin(creds.peer, creds.forwarded_for.as_deref());
        if let Some((kind, jwt)) = &creds.assertion {
            return self
                .authenticate_with_assertion(creds, kind, jwt, origin)
                .await;
        }
        let presented = Presented::read(creds)?;
        let (client, hash) = self.client_for_secret(&presented, origin).await?;
        check_method(&client, presented.method)?;
        if client.is_public() {
            return Ok(client);
        }
        self.check_secret(&client, &hash, &presented, origin)
            .await?;
        Ok(client)
    }

    /// `private_key_jwt`: the client the assertion names (the form's `client_id` when given).
    async fn authenticate_with_assertion(
        &self,
        creds: &ClientCredentials,
        kind: &str,
        jwt: &str,
        origin: Option<IpAddr>,
    ) -> Result<Arc<Client>, OAuthError> {
        if kind != assertion::ASSERTION_TYPE {
            return Err(OAuthError::invalid_client()
                .hint(format!("Unknown client_assertion_type '{kind}'.")));
        }
        let id = if creds.form_id.is_empty() {
            assertion::unverified_subject(jwt).unwrap_or_default()
        } else {
            creds.form_id.clone()
        };
        let Some((client, _)) = self.look_up(&id, None, origin).await? else {
            self.secrets.strike_unknown(origin);
            self.secrets.delay_failure().await;
            return Err(unknown_client());
        };
        self.verify_assertion(&client, jwt).await?;
        Ok(client)
    }

    /// The client named by a request and its stored secret hash, `None` for an unknown id: from
    /// the cache, else read, unless the address is throttled for unknown ids (then 429 after the
    /// failure delay, without a read; see `SecretVerifier::may_look_up`).
    async fn look_up(
        &self,
        id: &str,
        secret: Option<&str>,
        origin: Option<IpAddr>,
    ) -> Result<Option<(Arc<Client>, Arc<str>)>, OAuthError> {
        if let Some(found) = self.clients.cached_for_auth(id) {
            return Ok(Some(found));
        }
        if !self.secrets.may_look_up(id, secret, origin) {
            self.secrets.delay_throttled().await;
            return Err(OAuthError::address_throttled());
        }
        match self.clients.get_for_auth(id).await {
            Ok(found) => Ok(Some(found)),
            Err(ClientsError::NotFound) => Ok(None),
            Err(e) => Err(storage_failure(matches!(e, ClientsError::Busy), e)),
        }
    }

    /// The client and its stored secret hash. An unknown client costs what a known one costs,
    /// on the same bounded path, before it is refused.
    async fn client_for_secret(
        &self,
        presented: &Presented<'_>,
        origin: Option<IpAddr>,
    ) -> Result<(Arc<Client>, Arc<str>), OAuthError> {
        if let Some(found) = self
            .look_up(presented.id, presented.secret(), origin)
            .await?
        {
            return Ok(found);
        }
        let verdict = match presented.secret() {
            Some(secret) => {
                self.secrets
                    .verify(presented.id, None, secret, origin)
                    .await
            }
            None => {
                self.secrets.strike_unknown(origin);
                Verdict::Invalid
            }
        };
        self.secrets.delay_answer(verdict).await;
        overload(verdict)?;
        Err(unknown_client())
    }

    /// fosite checkClientSecret, on the bounded, throttled hashing pool.
    async fn check_secret(
        &self,
        client: &Client,
        hash: &str,
        presented: &Presented<'_>,
        origin: Option<IpAddr>,
    ) -> Result<(), OAuthError> {
        let Some(secret) = presented.secret() else {
            return Err(OAuthError::invalid_client().hint("The client secret is missing."));
        };
        let verdict = self
            .secrets
            .verify(&client.client_id, Some(hash), secret, origin)
            .await;
        self.secrets.delay_answer(verdict).await;
        overload(verdict)?;
        if verdict != Verdict::Valid {
            return Err(OAuthError::invalid_client()
                .hint("The provided client secret did not match the registered one."));
        }
        Ok(())
    }

    /// A registered client, or `invalid_client` (storage failures stay server errors).
    pub(crate) async fn known_client(&self, id: &str) -> Result<Arc<Client>, OAuthError> {
        match self.clients.get_shared(id).await {
            Ok(c) => Ok(c),
            Err(ClientsError::NotFound) => Err(unknown_client()),
            Err(e) => Err(internal(e)),
        }
    }
}
