//! `GET|POST /oauth2/auth`: request validation, then the login/consent state machine
//! (consent/strategy_default.go): request login → verify login → request consent → verify
//! consent → issue the code. Every outcome is a redirect, errors included: to the client when
//! its redirect URI is valid, else to `urls.error`.
use super::{client_scopes, new_id, response_types, OAuth2};
use crate::domain::client::Client;
use crate::domain::flow::{Flow, FlowState, LoginSession, OidcContext};
use crate::domain::token::{IdTokenClaims, TokenKind, TokenSession};
use crate::oauth2::{pkce, redirect, scope, split_spaces, OAuthError};
use std::sync::Arc;
use url::Url;

/// Query and form parameters, in order.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The flow cookies the browser sent, already authenticated and decrypted by the HTTP edge.
#[derive(Debug, Default, Clone)]
pub struct BrowserCookies {
    pub login_csrf: Option<String>,
    pub consent_csrf: Option<String>,
    pub session: Option<String>,
}

/// Cookies to set; names, flags and encryption are the HTTP edge's business.
#[derive(Debug, Clone, PartialEq)]
pub enum CookieOp {
    LoginCsrf(String),
    ConsentCsrf(String),
    /// Remembered login; `max_age` 0 makes it a browser-session cookie.
    Session {
        sid: String,
        max_age: i64,
    },
    ClearSession,
}

#[derive(Debug, Clone)]
pub struct Redirect {
    pub location: String,
    pub cookies: Vec<CookieOp>,
    /// `response_mode=form_post`: instead of a redirect, a page that POSTs these fields to
    /// `location` (OAuth 2.0 Form Post Response Mode; fosite authorize_write.go).
    pub form: Option<Vec<(String, String)>>,
}

impl Redirect {
    /// A plain redirect (to the login, consent or error page).
    fn to(location: String, cookies: Vec<CookieOp>) -> Redirect {
        Redirect {
            location,
            cookies,
            form: None,
        }
    }

    /// The authorization response (or error) for the client, delivered in `mode`.
    fn to_client(uri: &Url, pairs: Vec<(String, String)>, mode: ResponseMode) -> Redirect {
        match mode {
            ResponseMode::FormPost => Redirect {
                location: uri.to_string(),
                cookies: vec![],
                form: Some(pairs),
            },
            ResponseMode::Query | ResponseMode::Fragment => Redirect::to(
                with_params(uri.as_str(), &pairs, mode == ResponseMode::Fragment),
                vec![],
            ),
        }
    }
}

/// How the authorization response reaches the client's redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    /// The `response_mode` parameter; an empty one defaults by response type (query for
    /// `code`, fragment when tokens travel in the front channel). None for unknown modes.
    fn parse(raw: &str, response_type: &[String]) -> Option<ResponseMode> {
        match raw {
            "" if response_type == ["code"] => Some(ResponseMode::Query),
            "" => Some(ResponseMode::Fragment),
            "query" => Some(ResponseMode::Query),
            "fragment" => Some(ResponseMode::Fragment),
            "form_post" => Some(ResponseMode::FormPost),
            _ => None,
        }
    }
}

/// A validated authorization request.
struct AuthRequest {
    client: Arc<Client>,
    redirect_uri: Url,
    /// The `redirect_uri` parameter as sent ("" when omitted): the token request must repeat it.
    redirect_param: String,
    mode: ResponseMode,
    state: String,
    scopes: Vec<String>,
    audience: Vec<String>,
    prompt: Vec<String>,
    max_age: i64,
    nonce: String,
    id_token_hint: String,
    oidc: OidcContext,
    code_challenge: String,
    /// Requested response types, lower-cased and sorted.
    response_types: Vec<String>,
}

/// Why the verification of a login or consent stopped: the login or consent app rejected the
/// request (its denial goes back to the client), or anything else went wrong.
enum Stop {
    Rejected(OAuthError),
    Failed(OAuthError),
}

impl From<OAuthError> for Stop {
    fn from(e: OAuthError) -> Stop {
        Stop::Failed(e)
    }
}

impl From<crate::store::StoreError> for Stop {
    fn from(e: crate::store::StoreError) -> Stop {
        Stop::Failed(e.into())
    }
}

/// Where an error goes: the client (redirect URI verified) or the error page.
enum Target<'a> {
    ErrorPage,
    Client(&'a AuthRequest),
}

impl OAuth2 {
    /// Handles one hit of the authorization endpoint.
    pub async fn authorize(
        &self,
        params: &Params,
        raw_query: &str,
        cookies: &BrowserCookies,
    ) -> Redirect {
        let req = match self.parse_request(params).await {
            Ok(r) => r,
            Err((e, target)) => {
                self.metrics.flows.with_label_values(&["failed"]).inc();
                return match target {
                    None => self.error_redirect(e, Target::ErrorPage),
                    Some(r) => self.error_redirect(e, Target::Client(&r)),
                };
            }
        };
        let (step, result) = if !params.get("login_verifier").trim().is_empty() {
            let r = self
                .verify_login(&req, params.get("login_verifier").trim(), cookies)
                .await;
            ("consent_requested", r)
        } else if !params.get("consent_verifier").trim().is_empty() {
            let r = self
                .verify_consent(&req, params.get("consent_verifier").trim(), cookies)
                .await;
            ("completed", r)
        } else {
            let r = self.request_login(&req, params, raw_query, cookies).await;
            ("login_requested", r.map_err(Stop::Failed))
        };
        let (outcome, redirect) = match result {
            Ok(r) => (step, r),
            Err(Stop::Rejected(e)) => ("rejected", self.error_redirect(e, Target::Client(&req))),
            Err(Stop::Failed(e)) => ("failed", self.error_redirect(e, Target::Client(&req))),
        };
        self.metrics.flows.with_label_values(&[outcome]).inc();
        redirect
    }

    fn error_redirect(&self, e: OAuthError, target: Target<'_>) -> Redirect {
        let s = &self.settings;
        let mut pairs = e.params(s.legacy_errors, s.expose_debug);
        match target {
            Target::ErrorPage => Redirect::to(with_params(&s.error_url, &pairs, false), vec![]),
            Target::Client(r) => {
                if !r.state.is_empty() {
                    pairs.push(("state".into(), r.state.clone()));
                }
                Redirect::to_client(&r.redirect_uri, pairs, r.mode)
            }
        }
    }

    /// fosite NewAuthorizeRequest: client, redirect URI, response mode, scopes, audience,
    /// response type, state, PKCE, prompt. Errors carry the request once the redirect URI is
    /// known to be valid, so they can go back to the client.
    async fn parse_request(
        &self,
        p: &Params,
    ) -> Result<AuthRequest, (OAuthError, Option<AuthRequest>)> {
        let client = self
            .known_client(p.get("client_id"))
            .await
            .map_err(|e| (e, None))?;
        // A request object's claims replace the parameters (fosite reads it right after the
        // client, before the redirect URI).
        let from_object = self
            .with_request_object(&client, p)
            .await
            .map_err(|e| (e, None))?;
        let p = from_object.as_ref().unwrap_or(p);
        let redirect_uri = redirect::resolve(p.get("redirect_uri"), &client.redirect_uris)
            .map_err(|e| (e, None))?;
        let response_type = split_spaces(p.get("response_type"));
        // An unknown mode is refused by check_request; its error travels in the fragment.
        let mode = ResponseMode::parse(p.get("response_mode"), &response_type)
            .unwrap_or(ResponseMode::Fragment);
        let prompt = split_spaces(p.get("prompt"));
        let audience: Vec<String> = p.all("audience").flat_map(split_spaces).collect();
        let oidc = OidcContext {
            acr_values: split_spaces(p.get("acr_values")),
            display: p.get("display").to_string(),
            id_token_hint_claims: Default::default(),
            login_hint: p.get("login_hint").to_string(),
            ui_locales: split_spaces(p.get("ui_locales")),
        };
        let req = AuthRequest {
            redirect_param: p.get("redirect_uri").to_string(),
            redirect_uri,
            mode,
            state: p.get("state").to_string(),
            scopes: split_spaces(p.get("scope")),
            audience,
            max_age: p.get("max_age").parse().unwrap_or(0),
            nonce: p.get("nonce").to_string(),
            id_token_hint: p.get("id_token_hint").to_string(),
            oidc,
            code_challenge: p.get("code_challenge").to_string(),
            response_types: {
                let mut r: Vec<String> = response_type.iter().map(|s| s.to_lowercase()).collect();
                r.sort();
                r
            },
            prompt,
            client,
        };
        match self.check_request(&req, p, &response_type) {
            Ok(()) => Ok(req),
            Err(e) => Err((e, Some(req))),
        }
    }

    fn check_request(
        &self,
        req: &AuthRequest,
        p: &Params,
        response_type: &[String],
    ) -> Result<(), OAuthError> {
        if ResponseMode::parse(p.get("response_mode"), response_type).is_none() {
            return Err(OAuthError::unsupported_response_mode().hint(format!(
                "Request with unsupported response_mode '{}'.",
                p.get("response_mode")
            )));
        }
        if !p.get("registration").is_empty() {
            return Err(OAuthError::registration_not_supported());
        }
        let allowed = client_scopes(&req.client);
        if let Some(s) = self
            .settings
            .scope_strategy
            .first_denied(&allowed, &req.scopes)
        {
            return Err(OAuthError::invalid_scope().hint(format!(
                "The OAuth 2.0 Client is not allowed to request scope '{s}'."
            )));
        }
        if let Some(a) = scope::first_denied_audience(&req.client.audience, &req.audience) {
            return Err(OAuthError::invalid_request().hint(format!(
                "Requested audience '{a}' has not been whitelisted by the OAuth 2.0 Client."
            )));
        }
        let mut wanted: Vec<String> = response_type.iter().map(|s| s.to_lowercase()).collect();
        wanted.sort();
        let registered = response_types(&req.client).iter().any(|rt| {
            let mut have: Vec<String> = split_spaces(rt).iter().map(|s| s.to_lowercase()).collect();
            have.sort();
            have == wanted
        });
        if wanted.is_empty() || !registered {
            return Err(OAuthError::unsupported_response_type().hint(format!(
                "The client is not allowed to request response_type '{}'.",
                response_type.join(" ")
            )));
        }
        if let Some(bad) = wanted
            .iter()
            .find(|w| !matches!(w.as_str(), "code" | "token" | "id_token"))
        {
            return Err(OAuthError::unsupported_response_type()
                .hint(format!("The response type '{bad}' is not supported.")));
        }
        if wanted != ["code"] {
            // Implicit and hybrid flows (fosite handler/oauth2 flow_authorize_implicit.go,
            // handler/openid flow_implicit.go and flow_hybrid.go).
            if p.get("response_mode") == "query" {
                return Err(OAuthError::unsupported_response_mode().hint(
                    "Insecure response_mode 'query' for a response type that returns tokens in the front channel.",
                ));
            }
            // Tokens in the front channel are the implicit grant: `token` in any combination
            // (flow_authorize_implicit.go, flow_hybrid.go) and an ID token without a code
            // (`id_token`, `id_token token`: openid/flow_implicit.go). Hybrid `code id_token`
            // needs only authorization_code, as in fosite. fosite answers invalid_grant after
            // login and consent; refusing before any user interaction ends in the same
            // redirect to the client.
            let front_channel_only = !wanted.iter().any(|w| w == "code");
            let implicit = wanted.iter().any(|w| w == "token")
                || (front_channel_only && wanted.iter().any(|w| w == "id_token"));
            if implicit && !super::grant_types(&req.client).contains(&"implicit") {
                return Err(OAuthError::invalid_grant().hint(
                    "The OAuth 2.0 Client is not allowed to use the authorization grant 'implicit'.",
                ));
            }
            let openid = req.scopes.iter().any(|s| s == "openid");
            if wanted.iter().any(|w| w == "id_token") && !openid {
                return Err(OAuthError::unsupported_response_type()
                    .hint("The response type 'id_token' requires the 'openid' scope."));
            }
            if openid && req.nonce.is_empty() {
                return Err(OAuthError::invalid_request().hint(
                    "Parameter 'nonce' must be set when using the OpenID Connect Implicit or Hybrid flow.",
                ));
            }
            if openid && req.nonce.chars().count() < 8 {
                return Err(OAuthError::custom(
                    "insufficient_entropy",
                    "The request used a security parameter (e.g., anti-replay, anti-csrf) with insufficient entropy.",
                    "Parameter 'nonce' is set but does not satisfy the minimum entropy of 8 characters.",
                    "",
                    400,
                ));
            }
        }
        if req.state.chars().count() < 8 {
            return Err(OAuthError::invalid_state().hint("Request parameter 'state' must be at least 8 characters long to ensure sufficient entropy."));
        }
        if let Some(bad) = req
            .prompt
            .iter()
            .find(|p| !matches!(p.as_str(), "none" | "login" | "consent"))
        {
            return Err(OAuthError::invalid_request()
                .hint(format!("Used unknown value '{bad}' for prompt parameter.")));
        }
        if req.prompt.iter().any(|p| p == "none") && req.prompt.len() > 1 {
            return Err(OAuthError::invalid_request()
                .hint("Parameter 'prompt' was set to 'none', but contains other values as well which is not allowed."));
        }
        if !wanted.iter().any(|w| w == "code") {
            return Ok(());
        }
        let s = &self.settings;
        let enforced = s.pkce_enforced || (s.pkce_enforced_for_public && req.client.is_public());
        pkce::check_challenge(
            &req.code_challenge,
            p.get("code_challenge_method"),
            enforced,
        )
    }

    /// No verifier: find a remembered session, then hand over to the login app.
    async fn request_login(
        &self,
        req: &AuthRequest,
        params: &Params,
        raw_query: &str,
        cookies: &BrowserCookies,
    ) -> Result<Redirect, OAuthError> {
        let now = self.now();
        let none = req.prompt.iter().any(|p| p == "none");
        let mut session = None;
        if !req.prompt.iter().any(|p| p == "login") {
            if let Some(sid) = &cookies.session {
                // A captured cookie must not give silent SSO forever: past its stored expiry
                // the session is as good as absent (the browser's Max-Age is no bound).
                session = self
                    .store
                    .get_remembered_session(sid)
                    .await?
                    .filter(|s| s.is_live(now));
            }
        }
        if let Some(s) = &session {
            if req.max_age > 0 && s.authenticated_at + req.max_age < now {
                if none {
                    return Err(OAuthError::login_required()
                        .hint("Request failed because prompt is set to 'none' and authentication time reached 'max_age'."));
                }
                session = None;
            }
        }
        let mut oidc = req.oidc.clone();
        if !req.id_token_hint.is_empty() {
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
            if let Some(s) = &session {
                if s.subject != sub && self.subject_for(&req.client, &s.subject, "")? != sub {
                    return Err(OAuthError::login_required().hint(
                        "Request failed because subject claim from id_token_hint does not match subject from authentication session.",
                    ));
                }
            }
            if let serde_json::Value::Object(m) = claims {
                oidc.id_token_hint_claims = m;
            }
        }
        if none && session.is_none() {
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
        Ok(Redirect {
            form: None,
            location: with_params(
                &self.settings.login_url,
                &[("login_challenge".into(), flow.login_challenge.clone())],
                false,
            ),
            cookies: vec![CookieOp::LoginCsrf(flow.login_csrf)],
        })
    }

    /// The URL the login and consent apps send the browser back to: the authorization URL
    /// with the original parameters (POSTed ones included, so POST flows can resume).
    fn request_url(&self, params: &Params, raw_query: &str) -> String {
        let base = format!("{}oauth2/auth", self.settings.public_url);
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

    async fn verify_login(
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
        if req.prompt.iter().any(|p| p == "login") && login.authenticated_at < flow.requested_at {
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
        let bound = self.settings.ttl_auth_session;
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
        if !req.prompt.iter().any(|p| p == "consent") && !public_insecure {
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
        if req.prompt.iter().any(|p| p == "none") && !skip {
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
        Ok(Redirect {
            form: None,
            location: with_params(
                &self.settings.consent_url,
                &[("consent_challenge".into(), flow.consent_challenge.clone())],
                false,
            ),
            cookies: vec![CookieOp::ConsentCsrf(flow.consent_csrf.clone())],
        })
    }

    async fn verify_consent(
        &self,
        req: &AuthRequest,
        verifier: &str,
        cookies: &BrowserCookies,
    ) -> Result<Redirect, Stop> {
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
        let login = flow.login.clone().unwrap_or_default();
        let now = self.now();
        let mut acr = login.acr.clone();
        if acr.is_empty() && !flow.oidc_context.acr_values.is_empty() {
            acr = "0".into();
        }
        let seen_subject =
            self.subject_for(&req.client, &login.subject, &login.force_subject_identifier)?;
        let obfuscated_subject = if req.client.subject_type == "pairwise" {
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
        let session = TokenSession {
            client_id: flow.client_id.clone(),
            subject: login.subject.clone(),
            obfuscated_subject,
            requested_scope: flow.requested_scope.clone(),
            granted_scope: consent.grant_scope.clone(),
            requested_audience: flow.requested_audience.clone(),
            granted_audience: consent.grant_access_token_audience.clone(),
            requested_at: now,
            issued_at: now,
            expires_at: now + self.settings.ttl_code,
            ext: consent.access_token_claims.clone(),
            id_token: Some(id_token),
            redirect_uri: req.redirect_param.clone(),
            code_challenge: req.code_challenge.clone(),
        };
        let wants = |t: &str| req.response_types.iter().any(|r| r == t);
        let mut pairs = Vec::new();
        let mut code = None;
        if wants("code") {
            let (c, row) = self.mint(TokenKind::Code, &flow.consent_challenge, &session)?;
            self.write_token(row).await?;
            pairs.push(("code".to_string(), c.clone()));
            code = Some(c);
        }
        let mut access = None;
        if wants("token") {
            let mut s = session.clone();
            s.expires_at = now + self.settings.ttl_access;
            s.redirect_uri.clear();
            s.code_challenge.clear();
            let (t, row) = self.mint_access(&flow.consent_challenge, &s).await?;
            self.write_token(row).await?;
            pairs.push(("access_token".to_string(), t.clone()));
            pairs.push((
                "expires_in".to_string(),
                self.settings.ttl_access.to_string(),
            ));
            pairs.push(("token_type".to_string(), "bearer".to_string()));
            self.metrics
                .tokens_issued
                .with_label_values(&["implicit"])
                .inc();
            access = Some(t);
        }
        if wants("id_token") && consent.grant_scope.iter().any(|s| s == "openid") {
            let jwt = self
                .id_token(&req.client, &session, access.as_deref(), code.as_deref())
                .await?;
            pairs.push(("id_token".to_string(), jwt));
        }
        pairs.push(("scope".to_string(), consent.grant_scope.join(" ")));
        pairs.push(("state".into(), req.state.clone()));
        Ok(Redirect::to_client(&req.redirect_uri, pairs, req.mode))
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

/// `base` with `pairs` appended to its query (or put in its fragment), existing query kept.
pub fn with_params(base: &str, pairs: &[(String, String)], fragment: bool) -> String {
    let Ok(mut url) = Url::parse(base) else {
        return base.to_string();
    };
    if fragment {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        url.set_fragment(Some(&encoded));
    } else {
        url.query_pairs_mut().extend_pairs(pairs.iter());
    }
    url.to_string()
}
