//! Public OAuth 2.0 / OpenID Connect endpoints: authorize, token, revoke, userinfo, and the
//! built-in fallback pages used when no login, consent or error URL is configured.
use crate::domain::client::is_web_url;
use crate::http::error::{location, no_store, oauth_error, oauth_json, userinfo_error, with_cause};
use crate::http::extract::{basic_credentials, bearer_token, Form};
use crate::http::AppState;
use crate::oauth2::OAuthError;
use crate::service::oauth2::introspect::Userinfo;
use crate::service::oauth2::logout::LogoutOutcome;
use crate::service::oauth2::types::{Params, Redirect};
use crate::service::oauth2::ClientCredentials;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Routes that take CORS when enabled (x/oauth2cors), and the rest. With `dev`, the login,
/// consent and logout fallbacks are the demo app of `dev_ui.rs` instead of explanatory pages.
pub fn routers(dev: bool) -> (Router<AppState>, Router<AppState>) {
    let cors = Router::new()
        .route(
            "/oauth2/token",
            axum::routing::post(oauth2_token).options(preflight),
        )
        .route(
            "/oauth2/revoke",
            axum::routing::post(revoke_oauth2_token).options(preflight),
        )
        .route("/userinfo", get(userinfo).post(userinfo).options(preflight));
    let rest = Router::new()
        .route("/oauth2/auth", get(oauth_auth).post(oauth_auth))
        .route(
            "/oauth2/sessions/logout",
            get(disconnect_user).post(disconnect_user),
        )
        .route(
            "/oauth2/fallbacks/logout/callback",
            get(fallback_logout_callback),
        )
        .route("/oauth2/fallbacks/error", get(fallback_error));
    let rest = if dev {
        rest.merge(super::dev_ui::router())
    } else {
        rest.route("/oauth2/fallbacks/logout", get(fallback_logout))
            .route("/oauth2/fallbacks/login", get(fallback_login))
            .route("/oauth2/fallbacks/consent", get(fallback_consent))
    };
    (cors, rest)
}

async fn preflight() -> StatusCode {
    StatusCode::OK
}

/// Query parameters, then (for POST) the form body's, as fosite reads `r.Form`.
fn merged_params(method: &Method, raw_query: &str, body: Params) -> Params {
    let mut params = Params(
        url::form_urlencoded::parse(raw_query.as_bytes())
            .into_owned()
            .collect(),
    );
    if method == Method::POST {
        params.0.extend(body.0);
    }
    params
}

/// `GET|POST /oauth2/auth`: always a redirect (fosite never answers this endpoint with JSON).
async fn oauth_auth(
    State(s): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Form(body): Form,
) -> Response {
    let raw_query = query.unwrap_or_default();
    let params = merged_params(&method, &raw_query, body);
    let cookies = s.cookies.read(&headers);
    let out = s.oauth2.authorize(&params, &raw_query, &cookies).await;
    browser_answer(&s, out)
}

/// A 302 (or the form-post page) with the cookies to set, never cached. A location that
/// cannot be sent is a server error, not a 302 without `Location`.
fn browser_answer(s: &AppState, out: Redirect) -> Response {
    let mut res = match &out.form {
        Some(fields) => Html(form_post_page(&out.location, fields)).into_response(),
        None => match location(&out.location) {
            Ok(loc) => (StatusCode::FOUND, [(header::LOCATION, loc)]).into_response(),
            Err(e) => {
                let mut res = e.into_response();
                no_store(res.headers_mut());
                return res;
            }
        },
    };
    with_cause(&mut res, out.failure);
    let h = res.headers_mut();
    for c in s.cookies.write(&out.cookies) {
        h.append(header::SET_COOKIE, c);
    }
    no_store(h);
    res
}

/// `GET|POST /oauth2/sessions/logout`: redirects, or the front-channel logout page.
async fn disconnect_user(
    State(s): State<AppState>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    Form(body): Form,
) -> Response {
    let raw_query = query.unwrap_or_default();
    let params = merged_params(&method, &raw_query, body);
    let cookies = s.cookies.read(&headers);
    let (mut res, ops) = match s.oauth2.logout(&params, &raw_query, &cookies).await {
        LogoutOutcome::Redirect(r) => return browser_answer(&s, r),
        LogoutOutcome::Page {
            urls,
            redirect_to,
            cookies,
        } => (
            Html(frontchannel_page(&urls, &redirect_to)).into_response(),
            cookies,
        ),
    };
    for c in s.cookies.write(&ops) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    no_store(res.headers_mut());
    res
}

/// One hidden iframe per front-channel logout URL, then on to `redirect_to` once they loaded
/// (or after 7 s at the latest, as Hydra's page does). Only absolute http(s) URLs are ever
/// emitted, HTML-escaped: the service already filters them, this is the last line of defence
/// against a `javascript:` URI running in our origin.
fn frontchannel_page(urls: &[String], redirect_to: &str) -> String {
    let frames: String = urls
        .iter()
        .filter(|u| is_web_url(u))
        .map(|u| {
            format!(
                "<iframe src=\"{}\" style=\"display:none\"></iframe>",
                escape(u)
            )
        })
        .collect();
    if !is_web_url(redirect_to) {
        return format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Logging out</title>\
             </head><body>{frames}<p>You have been logged out.</p></body></html>"
        );
    }
    // JSON string literal, with `<` escaped so it cannot close the script element.
    let target = serde_json::to_string(redirect_to)
        .unwrap_or_else(|_| "\"/\"".into())
        .replace('<', "\\u003c");
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Logging out</title>\
         <meta http-equiv=\"refresh\" content=\"7;url={}\"></head><body>{frames}\
         <script>window.addEventListener('load',function(){{window.location.replace({target});}});</script>\
         </body></html>",
        escape(redirect_to)
    )
}

fn credentials(
    headers: &HeaderMap,
    form: &Params,
    peer: Option<std::net::SocketAddr>,
) -> ClientCredentials {
    ClientCredentials {
        peer: peer.map(|p| p.ip()),
        forwarded_for: headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        basic: basic_credentials(headers),
        assertion: (!form.get("client_assertion").is_empty()).then(|| {
            (
                form.get("client_assertion_type").to_string(),
                form.get("client_assertion").to_string(),
            )
        }),
        form_id: form.get("client_id").to_string(),
        form_secret: form
            .0
            .iter()
            .find(|(k, _)| k == "client_secret")
            .map(|(_, v)| v.clone()),
    }
}

fn empty_body_error() -> OAuthError {
    OAuthError::invalid_request().hint("The POST body can not be empty.")
}

async fn oauth2_token(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form,
) -> Response {
    if form.0.is_empty() {
        return oauth_error(&s.config.oauth2, &empty_body_error());
    }
    let creds = credentials(&headers, &form, Some(peer));
    match s.oauth2.token(&form, &creds).await {
        Ok(t) => oauth_json(StatusCode::OK, serde_json::to_vec(&t).unwrap_or_default()),
        Err(e) => oauth_error(&s.config.oauth2, &e),
    }
}

/// RFC 7009: success is an empty 200; only invalid_request and invalid_client (and storage
/// failures) are reported.
async fn revoke_oauth2_token(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Form(form): Form,
) -> Response {
    if form.0.is_empty() {
        return oauth_error(&s.config.oauth2, &empty_body_error());
    }
    let creds = credentials(&headers, &form, Some(peer));
    match s.oauth2.revoke(&form, &creds).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => oauth_error(&s.config.oauth2, &e),
    }
}

async fn userinfo(State(s): State<AppState>, headers: HeaderMap, Form(form): Form) -> Response {
    let token = bearer_token(&headers).unwrap_or_else(|| form.get("access_token").to_string());
    let mut res = match s.oauth2.userinfo(&token).await {
        Ok(Userinfo::Json(v)) => axum::Json(v).into_response(),
        Ok(Userinfo::Jwt(jwt)) => {
            ([(header::CONTENT_TYPE, "application/jwt")], jwt).into_response()
        }
        Err(e) => userinfo_error(&s.config.oauth2, &e),
    };
    // Personal data: no shared or browser cache may keep it (OIDC Core 5.3.2 responses carry
    // claims about the user; RFC 6749 5.1 asks the same of token responses).
    no_store(res.headers_mut());
    res
}

/// `response_mode=form_post`: a page that POSTs the authorization response to the client's
/// redirect URI as soon as it loads (a button does it without JavaScript).
fn form_post_page(action: &str, fields: &[(String, String)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\"/>",
                escape(k),
                escape(v)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Submit This Form</title></head>\
         <body onload=\"javascript:document.forms[0].submit()\">\
         <form method=\"post\" action=\"{}\">{inputs}\
         <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
        escape(action)
    )
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> String {
    format!("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1>{body}</body></html>")
}

/// Hydra's built-in pages say that the URL is not configured; they never log anyone in. Outside
/// `--dev` that stays so: a production server must not grow a password-less login by accident.
async fn fallback_login() -> Html<String> {
    Html(page(
        "The login provider is not configured",
        "<p>Set <code>urls.login</code> (<code>URLS_LOGIN</code>) to the URL of your login app.</p>\
         <p>To try flows out on your machine, <code>portcullis serve all --dev</code> serves a demo \
         login and consent app here instead (development only).</p>",
    ))
}

async fn fallback_consent() -> Html<String> {
    Html(page(
        "The consent provider is not configured",
        "<p>Set <code>urls.consent</code> (<code>URLS_CONSENT</code>) to the URL of your consent app.</p>\
         <p>To try flows out on your machine, <code>portcullis serve all --dev</code> serves a demo \
         login and consent app here instead (development only).</p>",
    ))
}

async fn fallback_logout() -> Html<String> {
    Html(page(
        "The logout provider is not configured",
        "<p>Set <code>urls.logout</code> (<code>URLS_LOGOUT</code>) to the URL of your logout app.</p>",
    ))
}

async fn fallback_logout_callback() -> Html<String> {
    Html(page(
        "You have been logged out",
        "<p>Set <code>urls.post_logout_redirect</code> (<code>URLS_POST_LOGOUT_REDIRECT</code>) to choose where users land after logging out.</p>",
    ))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct ErrorParams {
    error: String,
    error_description: String,
    error_hint: String,
}

/// The default error page answers 500, as Hydra's does.
async fn fallback_error(RawQuery(q): RawQuery) -> Response {
    let p: ErrorParams = serde_urlencoded::from_str(&q.unwrap_or_default()).unwrap_or_default();
    let body = format!(
        "<p><b>{}</b></p><p>{}</p><p>{}</p><p>Set <code>urls.error</code> (<code>URLS_ERROR</code>) to show your own page.</p>",
        escape(&p.error),
        escape(&p.error_description),
        escape(&p.error_hint)
    );
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(page("An error occurred", &body)),
    )
        .into_response()
}
