//! `/oauth2/auth` before any user interaction: which error wins when several parameters are
//! wrong, where each error is sent, how the response mode delivers it, PKCE enforcement.
use super::fixture::*;
use serde_json::json;

const NONCE: &str = "nonce-0123456789";

/// One wrong parameter set, the error it alone would cause, and whether that error may go to
/// the client (redirect URI verified) or only to the error page.
struct Fault {
    params: &'static [(&'static str, &'static str)],
    error: &'static str,
    hint: &'static str,
    to_client: bool,
}

const FAULTS: &[Fault] = &[
    Fault {
        params: &[("client_id", "nobody")],
        error: "invalid_client",
        hint: "The requested OAuth 2.0 Client does not exist.",
        to_client: false,
    },
    Fault {
        params: &[("redirect_uri", "https://evil.example/cb")],
        error: "invalid_request",
        hint: "does not match any of the OAuth 2.0 Client's pre-registered redirect urls",
        to_client: false,
    },
    Fault {
        params: &[("response_mode", "jwt")],
        error: "unsupported_response_mode",
        hint: "Request with unsupported response_mode 'jwt'.",
        to_client: true,
    },
    Fault {
        params: &[("registration", "{}")],
        error: "registration_not_supported",
        hint: "The OP does not support use of the registration parameter.",
        to_client: true,
    },
    Fault {
        params: &[("scope", "openid admin")],
        error: "invalid_scope",
        hint: "The OAuth 2.0 Client is not allowed to request scope 'admin'.",
        to_client: true,
    },
    Fault {
        params: &[("audience", "https://other.example/")],
        error: "invalid_request",
        hint: "Requested audience 'https://other.example/' has not been whitelisted",
        to_client: true,
    },
    Fault {
        params: &[("response_type", "token")],
        error: "unsupported_response_type",
        hint: "The client is not allowed to request response_type 'token'.",
        to_client: true,
    },
    Fault {
        params: &[("state", "short")],
        error: "invalid_state",
        hint: "must be at least 8 characters long",
        to_client: true,
    },
    Fault {
        params: &[("prompt", "sometimes")],
        error: "invalid_request",
        hint: "Used unknown value 'sometimes' for prompt parameter.",
        to_client: true,
    },
    Fault {
        params: &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "plain"),
        ],
        error: "invalid_request",
        hint: "Clients must use code_challenge_method=S256, plain is not allowed.",
        to_client: true,
    },
];

/// fosite's order (NewAuthorizeRequest, then the handlers): row `i` carries fault `i` and every
/// later one, and only fault `i` may show.
#[tokio::test]
async fn the_first_fault_in_validation_order_wins() {
    let srv = Server::start(&[]).await;
    srv.client(json!({})).await;
    for (i, fault) in FAULTS.iter().enumerate() {
        let over: Vec<(&str, &str)> = FAULTS[i..]
            .iter()
            .flat_map(|f| f.params.iter().copied())
            .collect();
        let r = Browser::default().authorize(&srv, &over).await;
        let case = format!("fault {i} ({})", fault.error);
        let (error, description) = redirect_error(&r);
        assert_eq!(error, fault.error, "{case}: {}", r.location);
        assert!(
            description.contains(fault.hint),
            "{case}: {description:?} lacks {:?}",
            fault.hint
        );
        let state = over
            .iter()
            .rev()
            .find(|(k, _)| *k == "state")
            .map_or(STATE, |(_, v)| *v);
        if fault.to_client {
            assert!(r.location.starts_with(REDIRECT), "{case}: {}", r.location);
            assert_eq!(param(&r, "state").as_deref(), Some(state), "{case}");
        } else {
            assert!(r.location.starts_with(ERROR_URL), "{case}: {}", r.location);
            assert_eq!(
                param(&r, "state"),
                None,
                "{case}: no state to the error page"
            );
        }
        assert_eq!(param(&r, "code"), None, "{case}");
        assert!(r.cookies.is_empty(), "{case}: no flow was started");
    }
}

/// Until the redirect URI is known to belong to the client, nothing may be sent to it.
#[tokio::test]
async fn errors_before_the_redirect_uri_is_trusted_go_to_the_error_page() {
    let srv = Server::start(&[]).await;
    srv.client(json!({})).await;
    srv.client(json!({
        "client_id": "multi",
        "redirect_uris": [REDIRECT, "https://app.example/other"],
    }))
    .await;
    srv.client(json!({"client_id": "plain", "redirect_uris": ["http://app.example/cb"]}))
        .await;
    let cases: &[(&str, Pairs, &str, &str)] = &[
        (
            "no client_id",
            &[("client_id", "")],
            "invalid_client",
            "does not exist",
        ),
        (
            "fragment in the redirect URI",
            &[("redirect_uri", "https://app.example/cb#x")],
            "invalid_request",
            "absolute URL without a fragment",
        ),
        (
            "query added to the redirect URI",
            &[("redirect_uri", "https://app.example/cb?x=1")],
            "invalid_request",
            "does not match any",
        ),
        (
            "omitted with several registered",
            &[("client_id", "multi"), ("redirect_uri", "")],
            "invalid_request",
            "required when the client has zero or several registered redirect URIs",
        ),
        (
            "plain http to a remote host, even when defaulted",
            &[("client_id", "plain"), ("redirect_uri", "")],
            "invalid_request",
            "insecure protocol",
        ),
        (
            "form_post asked, still the error page",
            &[
                ("redirect_uri", "https://evil.example/cb"),
                ("response_mode", "form_post"),
            ],
            "invalid_request",
            "does not match any",
        ),
    ];
    for (case, over, error, hint) in cases {
        let r = Browser::default().authorize(&srv, over).await;
        assert!(r.location.starts_with(ERROR_URL), "{case}: {}", r.location);
        assert!(r.form.is_none(), "{case}");
        let (e, description) = redirect_error(&r);
        assert_eq!(&e, error, "{case}");
        assert!(description.contains(hint), "{case}: {description}");
        assert_eq!(param(&r, "state"), None, "{case}");
    }
}

/// An error for a trusted redirect URI travels the way the response would: query for `code`,
/// fragment when tokens are in the front channel, form fields for `form_post`.
#[tokio::test]
async fn response_modes_deliver_errors_to_the_client() {
    let srv = Server::start(&[]).await;
    srv.client(json!({"response_types": ["code", "code id_token"]}))
        .await;
    enum Via {
        Query,
        Fragment,
        Form,
    }
    let cases: &[(&str, &str, Via)] = &[
        ("code", "", Via::Query),
        ("code", "query", Via::Query),
        ("code", "fragment", Via::Fragment),
        ("code", "form_post", Via::Form),
        ("code id_token", "", Via::Fragment),
        ("code id_token", "form_post", Via::Form),
    ];
    for (response_type, mode, via) in cases {
        let case = format!("{response_type} / {mode:?}");
        let r = Browser::default()
            .authorize(
                &srv,
                &[
                    ("response_type", response_type),
                    ("response_mode", mode),
                    ("scope", "openid admin"),
                    ("nonce", NONCE),
                ],
            )
            .await;
        let u = url::Url::parse(&r.location).unwrap();
        let in_query = u.query_pairs().any(|(k, _)| k == "error");
        let in_fragment = u
            .fragment()
            .is_some_and(|f| f.contains("error=invalid_scope"));
        match via {
            Via::Query => assert!(in_query && !in_fragment && r.form.is_none(), "{case}"),
            Via::Fragment => assert!(!in_query && in_fragment && r.form.is_none(), "{case}"),
            Via::Form => {
                assert_eq!(r.location, REDIRECT, "{case}");
                let form = r.form.clone().unwrap_or_default();
                assert!(
                    form.contains(&("error".to_string(), "invalid_scope".to_string())),
                    "{case}: {form:?}"
                );
                assert!(
                    form.contains(&("state".to_string(), STATE.to_string())),
                    "{case}"
                );
            }
        }
        assert_eq!(redirect_error(&r).0, "invalid_scope", "{case}");
    }
}

/// One front-channel request and its outcome.
struct FrontChannel {
    case: &'static str,
    /// client_id, response_type, response_mode, scope, nonce.
    request: [&'static str; 5],
    /// The error sent to the client; None: the login page.
    error: Option<(&'static str, &'static str)>,
}

const NO_IMPLICIT: Option<(&str, &str)> = Some(("invalid_grant", "authorization grant 'implicit'"));

const FRONT_CHANNEL: &[FrontChannel] = &[
    FrontChannel {
        case: "tokens never go in the query",
        request: ["implicit", "token", "query", "openid", NONCE],
        error: Some((
            "unsupported_response_mode",
            "Insecure response_mode 'query'",
        )),
    },
    FrontChannel {
        case: "token needs the implicit grant",
        request: ["hybrid", "token", "", "openid", NONCE],
        error: NO_IMPLICIT,
    },
    FrontChannel {
        case: "token beside a code needs it too",
        request: ["hybrid", "code token", "", "openid", NONCE],
        error: NO_IMPLICIT,
    },
    FrontChannel {
        case: "an ID token without a code needs it",
        request: ["hybrid", "id_token", "", "openid", NONCE],
        error: NO_IMPLICIT,
    },
    FrontChannel {
        case: "hybrid code id_token needs only authorization_code",
        request: ["hybrid", "code id_token", "", "openid", NONCE],
        error: None,
    },
    FrontChannel {
        case: "id_token without openid",
        request: ["implicit", "id_token", "", "profile", NONCE],
        error: Some((
            "unsupported_response_type",
            "The response type 'id_token' requires the 'openid' scope.",
        )),
    },
    FrontChannel {
        case: "openid in the front channel needs a nonce",
        request: ["implicit", "id_token token", "", "openid", ""],
        error: Some(("invalid_request", "Parameter 'nonce' must be set")),
    },
    FrontChannel {
        case: "a short nonce",
        request: ["implicit", "id_token token", "", "openid", "1234567"],
        error: Some(("insufficient_entropy", "minimum entropy of 8 characters")),
    },
    FrontChannel {
        case: "token without openid needs no nonce",
        request: ["implicit", "token", "", "photos.read", ""],
        error: None,
    },
    FrontChannel {
        case: "form_post may carry tokens",
        request: ["implicit", "id_token token", "form_post", "openid", NONCE],
        error: None,
    },
];

/// Tokens in the front channel are the implicit grant; ID tokens need `openid` and a nonce of
/// at least 8 characters (fosite flow_authorize_implicit.go, openid/flow_implicit.go).
#[tokio::test]
async fn implicit_and_hybrid_requests_follow_the_front_channel_rules() {
    let srv = Server::start(&[]).await;
    let types = json!([
        "code",
        "token",
        "id_token",
        "id_token token",
        "code id_token",
        "code token"
    ]);
    srv.client(json!({
        "client_id": "implicit",
        "grant_types": ["authorization_code", "implicit"],
        "response_types": types.clone(),
    }))
    .await;
    srv.client(json!({"client_id": "hybrid", "response_types": types}))
        .await;
    for FrontChannel {
        case,
        request,
        error,
    } in FRONT_CHANNEL
    {
        let names = [
            "client_id",
            "response_type",
            "response_mode",
            "scope",
            "nonce",
        ];
        let over: Vec<(&str, &str)> = names.into_iter().zip(request.iter().copied()).collect();
        let r = Browser::default().authorize(&srv, &over).await;
        match error {
            None => {
                assert!(r.location.starts_with(LOGIN_URL), "{case}: {}", r.location);
                assert!(param(&r, "login_challenge").is_some(), "{case}");
            }
            Some((error, hint)) => {
                assert!(r.location.starts_with(REDIRECT), "{case}: {}", r.location);
                let (e, description) = redirect_error(&r);
                assert_eq!(&e, error, "{case}");
                assert!(description.contains(hint), "{case}: {description}");
            }
        }
    }
}

/// `oauth2.pkce.enforced` covers every client, `enforced_for_public_clients` only those without
/// a secret; a challenge is accepted either way.
#[tokio::test]
async fn pkce_is_enforced_as_configured() {
    let for_public = Server::start(&[("OAUTH2_PKCE_ENFORCED_FOR_PUBLIC_CLIENTS", "true")]).await;
    let for_all = Server::start(&[("OAUTH2_PKCE_ENFORCED", "true")]).await;
    let off = Server::start(&[]).await;
    for srv in [&for_public, &for_all, &off] {
        srv.client(json!({})).await;
        srv.client(json!({
            "client_id": "spa",
            "client_secret": "",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
        }))
        .await;
    }
    let missing = "Clients must include a code_challenge when performing the authorize code flow, but it is missing.";
    let cases: &[(&str, &Server, &str, bool, bool)] = &[
        (
            "public-only: confidential without",
            &for_public,
            "app",
            false,
            true,
        ),
        (
            "public-only: public without",
            &for_public,
            "spa",
            false,
            false,
        ),
        ("public-only: public with", &for_public, "spa", true, true),
        (
            "everyone: confidential without",
            &for_all,
            "app",
            false,
            false,
        ),
        ("everyone: confidential with", &for_all, "app", true, true),
        ("off: public without", &off, "spa", false, true),
    ];
    for (case, srv, client, with_challenge, accepted) in cases {
        let mut over = vec![("client_id", *client)];
        if *with_challenge {
            over.extend([
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]);
        }
        let r = Browser::default().authorize(srv, &over).await;
        if *accepted {
            assert!(r.location.starts_with(LOGIN_URL), "{case}: {}", r.location);
        } else {
            let (e, description) = redirect_error(&r);
            assert_eq!(e, "invalid_request", "{case}");
            assert!(description.contains(missing), "{case}: {description}");
            assert!(r.location.starts_with(REDIRECT), "{case}");
        }
    }
}

/// A valid request stores a login request with what was asked and hands the browser to the
/// login app with a CSRF cookie bound to that request.
#[tokio::test]
async fn a_valid_request_opens_a_login_request() {
    let srv = Server::start(&[]).await;
    srv.client(json!({})).await;
    let mut browser = Browser::default();
    let r = browser
        .authorize(
            &srv,
            &[
                ("scope", "openid photos.read"),
                ("audience", "https://api.example/v1/photos"),
                ("login_hint", "alice@example"),
                ("acr_values", "silver gold"),
                ("ui_locales", "de en"),
                ("display", "popup"),
            ],
        )
        .await;
    assert!(
        r.location
            .starts_with(&format!("{LOGIN_URL}?login_challenge=")),
        "{}",
        r.location
    );
    let challenge = param(&r, "login_challenge").unwrap();
    let (flow, client) = srv.oauth2.get_login_request(&challenge).await.unwrap();
    assert_eq!(client.client_id, "app");
    assert_eq!(flow.client_id, "app");
    assert_eq!(flow.requested_scope, ["openid", "photos.read"]);
    assert_eq!(flow.requested_audience, ["https://api.example/v1/photos"]);
    assert!(!flow.login_skip);
    assert_eq!(flow.subject, "");
    assert_eq!(flow.requested_at, srv.clock.unix());
    assert_eq!(flow.oidc_context.login_hint, "alice@example");
    assert_eq!(flow.oidc_context.acr_values, ["silver", "gold"]);
    assert_eq!(flow.oidc_context.ui_locales, ["de", "en"]);
    assert_eq!(flow.oidc_context.display, "popup");
    assert!(
        flow.request_url
            .starts_with(&format!("{ISSUER}oauth2/auth?")),
        "{}",
        flow.request_url
    );
    assert!(flow.request_url.contains(&format!("state={STATE}")));
    assert_eq!(
        r.cookies,
        vec![CookieOp::LoginCsrf(flow.login_csrf.clone())]
    );
    assert_eq!(
        browser.cookies.login_csrf.as_deref(),
        Some(flow.login_csrf.as_str())
    );
}
