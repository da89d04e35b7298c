//! `GET|POST /oauth2/auth`: request validation, then the login/consent state machine of
//! `consent.rs` (consent/strategy_default.go). Every outcome is a redirect, errors included: to
//! the client when its redirect URI is valid, else to `urls.error`.
use super::types::{BrowserCookies, Redirect};
use super::{client_scopes, OAuth2};
use crate::domain::client::Client;
use crate::domain::flow::OidcContext;
use crate::domain::protocol::{
    GrantType, Prompt, Prompts, ResponseMode, ResponseType, ResponseTypes,
};
use crate::oauth2::redirect::{self, with_params};
use crate::oauth2::scope::ScopeStrategy;
use crate::oauth2::{pkce, scope, split_spaces, OAuthError};
use std::sync::Arc;
use url::Url;

/// Kept for the modules that still name the parameters by their old home.
pub(super) use super::types::Params;

/// The `response_mode` parameter; an empty one defaults by response type (query for `code`,
/// fragment when tokens travel in the front channel). None for unknown modes.
fn response_mode(raw: &str, response_type: &[String]) -> Option<ResponseMode> {
    match raw {
        "" if response_type == [ResponseType::Code.as_str()] => Some(ResponseMode::Query),
        "" => Some(ResponseMode::Fragment),
        _ => raw.parse().ok(),
    }
}

/// The authorization response (or error) for the client, delivered in `mode`.
pub(super) fn to_client(uri: &Url, pairs: Vec<(String, String)>, mode: ResponseMode) -> Redirect {
    match mode {
        ResponseMode::FormPost => Redirect::form_post(uri.to_string(), pairs),
        ResponseMode::Query | ResponseMode::Fragment => Redirect::to(
            with_params(uri, &pairs, mode == ResponseMode::Fragment),
            vec![],
        ),
    }
}

/// A validated authorization request.
pub(super) struct AuthRequest {
    pub client: Arc<Client>,
    pub redirect_uri: Url,
    /// The `redirect_uri` parameter as sent ("" when omitted): the token request must repeat it.
    pub redirect_param: String,
    pub mode: ResponseMode,
    pub state: String,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
    /// Empty when a value is unknown (`check_prompt` refuses the request then).
    pub prompt: Prompts,
    pub max_age: i64,
    pub nonce: String,
    pub id_token_hint: String,
    pub oidc: OidcContext,
    pub code_challenge: String,
    /// Requested response types, lower-cased and sorted, as sent.
    pub response_words: Vec<String>,
    /// The same as a set; empty when a word is unknown (`check_response_type` refuses the
    /// request then).
    pub response_types: ResponseTypes,
}

impl AuthRequest {
    pub fn prompts(&self, value: Prompt) -> bool {
        self.prompt.contains(value)
    }

    pub fn wants(&self, response_type: ResponseType) -> bool {
        self.response_types.contains(response_type)
    }
}

/// Why the verification of a login or consent stopped: the login or consent app rejected the
/// request (its denial goes back to the client), or anything else went wrong.
pub(super) enum Stop {
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
        let mut pairs = e.params(s.errors.legacy, s.errors.expose_debug);
        let redirect = match target {
            Target::ErrorPage => Redirect::to(s.authorize.error_url.with_query(&pairs), vec![]),
            Target::Client(r) => {
                if !r.state.is_empty() {
                    pairs.push(("state".into(), r.state.clone()));
                }
                to_client(&r.redirect_uri, pairs, r.mode)
            }
        };
        redirect.failed(e.cause)
    }

    /// fosite NewAuthorizeRequest: client, request object, redirect URI, then the validators
    /// of `check_request`. Errors carry the request once the redirect URI is known to be
    /// valid, so they can go back to the client.
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
        let req = read_request(p, client, redirect_uri);
        match check_request(&req, p, self.request_policy()) {
            Ok(()) => Ok(req),
            Err(e) => Err((e, Some(req))),
        }
    }

    /// What the validators read of the settings.
    fn request_policy(&self) -> RequestPolicy {
        let s = &self.settings;
        RequestPolicy {
            scope_strategy: s.scope_strategy,
            pkce_enforced: s.authorize.pkce_enforced,
            pkce_enforced_for_public: s.authorize.pkce_enforced_for_public,
        }
    }
}

/// The settings the request validators read.
#[derive(Debug, Clone, Copy)]
struct RequestPolicy {
    scope_strategy: ScopeStrategy,
    pkce_enforced: bool,
    pkce_enforced_for_public: bool,
}

/// The validators, in the order their errors have always been reported.
fn check_request(req: &AuthRequest, p: &Params, policy: RequestPolicy) -> Result<(), OAuthError> {
    let response_type = split_spaces(p.get("response_type"));
    check_response_mode(p, &response_type)?;
    if !p.get("registration").is_empty() {
        return Err(OAuthError::registration_not_supported());
    }
    check_scope(req, policy.scope_strategy)?;
    check_audience(req)?;
    check_response_type(req, &response_type)?;
    if !req.response_types.is_code_only() {
        check_front_channel(req)?;
    }
    check_state(req)?;
    check_prompt(p)?;
    if req.wants(ResponseType::Code) {
        let enforced =
            policy.pkce_enforced || (policy.pkce_enforced_for_public && req.client.is_public());
        pkce::check_challenge(
            &req.code_challenge,
            p.get("code_challenge_method"),
            enforced,
        )?;
    }
    Ok(())
}

fn check_scope(req: &AuthRequest, strategy: ScopeStrategy) -> Result<(), OAuthError> {
    let allowed = client_scopes(&req.client);
    match strategy.first_denied(&allowed, &req.scopes) {
        Some(s) => Err(OAuthError::invalid_scope().hint(format!(
            "The OAuth 2.0 Client is not allowed to request scope '{s}'."
        ))),
        None => Ok(()),
    }
}

/// The request's parameters as read, before any validation.
fn read_request(p: &Params, client: Arc<Client>, redirect_uri: Url) -> AuthRequest {
    let response_type = split_spaces(p.get("response_type"));
    // An unknown mode is refused by check_request; its error travels in the fragment.
    let mode =
        response_mode(p.get("response_mode"), &response_type).unwrap_or(ResponseMode::Fragment);
    let mut response_words: Vec<String> = response_type.iter().map(|s| s.to_lowercase()).collect();
    response_words.sort();
    let response_types =
        ResponseTypes::parse(response_words.iter().map(String::as_str)).unwrap_or_default();
    AuthRequest {
        redirect_param: p.get("redirect_uri").to_string(),
        redirect_uri,
        mode,
        state: p.get("state").to_string(),
        scopes: split_spaces(p.get("scope")),
        audience: p.all("audience").flat_map(split_spaces).collect(),
        max_age: p.get("max_age").parse().unwrap_or(0),
        nonce: p.get("nonce").to_string(),
        id_token_hint: p.get("id_token_hint").to_string(),
        oidc: OidcContext {
            acr_values: split_spaces(p.get("acr_values")),
            display: p.get("display").to_string(),
            id_token_hint_claims: Default::default(),
            login_hint: p.get("login_hint").to_string(),
            ui_locales: split_spaces(p.get("ui_locales")),
        },
        code_challenge: p.get("code_challenge").to_string(),
        response_words,
        response_types,
        prompt: Prompts::parse(split_spaces(p.get("prompt")).iter().map(String::as_str))
            .unwrap_or_default(),
        client,
    }
}

fn check_response_mode(p: &Params, response_type: &[String]) -> Result<(), OAuthError> {
    match response_mode(p.get("response_mode"), response_type) {
        Some(_) => Ok(()),
        None => Err(OAuthError::unsupported_response_mode().hint(format!(
            "Request with unsupported response_mode '{}'.",
            p.get("response_mode")
        ))),
    }
}

fn check_audience(req: &AuthRequest) -> Result<(), OAuthError> {
    match scope::first_denied_audience(&req.client.audience, &req.audience) {
        Some(a) => Err(OAuthError::invalid_request().hint(format!(
            "Requested audience '{a}' has not been whitelisted by the OAuth 2.0 Client."
        ))),
        None => Ok(()),
    }
}

/// The combination must be registered for the client, and made of types this server knows.
fn check_response_type(req: &AuthRequest, response_type: &[String]) -> Result<(), OAuthError> {
    let wanted = &req.response_words;
    let registered = req.client.response_type_combinations().iter().any(|rt| {
        let mut have: Vec<String> = split_spaces(rt).iter().map(|s| s.to_lowercase()).collect();
        have.sort();
        &have == wanted
    });
    if wanted.is_empty() || !registered {
        return Err(OAuthError::unsupported_response_type().hint(format!(
            "The client is not allowed to request response_type '{}'.",
            response_type.join(" ")
        )));
    }
    match ResponseTypes::parse(wanted.iter().map(String::as_str)) {
        Ok(_) => Ok(()),
        Err(bad) => Err(OAuthError::unsupported_response_type()
            .hint(format!("The response type '{}' is not supported.", bad.0))),
    }
}

/// Implicit and hybrid flows (fosite handler/oauth2 flow_authorize_implicit.go, handler/openid
/// flow_implicit.go and flow_hybrid.go): no tokens in a query, the implicit grant, the nonce.
fn check_front_channel(req: &AuthRequest) -> Result<(), OAuthError> {
    if req.mode == ResponseMode::Query {
        return Err(OAuthError::unsupported_response_mode().hint(
            "Insecure response_mode 'query' for a response type that returns tokens in the front channel.",
        ));
    }
    check_implicit_grant(req)?;
    let openid = req.scopes.iter().any(|s| s == "openid");
    if req.wants(ResponseType::IdToken) && !openid {
        return Err(OAuthError::unsupported_response_type()
            .hint("The response type 'id_token' requires the 'openid' scope."));
    }
    if openid {
        check_nonce(&req.nonce)?;
    }
    Ok(())
}

/// Tokens in the front channel are the implicit grant: `token` in any combination
/// (flow_authorize_implicit.go, flow_hybrid.go) and an ID token without a code (`id_token`,
/// `id_token token`: openid/flow_implicit.go). Hybrid `code id_token` needs only
/// authorization_code, as in fosite. fosite answers invalid_grant after login and consent;
/// refusing before any user interaction ends in the same redirect to the client.
fn check_implicit_grant(req: &AuthRequest) -> Result<(), OAuthError> {
    let implicit = req.wants(ResponseType::Token)
        || (!req.wants(ResponseType::Code) && req.wants(ResponseType::IdToken));
    if implicit && !req.client.allows_grant(GrantType::Implicit) {
        return Err(OAuthError::invalid_grant().hint(
            "The OAuth 2.0 Client is not allowed to use the authorization grant 'implicit'.",
        ));
    }
    Ok(())
}

fn check_nonce(nonce: &str) -> Result<(), OAuthError> {
    if nonce.is_empty() {
        return Err(OAuthError::invalid_request().hint(
            "Parameter 'nonce' must be set when using the OpenID Connect Implicit or Hybrid flow.",
        ));
    }
    if nonce.chars().count() < 8 {
        return Err(OAuthError::custom(
            "insufficient_entropy",
            "The request used a security parameter (e.g., anti-replay, anti-csrf) with insufficient entropy.",
            "Parameter 'nonce' is set but does not satisfy the minimum entropy of 8 characters.",
            "",
            400,
        ));
    }
    Ok(())
}

fn check_state(req: &AuthRequest) -> Result<(), OAuthError> {
    if req.state.chars().count() < 8 {
        return Err(OAuthError::invalid_state().hint("Request parameter 'state' must be at least 8 characters long to ensure sufficient entropy."));
    }
    Ok(())
}

fn check_prompt(p: &Params) -> Result<(), OAuthError> {
    let words = split_spaces(p.get("prompt"));
    let prompt = Prompts::parse(words.iter().map(String::as_str)).map_err(|bad| {
        OAuthError::invalid_request().hint(format!(
            "Used unknown value '{}' for prompt parameter.",
            bad.0
        ))
    })?;
    if prompt.contains(Prompt::None) && prompt.len() > 1 {
        return Err(OAuthError::invalid_request()
            .hint("Parameter 'prompt' was set to 'none', but contains other values as well which is not allowed."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);

    const POLICY: RequestPolicy = RequestPolicy {
        scope_strategy: ScopeStrategy::Exact,
        pkce_enforced: false,
        pkce_enforced_for_public: true,
    };

    fn client(grants: &[&str], auth: &str) -> Arc<Client> {
        Arc::new(Client {
            client_id: "c".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            response_types: ["code", "code id_token", "token", "id_token"]
                .map(String::from)
                .to_vec(),
            grant_types: grants.iter().map(|g| g.to_string()).collect(),
            scope: "openid offline".into(),
            audience: vec!["https://api.example".into()],
            token_endpoint_auth_method: auth.into(),
            ..Client::default()
        })
    }

    /// The error of the first rule the request breaks (`error: hint`), or None.
    fn verdict(client: Arc<Client>, pairs: &[(&str, &str)]) -> Option<String> {
        let base = [("state", "abcdefgh"), ("response_type", "code")];
        let mut p = Params(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        for (k, v) in base {
            if !pairs.iter().any(|(name, _)| *name == k) {
                p.0.push((k.into(), v.into()));
            }
        }
        let uri = Url::parse("https://app.example/cb").unwrap();
        let req = read_request(&p, client, uri);
        check_request(&req, &p, POLICY)
            .err()
            .map(|e| format!("{}: {}", e.name, e.hint))
    }

    #[test]
    fn authorization_requests_are_checked_in_order() {
        let confidential = || client(&["authorization_code"], "client_secret_basic");
        let cases: &[Case] = &[
            (&[], None),
            // The response mode comes first, even before a bad scope.
            (
                &[("response_mode", "web_message"), ("scope", "admin")],
                Some("unsupported_response_mode"),
            ),
            (&[("registration", "{}")], Some("registration_not_supported")),
            (&[("scope", "openid admin")], Some("invalid_scope")),
            (
                &[("audience", "https://other.example")],
                Some("invalid_request: Requested audience"),
            ),
            (
                &[("response_type", "code token id_token")],
                Some("unsupported_response_type: The client is not allowed"),
            ),
            // None at all.
            (&[("response_type", "")], Some("unsupported_response_type")),
            (
                &[("response_type", "token"), ("response_mode", "query")],
                Some("unsupported_response_mode: Insecure"),
            ),
            (
                &[("response_type", "token")],
                Some("invalid_grant: The OAuth 2.0 Client is not allowed to use the authorization grant 'implicit'."),
            ),
            // Hybrid `code id_token` needs no implicit grant, but openid and a long nonce.
            (
                &[("response_type", "code id_token"), ("scope", "offline")],
                Some("unsupported_response_type: The response type 'id_token' requires"),
            ),
            (
                &[("response_type", "code id_token"), ("scope", "openid")],
                Some("invalid_request: Parameter 'nonce' must be set"),
            ),
            (
                &[("response_type", "code id_token"), ("scope", "openid"), ("nonce", "short")],
                Some("insufficient_entropy"),
            ),
            (
                &[("response_type", "code id_token"), ("scope", "openid"), ("nonce", "long-enough")],
                None,
            ),
            (&[("state", "short")], Some("invalid_state")),
            (&[("prompt", "select_account")], Some("invalid_request: Used unknown value 'select_account'")),
            (&[("prompt", "none login")], Some("invalid_request: Parameter 'prompt' was set to 'none'")),
            (&[("prompt", "login consent")], None),
        ];
        for (pairs, expected) in cases {
            let got = verdict(confidential(), pairs);
            match expected {
                None => assert_eq!(got, None, "{pairs:?}"),
                Some(want) => assert!(
                    got.as_deref().is_some_and(|g| g.starts_with(want)),
                    "{pairs:?}: got {got:?}, want {want}"
                ),
            }
        }
    }

    #[test]
    fn implicit_clients_and_public_pkce() {
        let implicit = client(&["authorization_code", "implicit"], "client_secret_basic");
        assert_eq!(
            verdict(implicit.clone(), &[("response_type", "token")]),
            None
        );
        assert!(verdict(
            implicit,
            &[("response_type", "id_token"), ("scope", "openid")]
        )
        .is_some_and(|e| e.contains("'nonce' must be set")));
        // PKCE is enforced for public clients only (POLICY), and only when a code is issued.
        let public = client(&["authorization_code", "implicit"], "none");
        assert!(verdict(public.clone(), &[]).is_some_and(|e| e.starts_with("invalid_request")));
        assert_eq!(
            verdict(
                public.clone(),
                &[
                    (
                        "code_challenge",
                        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
                    ),
                    ("code_challenge_method", "S256")
                ]
            ),
            None
        );
        assert_eq!(verdict(public, &[("response_type", "token")]), None);
    }

    #[test]
    fn the_response_mode_defaults_by_response_type() {
        let code = ["code".to_string()];
        let hybrid = ["code".to_string(), "id_token".to_string()];
        assert_eq!(response_mode("", &code), Some(ResponseMode::Query));
        assert_eq!(response_mode("", &hybrid), Some(ResponseMode::Fragment));
        assert_eq!(
            response_mode("form_post", &code),
            Some(ResponseMode::FormPost)
        );
        assert_eq!(response_mode("web_message", &code), None);
    }
}
