//! The login/consent state machine of the authorization endpoint (consent/strategy_default.go):
//! request login → verify login → request consent → verify consent → issue the code (and, for
//! implicit and hybrid requests, the tokens).
use super::authorize::{to_client, AuthRequest, Stop};
use super::types::{BrowserCookies, CookieOp, Params, Redirect};
use super::{new_id, OAuth2};
use crate::domain::flow::{ConsentResult, Flow, FlowState, LoginSession, OidcContext};
use crate::domain::protocol::{GrantType, Prompt, ResponseType};
use crate::domain::token::{IdTokenClaims, TokenKind, TokenSession};
use crate::oauth2::{redirect, OAuthError};

impl OAuth2 {
    /// No verifier: find a remembered session, then hand over to the login app.
    pub(super) async fn request_login(
        &self,
        req: &AuthRequest,
        params: &Params,
        raw_query: &str,
        cookies: &BrowserCookies,
    ) -> Result<Redirect, OAuthError> {
        let now = self.now();
        let session = self.remembered_session(req, cookies, now).await?;
        let oidc = self.hinted_context(req, session.as_ref()).await?;
        if req.prompts(Prompt::None) && session.is_none() {
            return Err(OAuthError::login_required()
                .hint("Prompt 'none' was requested, but no existing login session was found."));
        }
        // A new session id becomes the ID token's `sid`; its row is written only when the
        // login is remembered (Hydra writes an empty stub row first; nothing reads it).
        let login_session_id = match &session {
            Some(s) => s.id.clone(),
            None => crate::crypto::uuid_v4().to_string(),
        };
        let flow = Flow {
            login_challenge: new_id(),
            login_verifier: new_id(),
            login_csrf: new_id(),
            client_id: req.client.client_id.clone(),
            request_url: self.request_url(params, raw_query),
            requested_scope: req.scopes.clone(),
            requested_audience: req.audience.clone(),
            login_skip: session.is_some(),
            subject: session
                .as_ref()
                .map(|s| s.subject.clone())
                .unwrap_or_default(),
            oidc_context: oidc,
            login_session_id,
            requested_at: now,
            authenticated_at: session.as_ref().map(|s| s.authenticated_at).unwrap_or(0),
            ..Flow::default()
        };
        self.store
            .insert_flow(&flow, FlowState::LoginUnhandled)
            .await?;
        Ok(Redirect::to(
            self.settings
                .authorize
                .login_url
                .with_query(&[("login_challenge".into(), flow.login_challenge.clone())]),
            vec![CookieOp::LoginCsrf(flow.login_csrf)],
        ))
    }

    /// The remembered login that may skip the login app: none with `prompt=login`, none past
    /// its stored expiry (a captured cookie must not give silent SSO forever; the browser's
    /// Max-Age is no bound), none past `max_age` (an error with `prompt=none`).
    async fn remembered_session(
        &self,
        req: &AuthRequest,
        cookies: &BrowserCookies,
        now: i64,
    ) -> Result<Option<LoginSession>, OAuthError> {
        if req.prompts(Prompt::Login) {
            return Ok(None);
        }
        let Some(sid) = &cookies.session else {
            return Ok(None);
        };
        let Some(session) = self
            .store
            .get_remembered_session(sid)
            .await?
            .filter(|s| s.is_live(now))
        else {
            return Ok(None);
        };
        if req.max_age > 0 && session.authenticated_at + req.max_age < now {
            if req.prompts(Prompt::None) {
                return Err(OAuthError::login_required()
                    .hint("Request failed because prompt is set to 'none' and authentication time reached 'max_age'."));
            }
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// The OIDC context for the login app, with the claims of a valid `id_token_hint`, whose
    /// subject must be the remembered session's.
    async fn hinted_context(
        &self,
        req: &AuthRequest,
        session: Option<&LoginSession>,
    ) -> Result<OidcContext, OAuthError> {
        let mut oidc = req.oidc.clone();
        if req.id_token_hint.is_empty() {
            return Ok(oidc);
        }
        let claims = self
            .id_token_hint_claims(
                &req.id_token_hint,
                "Failed to validate OpenID Connect request as decoding id token from id_token_hint parameter failed.",
            )
            .await?;
        let sub = claims.get("sub").and_then(|v| v.as_str()).unwrap_or("");
        if sub.is_empty() {
            return Err(OAuthError::invalid_request()
                .hint("Failed to validate OpenID Connect request because provided id token from id_token_hint does not have a subject."));
        }
        if let Some(s) = session {
            if s.subject != sub && self.subject_for(&req.client, &s.subject, "")? != sub {
                return Err(OAuthError::login_required().hint(
                    "Request failed because subject claim from id_token_hint does not match subject from authentication session.",
                ));
            }
        }
        if let serde_json::Value::Object(m) = claims {
            oidc.id_token_hint_claims = m;
        }
        Ok(oidc)
    }

    /// The URL the login and consent apps send the browser back to: the authorization URL
    /// with the original parameters (POSTed ones included, so POST flows can resume).
    fn request_url(&self, params: &Params, raw_query: &str) -> String {
        let base = format!("{}oauth2/auth", self.settings.authorize.public_url);
        if !raw_query.is_empty() {
            return format!("{base}?{raw_query}");
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.0.iter())
            .finish();
        format!("{base}?{query}")
    }

    fn unknown_verifier(kind: &str) -> OAuthError {
        OAuthError::access_denied().hint(format!(
            "The {kind} verifier has already been used, has not been granted, or is invalid."
        ))
    }

    /// Finds the flow of a login or consent verifier and spends the verifier: exactly one
    /// request moves the flow from "handled" to "used".
    async fn spend_verifier(&self, verifier: &str, consent: bool) -> Result<Flow, OAuthError> {
        let (kind, unhandled, handled, used) = if consent {
            (
                "consent",
                FlowState::ConsentUnhandled,
                FlowState::ConsentHandled,
                FlowState::ConsentUsed,
            )
        } else {
            (
                "login",
                FlowState::LoginUnhandled,
                FlowState::LoginHandled,
                FlowState::LoginUsed,
            )
        };
        let found = if consent {
            self.store.flow_by_consent_verifier(verifier).await?
        } else {
            self.store.flow_by_login_verifier(verifier).await?
        };
        let flow = found.ok_or_else(|| Self::unknown_verifier(kind))?;
        let state = flow.state.unwrap_or(FlowState::ConsentUsed);
        if state == unhandled {
            return Err(Self::unknown_verifier(kind));
        }
        if state > handled {
            return Err(OAuthError::invalid_request()
                .hint(format!("The {kind} verifier has already been used.")));
        }
        if !self
            .store
            .transition_flow(&flow, (handled, handled), used)
            .await?
        {
            return Err(OAuthError::invalid_request()
                .hint(format!("The {kind} verifier has already been used.")));
        }
        Ok(flow)
    }

    fn check_csrf(
        expected: &str,
        presented: Option<&String>,
        kind: &str,
    ) -> Result<(), OAuthError> {
        let ok = presented.is_some_and(|p| {
            bool::from(subtle::ConstantTimeEq::ct_eq(
                p.as_bytes(),
                expected.as_bytes(),
            ))
        });
        if ok {
            Ok(())
        } else {
            Err(OAuthError::request_forbidden().hint(format!(
                "The CSRF value from the token does not match the CSRF value from the data store. The {kind} CSRF cookie is missing or invalid."
            )))
        }
    }

    fn check_fresh(&self, flow: &Flow, kind: &str) -> Result<(), OAuthError> {
        if flow.requested_at + self.settings.ttl_flow < self.now() {
            return Err(OAuthError::request_unauthorized()
                .hint(format!("The {kind} request has expired, please try again.")));
        }
        Ok(())
    }

    pub(super) async fn verify_login(
        &self,
        req: &AuthRequest,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<Redirect, Stop> {
        let mut flow = self.spend_verifier(verifier, false).await?;
        let login = flow
            .login
            .clone()
            .ok_or_else(|| Self::unknown_verifier("login"))?;
        if let Some(d) = &login.denial {
            return Err(Stop::Rejected(denial_error(d)));
        }
        self.check_fresh(&flow, "login")?;
        Self::check_csrf(&flow.login_csrf, cookies.login_csrf.as_ref(), "login")?;
        if flow.client_id != req.client.client_id {
            return Err(Stop::from(OAuthError::invalid_request().hint(
                "The login verifier was issued for another OAuth 2.0 Client.",
            )));
        }
        if req.prompts(Prompt::Login) && login.authenticated_at < flow.requested_at {
            return Err(Stop::from(OAuthError::login_required()
                .hint("Prompt 'login' was requested, but the authentication happened before the authorization request.")));
        }
        if !flow.oidc_context.id_token_hint_claims.is_empty() {
            let hinted = flow
                .oidc_context
                .id_token_hint_claims
                .get("sub")
                .and_then(|v| v.as_str());
            let seen =
                self.subject_for(&req.client, &login.subject, &login.force_subject_identifier)?;
            if hinted != Some(login.subject.as_str()) && hinted != Some(seen.as_str()) {
                return Err(Stop::from(OAuthError::login_required()
                    .hint("Request failed because subject claim from id_token_hint does not match subject from authentication session.")));
            }
        }
        let mut set = Vec::new();
        if !flow.login_skip {
            let (lifetime, max_age) = self.remembered_lifetime(login.remember_for);
            let session = LoginSession {
                id: flow.login_session_id.clone(),
                subject: login.subject.clone(),
                authenticated_at: login.authenticated_at,
                remember: login.remember,
                expires_at: self.now().saturating_add(lifetime),
            };
            if login.remember {
                self.store.upsert_login_session(&session).await?;
                set.push(CookieOp::Session {
                    sid: session.id,
                    max_age,
                });
            } else if cookies.session.is_some() {
                // A fresh, unremembered login replaces the remembered one (prompt=login,
                // max_age): forget the old session.
                if let Some(old) = &cookies.session {
                    self.store.delete_login_session(old).await?;
                }
                set.push(CookieOp::ClearSession);
            }
        }
        flow.subject = login.subject.clone();
        let mut out = self.request_consent(req, &mut flow).await?;
        set.append(&mut out.cookies);
        out.cookies = set;
        Ok(out)
    }

    /// How long a remembered login skips the login app on the server, and the cookie's
    /// Max-Age (0 = browser-session cookie). `remember_for` > 0 is bounded by
    /// `ttl.authentication_session` (Hydra >= 2, consent/strategy_default.go takes the same
    /// minimum); 0 keeps Hydra 1.9.2's browser-session cookie, and the server ends the session
    /// after `ttl.authentication_session` even if the browser keeps the cookie.
    fn remembered_lifetime(&self, remember_for: i64) -> (i64, i64) {
        let bound = self.settings.authorize.ttl_auth_session;
        if remember_for > 0 {
            let t = remember_for.min(bound);
            (t, t)
        } else {
            (bound, 0)
        }
    }

    /// After a verified login: decide whether a remembered consent covers this request, then
    /// hand over to the consent app (which is called even when it may skip).
    async fn request_consent(
        &self,
        req: &AuthRequest,
        flow: &mut Flow,
    ) -> Result<Redirect, OAuthError> {
        let now = self.now();
        let mut skip = false;
        let public_insecure = req.client.is_public()
            && !(req.redirect_uri.scheme() == "https"
                || (req.redirect_uri.scheme() == "http" && redirect::is_local(&req.redirect_uri)));
        if !req.prompts(Prompt::Consent) && !public_insecure {
            if let Some(prev) = self
                .store
                .latest_remembered_consent(&flow.subject, &flow.client_id)
                .await?
            {
                let expires = prev.consent_expires_at();
                if expires == 0 || expires >= now {
                    if let Some(c) = &prev.consent {
                        skip = flow
                            .requested_scope
                            .iter()
                            .all(|s| self.settings.scope_strategy.allows(&c.grant_scope, s));
                    }
                }
            }
        }
        if req.prompts(Prompt::None) && !skip {
            return Err(OAuthError::consent_required()
                .hint("Prompt 'none' was requested, but no previous consent was found."));
        }
        flow.consent_challenge = new_id();
        flow.consent_verifier = new_id();
        flow.consent_csrf = new_id();
        flow.consent_skip = skip;
        if !self
            .store
            .transition_flow(
                flow,
                (FlowState::LoginUsed, FlowState::LoginUsed),
                FlowState::ConsentUnhandled,
            )
            .await?
        {
            return Err(
                OAuthError::invalid_request().hint("The login verifier has already been used.")
            );
        }
        Ok(Redirect::to(
            self.settings
                .authorize
                .consent_url
                .with_query(&[("consent_challenge".into(), flow.consent_challenge.clone())]),
            vec![CookieOp::ConsentCsrf(flow.consent_csrf.clone())],
        ))
    }

    pub(super) async fn verify_consent(
        &self,
        req: &AuthRequest,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<Redirect, Stop> {
        let (flow, consent) = self.spent_consent(req, verifier, cookies).await?;
        let session = self.code_session(req, &flow, &consent)?;
        let pairs = self
            .authorization_response(req, &flow, &consent, &session)
            .await?;
        Ok(to_client(&req.redirect_uri, pairs, req.mode))
    }

    /// The consent verifier spent, the flow fresh, not denied, in this browser, for this client.
    async fn spent_consent(
        &self,
        req: &AuthRequest,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<(Flow, ConsentResult), Stop> {
        let flow = self.spend_verifier(verifier, true).await?;
        self.check_fresh(&flow, "consent")?;
        let consent = flow
            .consent
            .clone()
            .ok_or_else(|| Self::unknown_verifier("consent"))?;
        if let Some(d) = &consent.denial {
            return Err(Stop::Rejected(denial_error(d)));
        }
        Self::check_csrf(&flow.consent_csrf, cookies.consent_csrf.as_ref(), "consent")?;
        if flow.client_id != req.client.client_id {
            return Err(Stop::from(OAuthError::invalid_request().hint(
                "The consent verifier was issued for another OAuth 2.0 Client.",
            )));
        }
        Ok((flow, consent))
    }

    /// The session the authorization code (and front-channel tokens) carry.
    fn code_session(
        &self,
        req: &AuthRequest,
        flow: &Flow,
        consent: &ConsentResult,
    ) -> Result<TokenSession, OAuthError> {
        let login = flow.login.clone().unwrap_or_default();
        let now = self.now();
        let mut acr = login.acr.clone();
        if acr.is_empty() && !flow.oidc_context.acr_values.is_empty() {
            acr = "0".into();
        }
        let seen_subject =
            self.subject_for(&req.client, &login.subject, &login.force_subject_identifier)?;
        let obfuscated_subject = if req.client.is_pairwise() {
            seen_subject.clone()
        } else {
            String::new()
        };
        let id_token = IdTokenClaims {
            subject: seen_subject,
            auth_time: login.authenticated_at,
            requested_at: flow.requested_at,
            nonce: req.nonce.clone(),
            acr,
            sid: flow.login_session_id.clone(),
            extra: consent.id_token_claims.clone(),
        };
        Ok(TokenSession {
            client_id: flow.client_id.clone(),
            subject: login.subject.clone(),
            obfuscated_subject,
            requested_scope: flow.requested_scope.clone(),
            granted_scope: consent.grant_scope.clone(),
            requested_audience: flow.requested_audience.clone(),
            granted_audience: consent.grant_access_token_audience.clone(),
            requested_at: now,
            issued_at: now,
            expires_at: now + self.settings.authorize.ttl_code,
            ext: consent.access_token_claims.clone(),
            id_token: Some(id_token),
            redirect_uri: req.redirect_param.clone(),
            code_challenge: req.code_challenge.clone(),
        })
    }

    /// Issues what the response type asks for (code, access token, ID token) and returns the
    /// response parameters.
    async fn authorization_response(
        &self,
        req: &AuthRequest,
        flow: &Flow,
        consent: &ConsentResult,
        session: &TokenSession,
    ) -> Result<Vec<(String, String)>, OAuthError> {
        let mut pairs = Vec::new();
        let mut code = None;
        if req.wants(ResponseType::Code) {
            let (c, row) = self.mint(TokenKind::Code, &flow.consent_challenge, session)?;
            self.write_token(row).await?;
            pairs.push(("code".to_string(), c.clone()));
            code = Some(c);
        }
        let mut access = None;
        if req.wants(ResponseType::Token) {
            let t = self
                .implicit_access_token(&flow.consent_challenge, session)
                .await?;
            pairs.push(("access_token".to_string(), t.clone()));
            pairs.push((
                "expires_in".to_string(),
                self.settings.ttl_access.to_string(),
            ));
            pairs.push(("token_type".to_string(), "bearer".to_string()));
            access = Some(t);
        }
        if req.wants(ResponseType::IdToken) && consent.grant_scope.iter().any(|s| s == "openid") {
            let jwt = self
                .id_token(&req.client, session, access.as_deref(), code.as_deref())
                .await?;
            pairs.push(("id_token".to_string(), jwt));
        }
        pairs.push(("scope".to_string(), consent.grant_scope.join(" ")));
        pairs.push(("state".into(), req.state.clone()));
        Ok(pairs)
    }

    /// An access token in the front channel (implicit grant), stored with the code's session.
    async fn implicit_access_token(
        &self,
        request_id: &str,
        session: &TokenSession,
    ) -> Result<String, OAuthError> {
        let mut s = session.clone();
        s.expires_at = self.now() + self.settings.ttl_access;
        s.redirect_uri.clear();
        s.code_challenge.clear();
        let (t, row) = self.mint_access(request_id, &s).await?;
        self.write_token(row).await?;
        self.metrics
            .tokens_issued
            .with_label_values(&[GrantType::Implicit.as_str()])
            .inc();
        Ok(t)
    }
}

/// A stored denial as the OAuth error the client receives (consent/types.go toRFCError).
fn denial_error(d: &crate::domain::flow::Denial) -> OAuthError {
    let name = if d.error.is_empty() {
        "request_denied"
    } else {
        &d.error
    };
    let status = if d.status_code == 0 {
        400
    } else {
        d.status_code
    };
    OAuthError::custom(
        name,
        &d.error_description,
        &d.error_hint,
        &d.error_debug,
        status,
    )
}
