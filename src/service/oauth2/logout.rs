//! Logout (consent/strategy_default.go issueLogoutVerifier/completeLogout, OIDC RP-Initiated,
//! Front-Channel and Back-Channel Logout): `/oauth2/sessions/logout` hands over to the logout
//! app, which accepts or rejects through the admin API; the browser then comes back with the
//! verifier and the session ends, with front-channel iframes and back-channel logout tokens
//! for every client that took part in the session.
use super::flows::FlowError;
use super::types::{BrowserCookies, CookieOp, Params, Redirect};
use super::OAuth2;
use crate::domain::client::{is_web_url, Client};
use crate::domain::flow::{LogoutRequest, LogoutState};
use crate::oauth2::redirect::BaseUrl;
use crate::oauth2::OAuthError;
use crate::service::clients::ClientsError;
use serde_json::{json, Value};
use std::sync::Arc;

/// What the logout endpoint answers.
#[derive(Debug)]
pub enum LogoutOutcome {
    Redirect(Redirect),
    /// Front-channel logout page: iframes for `urls`, then on to `redirect_to`.
    Page {
        urls: Vec<String>,
        redirect_to: String,
        cookies: Vec<CookieOp>,
    },
}

const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

impl OAuth2 {
    pub async fn logout(
        &self,
        params: &Params,
        raw_query: &str,
        cookies: &BrowserCookies,
    ) -> LogoutOutcome {
        let result = match params.get("logout_verifier") {
            "" => self.initiate_logout(params, raw_query, cookies).await,
            v => self.complete_logout(v, cookies).await,
        };
        result.unwrap_or_else(|e| {
            let s = &self.settings;
            let params = e.params(s.errors.legacy, s.errors.expose_debug);
            LogoutOutcome::Redirect(
                Redirect::to(s.authorize.error_url.with_query(&params), vec![]).failed(e.cause),
            )
        })
    }

    async fn initiate_logout(
        &self,
        p: &Params,
        raw_query: &str,
        cookies: &BrowserCookies,
    ) -> Result<LogoutOutcome, OAuthError> {
        let request_url = format!("{}?{raw_query}", self.settings.logout.endpoint);
        match p.get("id_token_hint") {
            "" => self.logout_without_hint(p, request_url, cookies).await,
            hint => self.rp_initiated_logout(p, hint, request_url).await,
        }
    }

    /// No hint: the browser's own remembered session is the one to end.
    async fn logout_without_hint(
        &self,
        p: &Params,
        request_url: String,
        cookies: &BrowserCookies,
    ) -> Result<LogoutOutcome, OAuthError> {
        let session = match &cookies.session {
            Some(sid) => self.store.get_remembered_session(sid).await?,
            None => None,
        };
        if !p.get("state").is_empty() || !p.get("post_logout_redirect_uri").is_empty() {
            return Err(OAuthError::invalid_request().hint(
                "Logout failed because query parameters state or post_logout_redirect_uri are set but id_token_hint is missing.",
            ));
        }
        let post_logout = self.settings.logout.post_logout_url.as_str().to_string();
        let Some(session) = session else {
            return Ok(redirect_only(post_logout));
        };
        self.hand_over_logout(LogoutRequest {
            subject: session.subject,
            sid: session.id,
            request_url,
            redirect_to: post_logout,
            ..LogoutRequest::default()
        })
        .await
    }

    /// RP-initiated logout: the hint names the client and the session.
    async fn rp_initiated_logout(
        &self,
        p: &Params,
        hint: &str,
        request_url: String,
    ) -> Result<LogoutOutcome, OAuthError> {
        let claims = self
            .id_token_hint_claims(
                hint,
                "Logout failed because the id_token_hint could not be verified.",
            )
            .await?;
        let sid = self.check_logout_hint(&claims)?;
        let client = self.hinted_client(&claims).await?;
        let redirect_to = post_logout_redirect(p, &client, &self.settings.logout.post_logout_url)?;
        // The subject comes from the remembered login session the hint's `sid` names
        // (consent/strategy_default.go issueLogoutVerifier). An unknown session (already
        // logged out, or expired) leaves nothing to end: straight on to the redirect. The
        // browser's own session cookie is not consulted, as in Hydra: the signed hint is the
        // RP's statement of which session to end.
        let Some(session) = self.store.get_remembered_session(&sid).await? else {
            return Ok(redirect_only(redirect_to));
        };
        self.hand_over_logout(LogoutRequest {
            subject: session.subject,
            sid,
            client_id: client.client_id.clone(),
            request_url,
            redirect_to,
            rp_initiated: true,
            ..LogoutRequest::default()
        })
        .await
    }

    /// The hint's issuer, issue time, `sid` and `sub` (the `sid` is returned). The `sub` must
    /// be present (Hydra checks it), but it is never used: for a pairwise client or a forced
    /// subject identifier it is obfuscated, and the consent flows that name the RPs to notify
    /// are recorded under the real subject.
    fn check_logout_hint(&self, claims: &Value) -> Result<String, OAuthError> {
        let str_claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or("");
        if str_claim("iss") != self.settings.issuer {
            return Err(OAuthError::invalid_request().hint(
                "Logout failed because the issuer of the id_token_hint does not match this server.",
            ));
        }
        if claims.get("iat").and_then(Value::as_i64).unwrap_or(0) > self.now() {
            return Err(OAuthError::invalid_request()
                .hint("Logout failed because the id_token_hint was issued in the future."));
        }
        if str_claim("sid").is_empty() {
            return Err(OAuthError::invalid_request().hint(
                "Logout failed because query parameter id_token_hint is missing sid claim.",
            ));
        }
        if str_claim("sub").is_empty() {
            return Err(OAuthError::invalid_request().hint(
                "Logout failed because query parameter id_token_hint is missing sub claim.",
            ));
        }
        Ok(str_claim("sid").to_string())
    }

    /// The first audience of the hint that is a registered client. A failed lookup counts as
    /// "not registered" (the answer stays Hydra's), but is logged with its cause.
    async fn hinted_client(&self, claims: &Value) -> Result<Arc<Client>, OAuthError> {
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        for aud in audiences {
            match self.clients.get_shared(aud).await {
                Ok(c) => return Ok(c),
                Err(ClientsError::NotFound) => {}
                Err(e) => log_lookup_failure(aud, &e),
            }
        }
        Err(OAuthError::invalid_request().hint(
            "Logout failed because no audience of the id_token_hint is a registered OAuth 2.0 Client.",
        ))
    }

    async fn hand_over_logout(&self, mut l: LogoutRequest) -> Result<LogoutOutcome, OAuthError> {
        l.challenge = crate::crypto::uuid_v4().to_string();
        l.verifier = crate::crypto::uuid_v4().to_string();
        self.store.insert_logout(&l, self.now()).await?;
        Ok(redirect_only(self.settings.logout.logout_url.with_query(
            &[("logout_challenge".into(), l.challenge.clone())],
        )))
    }

    async fn complete_logout(
        &self,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<LogoutOutcome, OAuthError> {
        let not_found = || {
            OAuthError::custom(
                "not_found",
                "Could not find the requested resource(s).",
                "The logout verifier is unknown, was not accepted or was used already.",
                "",
                404,
            )
        };
        let l = self
            .store
            .get_logout(verifier, true)
            .await?
            .ok_or_else(not_found)?;
        if !self
            .store
            .transition_logout(&l.challenge, LogoutState::Accepted, LogoutState::Used)
            .await?
        {
            return Err(not_found());
        }
        if !l.rp_initiated {
            // The browser must still hold the session being ended.
            let current = match &cookies.session {
                Some(sid) => self.store.get_remembered_session(sid).await?,
                None => None,
            };
            if !current.is_some_and(|s| s.subject == l.subject && s.id == l.sid) {
                return Ok(redirect_only(l.redirect_to));
            }
        }
        let (front, back) = self.logout_targets(&l).await?;
        self.backchannel_logout(&l.sid, back).await;
        self.store.delete_login_session(&l.sid).await?;
        let cookies = vec![CookieOp::ClearSession];
        if front.is_empty() {
            return Ok(LogoutOutcome::Redirect(Redirect::to(
                l.redirect_to,
                cookies,
            )));
        }
        Ok(LogoutOutcome::Page {
            urls: front,
            redirect_to: l.redirect_to,
            cookies,
        })
    }

    /// The front-channel logout URLs and back-channel targets of the clients that took part
    /// in the session. A client that cannot be read is skipped (and logged with its cause).
    async fn logout_targets(
        &self,
        l: &LogoutRequest,
    ) -> Result<(Vec<String>, Vec<(String, String)>), OAuthError> {
        let mut front = Vec::new();
        let mut back = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for f in self.store.consent_flows_of(&l.subject, None).await? {
            if f.login_session_id != l.sid || !seen.insert(f.client_id.clone()) {
                continue;
            }
            let c = match self.clients.get_shared(&f.client_id).await {
                Ok(c) => c,
                Err(ClientsError::NotFound) => continue,
                Err(e) => {
                    log_lookup_failure(&f.client_id, &e);
                    continue;
                }
            };
            // Registration admits only http(s) URIs; a row stored before that rule (or
            // imported) with another scheme is skipped rather than put in the page.
            if let Some(front_uri) = web_url(&c.frontchannel_logout_uri) {
                front.push(front_uri.with_query(&[
                    ("iss".into(), self.settings.issuer.clone()),
                    ("sid".into(), l.sid.clone()),
                ]));
            }
            if is_web_url(&c.backchannel_logout_uri) {
                back.push((c.client_id.clone(), c.backchannel_logout_uri.clone()));
            }
        }
        Ok((front, back))
    }

    /// POSTs a logout token to each client concurrently; failures are logged with their
    /// cause and counted, never fatal.
    async fn backchannel_logout(&self, sid: &str, targets: Vec<(String, String)>) {
        if targets.is_empty() {
            return;
        }
        let signer = match self.jwks.id_token_signer().await {
            Ok(s) => s,
            Err(e) => {
                let e: &(dyn std::error::Error + 'static) = &e;
                tracing::error!(error = e, "back-channel logout: no signing key");
                return;
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (client_id, uri) in targets {
            let claims = json!({
                "iss": self.settings.issuer,
                "aud": [client_id],
                "iat": self.now(),
                "jti": crate::crypto::uuid_v4().to_string(),
                "events": { BACKCHANNEL_EVENT: {} },
                "sid": sid,
            });
            let notice = Notice {
                client_id,
                uri,
                http: self.http.clone(),
                counted: self.metrics.backchannel.clone(),
            };
            tasks.spawn(notice.send(signer.clone(), claims));
        }
        while let Some(joined) = tasks.join_next().await {
            if let Err(e) = joined {
                let e: &(dyn std::error::Error + 'static) = &e;
                tracing::error!(error = e, "back-channel logout: notification task failed");
            }
        }
    }

    /// Admin: the logout request for the logout app. Rejected or unknown → 404; used → 409.
    pub async fn get_logout_request(&self, challenge: &str) -> Result<LogoutRequest, FlowError> {
        let l = self
            .store
            .get_logout(challenge, false)
            .await?
            .ok_or(FlowError::NotFound)?;
        match l.state {
            Some(LogoutState::Rejected) => Err(FlowError::NotFound),
            Some(LogoutState::Used) => Err(FlowError::Conflict(
                "The logout request has been used already.".into(),
            )),
            _ => Ok(l),
        }
    }

    pub async fn accept_logout(&self, challenge: &str) -> Result<String, FlowError> {
        let l = self
            .store
            .get_logout(challenge, false)
            .await?
            .ok_or(FlowError::NotFound)?;
        match l.state {
            Some(LogoutState::Unhandled) => {
                // Lost a race with a rejection (or another accept that then got used): re-read.
                if !self
                    .store
                    .transition_logout(challenge, LogoutState::Unhandled, LogoutState::Accepted)
                    .await?
                {
                    return Box::pin(self.accept_logout(challenge)).await;
                }
            }
            Some(LogoutState::Accepted) => {}
            Some(LogoutState::Used) => {
                return Err(FlowError::Conflict(
                    "The logout request has been used already.".into(),
                ))
            }
            _ => return Err(FlowError::NotFound),
        }
        Ok(self
            .settings
            .logout
            .verifier_url
            .with_query(&[("logout_verifier".into(), l.verifier)]))
    }

    /// Marks the request rejected; Hydra answers 204 whether or not it exists.
    pub async fn reject_logout(&self, challenge: &str) -> Result<(), FlowError> {
        for from in [LogoutState::Unhandled, LogoutState::Accepted] {
            if self
                .store
                .transition_logout(challenge, from, LogoutState::Rejected)
                .await?
            {
                break;
            }
        }
        Ok(())
    }
}

/// One back-channel logout notification.
struct Notice {
    client_id: String,
    uri: String,
    http: reqwest::Client,
    counted: prometheus::IntCounterVec,
}

impl Notice {
    async fn send(self, signer: Arc<crate::crypto::jws::Signer>, claims: Value) {
        let failed = self.counted.with_label_values(&["failed"]);
        let client_id = self.client_id.as_str();
        let signing_failed = |e: &(dyn std::error::Error + 'static)| {
            failed.inc();
            tracing::error!(client_id, error = e, "back-channel logout: signing failed");
        };
        let token = match tokio::task::spawn_blocking(move || signer.sign(&claims)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => return signing_failed(&e),
            Err(e) => return signing_failed(&e),
        };
        let sent = self
            .http
            .post(&self.uri)
            .form(&[("logout_token", token)])
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                self.counted.with_label_values(&["delivered"]).inc();
            }
            Ok(r) => {
                failed.inc();
                tracing::warn!(
                    client_id,
                    status = r.status().as_u16(),
                    "back-channel logout answered with an error"
                )
            }
            Err(e) => {
                failed.inc();
                let e: &(dyn std::error::Error + 'static) = &e;
                tracing::warn!(client_id, error = e, "back-channel logout failed")
            }
        }
    }
}

fn redirect_only(to: String) -> LogoutOutcome {
    LogoutOutcome::Redirect(Redirect::to(to, vec![]))
}

/// A client lookup that failed for another reason than "not found".
fn log_lookup_failure(client_id: &str, e: &ClientsError) {
    let e: &(dyn std::error::Error + 'static) = e;
    tracing::error!(client_id, error = e, "logout: client lookup failed");
}

/// Where the browser goes after an RP-initiated logout: the requested URI when the client
/// registered it (with `state` appended), else `urls.post_logout_redirect`.
fn post_logout_redirect(
    p: &Params,
    client: &Client,
    default: &BaseUrl,
) -> Result<String, OAuthError> {
    let requested = p.get("post_logout_redirect_uri");
    let redirect_to = if requested.is_empty() {
        default.clone()
    } else {
        client
            .post_logout_redirect_uris
            .iter()
            .find(|u| *u == requested)
            .and_then(|u| web_url(u))
            .ok_or_else(|| OAuthError::invalid_request().hint(
                "Logout failed because query parameter post_logout_redirect_uri is not a whitelisted as a post_logout_redirect_uri for the client.",
            ))?
    };
    if p.get("state").is_empty() {
        return Ok(redirect_to.as_str().to_string());
    }
    Ok(redirect_to.with_query(&[("state".into(), p.get("state").into())]))
}

/// An absolute http(s) URL of a client (see `is_web_url`), parsed.
fn web_url(raw: &str) -> Option<BaseUrl> {
    is_web_url(raw).then(|| BaseUrl::parse(raw).ok()).flatten()
}
