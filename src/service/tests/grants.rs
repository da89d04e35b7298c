//! `/oauth2/token` and what reads its tokens: client authentication, authorization_code (PKCE,
//! redirect URI binding, reuse), refresh_token (rotation, reuse revokes the family, the
//! client's current rights), client_credentials, expiry by the injected clock, introspection
//! and revocation.
use super::fixture::*;
use crate::domain::jwk::ACCESS_TOKEN_SET;
use serde_json::{json, Value};

async fn started() -> Server {
    let srv = Server::start(&[]).await;
    srv.client(json!({})).await;
    srv
}

fn form_of<'a>(base: &[(&'a str, &'a str)], over: &[(&'a str, &'a str)]) -> Vec<(String, String)> {
    merged(base, over)
}

fn as_pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, s)| (k.as_str(), s.as_str())).collect()
}

/// Every failure leaves the code redeemable: only the last row spends it.
#[tokio::test]
async fn authorization_code_exchange_rules() {
    let srv = started().await;
    srv.client(json!({"client_id": "other", "redirect_uris": ["https://other.example/cb"]}))
        .await;
    let code = srv
        .code(&[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let app = basic("app", CLIENT_SECRET);
    let wrong_verifier = format!("{}x", &VERIFIER[..VERIFIER.len() - 1]);
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    type Form<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(&str, Form, ClientCredentials, &str, &str)> = vec![
        ("unknown code", vec![("code", "nope")], basic("app", CLIENT_SECRET), "invalid_grant", "The authorization code is unknown or malformed."),
        ("redirect_uri omitted", vec![("redirect_uri", "")], basic("app", CLIENT_SECRET), "invalid_grant", "The 'redirect_uri' from this request does not match the one from the authorize request."),
        ("another redirect_uri", vec![("redirect_uri", "https://app.example/other")], basic("app", CLIENT_SECRET), "invalid_grant", "does not match the one from the authorize request"),
        ("another client", vec![], basic("other", CLIENT_SECRET), "invalid_grant", "The OAuth 2.0 Client ID from this request does not match the one from the authorize request."),
        ("no code_verifier", vec![("code_verifier", "")], basic("app", CLIENT_SECRET), "invalid_grant", "must be 43 to 128 characters"),
        ("wrong code_verifier", vec![("code_verifier", wrong_verifier.as_str())], basic("app", CLIENT_SECRET), "invalid_grant", "The PKCE code challenge did not match the code verifier."),
        ("grant_type missing", vec![("grant_type", "")], basic("app", CLIENT_SECRET), "invalid_request", "Request parameter 'grant_type' is missing"),
        ("password grant", vec![("grant_type", "password")], basic("app", CLIENT_SECRET), "invalid_request", "The grant type 'password' is not supported by this server."),
        ("wrong secret", vec![], basic("app", "wrong-secret"), "invalid_client", "The provided client secret did not match the registered one."),
        ("secret in the form, basic registered", vec![], form_creds("app", Some(CLIENT_SECRET)), "invalid_client", "supports client authentication method 'client_secret_basic', but method 'client_secret_post' was requested"),
        ("no credentials", vec![], ClientCredentials::default(), "invalid_client", "Client credentials missing or malformed"),
        ("unknown client", vec![], basic("ghost", CLIENT_SECRET), "invalid_client", "The requested OAuth 2.0 Client does not exist."),
    ];
    for (case, over, creds, name, hint) in &cases {
        let form = form_of(&base, over);
        let e = err(srv.token(&as_pairs(&form), creds).await, case);
        assert_oauth(&e, name, hint, case);
    }
    let t = srv.token(&base, &app).await.unwrap();
    assert_eq!(t.token_type, "bearer");
    assert_eq!(t.expires_in, TTL_ACCESS);
    assert_eq!(t.scope, "openid offline");
    assert!(t.refresh_token.is_some() && t.id_token.is_some());
    assert!(srv.active(&t.access_token).await);
}

#[tokio::test]
async fn a_code_verifier_needs_a_challenge_at_authorization() {
    let srv = started().await;
    let code = srv.code(&[]).await;
    let e = err(
        srv.exchange(&code, &[("code_verifier", VERIFIER)]).await,
        "verifier",
    );
    assert_oauth(
        &e,
        "invalid_grant",
        "A code_verifier was sent, but the authorization request carried no code_challenge.",
        "verifier without challenge",
    );
    // Without the stray verifier the same code is good.
    srv.exchange(&code, &[]).await.unwrap();
}

/// Refresh tokens need `offline` (or `offline_access`) granted and the refresh_token grant;
/// ID tokens need `openid`.
#[tokio::test]
async fn issued_tokens_follow_the_granted_scope() {
    let srv = started().await;
    srv.client(json!({"client_id": "norefresh", "grant_types": ["authorization_code"]}))
        .await;
    let cases: &[(&str, &str, bool, bool)] = &[
        ("app", "openid offline", true, true),
        ("app", "openid", false, true),
        ("app", "offline", true, false),
        ("app", "offline_access profile", true, false),
        ("app", "profile photos.read", false, false),
        ("norefresh", "openid offline", false, true),
    ];
    for (client, scope, refresh, id_token) in cases {
        let case = format!("{client}: {scope}");
        let code = srv.code(&[("client_id", client), ("scope", scope)]).await;
        let t = srv
            .token(
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                ],
                &basic(client, CLIENT_SECRET),
            )
            .await
            .unwrap();
        assert_eq!(t.scope, *scope, "{case}");
        assert_eq!(t.refresh_token.is_some(), *refresh, "{case}");
        assert_eq!(t.id_token.is_some(), *id_token, "{case}");
        let seen = srv
            .oauth2
            .introspect(&t.access_token, "", "")
            .await
            .unwrap();
        assert_eq!(seen.scope.as_deref(), Some(*scope), "{case}");
        assert_eq!(seen.sub.as_deref(), Some("alice"), "{case}");
        assert_eq!(seen.client_id.as_deref(), Some(*client), "{case}");
    }
}

/// fosite claims_id_token.go: consent claims add to the ID token, never replace reserved ones.
#[tokio::test]
async fn id_tokens_carry_reserved_claims_that_consent_cannot_override() {
    let srv = started().await;
    let mut browser = Browser::default();
    let extra = json!({"email": "alice@example", "sub": "mallory", "iss": "https://evil.example/", "nonce": "x"});
    let Value::Object(extra) = extra else {
        unreachable!()
    };
    let r = srv
        .flow(
            &mut browser,
            &[("nonce", "nonce-0123456789")],
            AcceptLogin {
                acr: "gold".into(),
                ..login("alice")
            },
            AcceptConsent {
                id_token: extra,
                ..grant(&["openid", "offline"])
            },
        )
        .await;
    let code = param(&r, "code").unwrap();
    let now = srv.clock.unix();
    let t = srv.exchange(&code, &[]).await.unwrap();
    let claims = srv.id_claims(t.id_token.as_deref().unwrap()).await;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], json!(["app"]));
    assert_eq!(claims["nonce"], "nonce-0123456789");
    assert_eq!(claims["email"], "alice@example");
    assert_eq!(claims["acr"], "gold");
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims["auth_time"], now);
    assert_eq!(
        claims["at_hash"],
        crate::crypto::jws::at_hash(&t.access_token)
    );
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()));
}

#[tokio::test]
async fn a_code_is_redeemed_once_and_reuse_revokes_its_tokens() {
    let srv = started().await;
    let code = srv.code(&[]).await;
    let first = srv.exchange(&code, &[]).await.unwrap();
    assert!(srv.active(&first.access_token).await);
    for attempt in ["second", "third"] {
        let e = err(srv.exchange(&code, &[]).await, attempt);
        assert_oauth(
            &e,
            "invalid_grant",
            "The authorization code has already been used; the tokens issued for it are revoked.",
            attempt,
        );
    }
    assert!(!srv.active(&first.access_token).await);
    let e = err(
        srv.refresh(first.refresh_token.as_deref().unwrap()).await,
        "refresh",
    );
    assert_oauth(
        &e,
        "invalid_grant",
        "The refresh token is unknown, malformed or revoked.",
        "refresh",
    );
}

/// `ttl.auth_code` on the injected clock: good through its last second.
#[tokio::test]
async fn codes_expire_by_the_clock() {
    let srv = started().await;
    let on_time = srv.code(&[]).await;
    let late = srv.code(&[]).await;
    srv.clock.advance(TTL_CODE);
    srv.exchange(&on_time, &[]).await.unwrap();
    srv.clock.advance(1);
    let e = err(srv.exchange(&late, &[]).await, "late");
    assert_oauth(
        &e,
        "invalid_grant",
        "The authorization code has expired.",
        "late",
    );
}

#[tokio::test]
async fn refreshing_rotates_every_token_of_the_grant() {
    let srv = started().await;
    let t = srv.tokens("openid offline").await;
    let issued_at = srv.clock.unix();
    srv.clock.advance(10);
    let r = srv
        .refresh(t.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_ne!(r.access_token, t.access_token);
    assert_ne!(r.refresh_token, t.refresh_token);
    assert_eq!(r.scope, "openid offline");
    assert!(
        !srv.active(&t.access_token).await,
        "the old access token goes"
    );
    let seen = srv
        .oauth2
        .introspect(&r.access_token, "", "")
        .await
        .unwrap();
    assert!(seen.active);
    assert_eq!(seen.sub.as_deref(), Some("alice"));
    assert_eq!(seen.iat, Some(issued_at + 10));
    assert_eq!(seen.exp, Some(issued_at + 10 + TTL_ACCESS));
    let claims = srv.id_claims(r.id_token.as_deref().unwrap()).await;
    assert_eq!(claims["auth_time"], issued_at, "a refresh keeps auth_time");
    assert_eq!(claims["iat"], issued_at + 10);
}

/// A rotated-out refresh token coming back means a copy exists: the whole grant goes.
#[tokio::test]
async fn reusing_a_rotated_refresh_token_revokes_the_family() {
    let srv = started().await;
    let t = srv.tokens("openid offline").await;
    let old = t.refresh_token.clone().unwrap();
    let r = srv.refresh(&old).await.unwrap();
    let e = err(srv.refresh(&old).await, "reuse");
    assert_oauth(
        &e,
        "invalid_grant",
        "The refresh token has already been used; every token of this grant is revoked.",
        "reuse",
    );
    assert!(!srv.active(&r.access_token).await);
    let e = err(
        srv.refresh(r.refresh_token.as_deref().unwrap()).await,
        "descendant",
    );
    assert_oauth(
        &e,
        "invalid_grant",
        "The refresh token is unknown, malformed or revoked.",
        "descendant",
    );
}

/// What changes between issuing a refresh token and using it.
#[derive(Debug)]
enum Change {
    Nothing,
    Garbage,
    OtherClient,
    ScopeWithdrawn,
    AudienceWithdrawn,
    GrantWithdrawn,
    Expired,
}

const REFRESH_CASES: &[(Change, Option<(&str, &str)>)] = &[
    (Change::Nothing, None),
    (Change::Garbage, Some(("invalid_grant", "The refresh token is unknown, malformed or revoked."))),
    (Change::OtherClient, Some(("invalid_grant", "does not match the ID during the initial token issuance"))),
    (Change::ScopeWithdrawn, Some(("invalid_scope", "The OAuth 2.0 Client is not allowed to request scope 'photos.read'."))),
    (Change::AudienceWithdrawn, Some(("invalid_request", "Requested audience 'https://api.example/v1' has not been whitelisted by the OAuth 2.0 Client."))),
    (Change::GrantWithdrawn, Some(("unauthorized_client", "The OAuth 2.0 Client is not allowed to use authorization grant 'refresh_token'."))),
    (Change::Expired, Some(("invalid_grant", "The refresh token has expired."))),
];

const API: &str = "https://api.example/v1";

/// Tokens of client `id` for alice: `openid offline photos.read` and the audience `API`.
async fn grant_with_audience(srv: &Server, id: &str) -> TokenResponse {
    let r = srv
        .flow(
            &mut Browser::default(),
            &[
                ("client_id", id),
                ("scope", "openid offline photos.read"),
                ("audience", API),
            ],
            login("alice"),
            AcceptConsent {
                grant_access_token_audience: vec![API.into()],
                ..grant(&["openid", "offline", "photos.read"])
            },
        )
        .await;
    let code = param(&r, "code").unwrap();
    srv.token(
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
        &basic(id, CLIENT_SECRET),
    )
    .await
    .unwrap()
}

/// Each row: a fresh grant of its own client, one change, one refresh attempt.
#[tokio::test]
async fn a_refresh_is_checked_against_the_client_as_it_is_now() {
    let srv = Server::start(&[]).await;
    srv.client(json!({"client_id": "intruder"})).await;
    for (i, (change, outcome)) in REFRESH_CASES.iter().enumerate() {
        let case = format!("{change:?}");
        let id = format!("rt{i}");
        let client = client_model(json!({"client_id": id}));
        srv.clients.create(client.clone()).await.unwrap();
        let t = grant_with_audience(&srv, &id).await;
        let mut refresh = t.refresh_token.clone().unwrap();
        let mut creds = basic(&id, CLIENT_SECRET);
        let mut changed = client.clone();
        changed.client_secret = None;
        match change {
            Change::Nothing => {}
            Change::Garbage => refresh = "garbage.token".into(),
            Change::OtherClient => creds = basic("intruder", CLIENT_SECRET),
            Change::ScopeWithdrawn => changed.scope = "openid offline".into(),
            Change::AudienceWithdrawn => changed.audience = vec![],
            Change::GrantWithdrawn => changed.grant_types = vec!["authorization_code".into()],
            Change::Expired => srv.clock.advance(TTL_REFRESH + 1),
        }
        srv.clients.update(&id, changed).await.unwrap();
        let answer = srv
            .token(
                &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                &creds,
            )
            .await;
        match outcome {
            None => {
                let r = answer.unwrap();
                assert_eq!(r.scope, "openid offline photos.read", "{case}");
                let seen = srv.oauth2.introspect(&r.access_token, "", "").await;
                assert_eq!(seen.unwrap().aud, Some(vec![API.to_string()]), "{case}");
            }
            Some((name, hint)) => assert_oauth(&err(answer, &case), name, hint, &case),
        }
    }
}

/// A client credentials request: who asks (a public client presents no secret), for which
/// scope and audience, and the scope granted or the error.
struct CcCase {
    case: &'static str,
    client: &'static str,
    scope: &'static str,
    audience: &'static str,
    outcome: Result<&'static str, (&'static str, &'static str)>,
}

const CC_CASES: &[CcCase] = &[
    CcCase {
        case: "a scope under a wildcard",
        client: "svc",
        scope: "photos.read",
        audience: "",
        outcome: Ok("photos.read"),
    },
    CcCase {
        case: "two scopes and an audience below the allowed one",
        client: "svc",
        scope: "photos.read api:read",
        audience: "https://api.example/v1/users",
        outcome: Ok("photos.read api:read"),
    },
    CcCase {
        case: "no scope asked, none granted",
        client: "svc",
        scope: "",
        audience: "",
        outcome: Ok(""),
    },
    CcCase {
        case: "a scope not allowed",
        client: "svc",
        scope: "admin",
        audience: "",
        outcome: Err((
            "invalid_scope",
            "The OAuth 2.0 Client is not allowed to request scope 'admin'.",
        )),
    },
    CcCase {
        case: "the first denied scope is named",
        client: "svc",
        scope: "photos.read root admin",
        audience: "",
        outcome: Err(("invalid_scope", "scope 'root'")),
    },
    CcCase {
        case: "an audience not allowed",
        client: "svc",
        scope: "photos.read",
        audience: "https://evil.example/",
        outcome: Err((
            "invalid_request",
            "Requested audience 'https://evil.example/' has not been whitelisted",
        )),
    },
    CcCase {
        case: "a public client",
        client: "pub",
        scope: "",
        audience: "",
        outcome: Err((
            "invalid_grant",
            "The client is public and thus not allowed to use grant type client_credentials.",
        )),
    },
    CcCase {
        case: "the grant is not registered",
        client: "nocc",
        scope: "",
        audience: "",
        outcome: Err((
            "unauthorized_client",
            "not allowed to use authorization grant 'client_credentials'",
        )),
    },
];

/// The service client `svc` (client credentials only, `photos.* api:read`, one audience).
fn service_client() -> serde_json::Value {
    json!({
        "client_id": "svc",
        "grant_types": ["client_credentials"],
        "scope": "photos.* api:read",
        "audience": [API],
    })
}

#[tokio::test]
async fn client_credentials_rules() {
    let srv = Server::start(&[]).await;
    srv.client(service_client()).await;
    srv.client(json!({
        "client_id": "pub",
        "client_secret": "",
        "token_endpoint_auth_method": "none",
        "grant_types": ["client_credentials"],
    }))
    .await;
    srv.client(json!({"client_id": "nocc", "grant_types": ["authorization_code"]}))
        .await;
    for c in CC_CASES {
        let (case, scope, audience) = (c.case, c.scope, c.audience);
        let creds = if c.client == "pub" {
            form_creds(c.client, None)
        } else {
            basic(c.client, CLIENT_SECRET)
        };
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("audience", audience),
        ];
        let answer = srv.token(&form, &creds).await;
        let granted = match c.outcome {
            Ok(granted) => granted,
            Err((name, hint)) => {
                assert_oauth(&err(answer, case), name, hint, case);
                continue;
            }
        };
        let t = answer.unwrap();
        assert_eq!(t.scope, granted, "{case}");
        assert!(t.refresh_token.is_none() && t.id_token.is_none(), "{case}");
        assert_eq!(t.expires_in, TTL_ACCESS, "{case}");
        let seen = srv.oauth2.introspect(&t.access_token, "", "").await;
        let seen = seen.unwrap();
        assert!(seen.active, "{case}");
        assert_eq!(seen.sub.as_deref(), Some("svc"), "{case}");
        assert_eq!(seen.client_id.as_deref(), Some("svc"), "{case}");
        assert_eq!(
            seen.aud,
            Some(crate::oauth2::split_spaces(audience)),
            "{case}"
        );
    }
}

/// `oauth2.client_credentials.default_grant_allowed_scope`: asking for nothing grants every
/// scope the client may have; asking for some still narrows.
#[tokio::test]
async fn client_credentials_may_default_to_every_allowed_scope() {
    let cases: &[(&str, &str, &str)] = &[
        ("false", "", ""),
        ("false", "api:read", "api:read"),
        ("true", "", "photos.* api:read"),
        ("true", "api:read", "api:read"),
    ];
    for (setting, asked, granted) in cases {
        let srv = Server::start(&[(
            "OAUTH2_CLIENT_CREDENTIALS_DEFAULT_GRANT_ALLOWED_SCOPE",
            setting,
        )])
        .await;
        srv.client(service_client()).await;
        let t = srv
            .token(
                &[("grant_type", "client_credentials"), ("scope", asked)],
                &basic("svc", CLIENT_SECRET),
            )
            .await
            .unwrap();
        assert_eq!(t.scope, *granted, "default {setting}, asked {asked:?}");
    }
}

/// `ttl.access_token` on the injected clock: active through its last second, then inactive
/// for introspection and refused by userinfo, while the refresh token lives on.
#[tokio::test]
async fn access_tokens_expire_by_the_clock() {
    let srv = started().await;
    let t = srv.tokens("openid offline").await;
    srv.clock.advance(TTL_ACCESS);
    assert!(srv.active(&t.access_token).await);
    assert!(srv.oauth2.userinfo(&t.access_token).await.is_ok());
    srv.clock.advance(1);
    assert!(!srv.active(&t.access_token).await);
    let e = err(
        srv.oauth2.userinfo(&t.access_token).await.map(|_| ()),
        "userinfo",
    );
    assert_oauth(&e, "token_expired", "The access token expired.", "userinfo");
    let r = srv
        .refresh(t.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert!(srv.active(&r.access_token).await);
}

/// `strategies.access_token: jwt`: the token is a JWT signed with the access-token set, and
/// still revocable because its row is stored.
#[tokio::test]
async fn jwt_access_tokens_are_signed_and_stored() {
    let srv = Server::start(&[("STRATEGIES_ACCESS_TOKEN", "jwt")]).await;
    srv.client(json!({})).await;
    let t = srv
        .token(
            &[
                ("grant_type", "client_credentials"),
                ("scope", "photos.read"),
                ("audience", "https://api.example/v1"),
            ],
            &basic("app", CLIENT_SECRET),
        )
        .await
        .unwrap();
    assert_eq!(t.access_token.split('.').count(), 3);
    let keys = srv.jwks.public_keys(ACCESS_TOKEN_SET).await.unwrap();
    let claims = crate::crypto::jws::verify_ignoring_expiry(&t.access_token, &keys).unwrap();
    let now = srv.clock.unix();
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "app");
    assert_eq!(claims["client_id"], "app");
    assert_eq!(claims["scp"], json!(["photos.read"]));
    assert_eq!(claims["aud"], json!(["https://api.example/v1"]));
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + TTL_ACCESS);
    assert!(srv.active(&t.access_token).await);
    // Change the first signature character: six bits of the signature itself.
    let (signed, signature) = t.access_token.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{flipped}{}", &signature[1..]);
    assert!(!srv.active(&forged).await, "a forged signature");
    srv.oauth2
        .revoke(
            &params(&[("token", &t.access_token)]),
            &basic("app", CLIENT_SECRET),
        )
        .await
        .unwrap();
    assert!(!srv.active(&t.access_token).await, "revoked");
}

#[tokio::test]
async fn introspection_answers_by_token_kind_and_scope() {
    let srv = started().await;
    let t = srv.tokens("openid offline photos.read").await;
    let access = t.access_token.as_str();
    let refresh = t.refresh_token.as_deref().unwrap();
    let cases: &[(&str, &str, &str, &str, Option<&str>)] = &[
        ("access", access, "", "", Some("access_token")),
        (
            "access, scope held",
            access,
            "",
            "photos.read",
            Some("access_token"),
        ),
        (
            "access, two scopes held",
            access,
            "",
            "openid photos.read",
            Some("access_token"),
        ),
        ("access, scope not held", access, "", "photos.write", None),
        (
            "access, hinted wrongly",
            access,
            "refresh_token",
            "",
            Some("access_token"),
        ),
        (
            "refresh, hinted",
            refresh,
            "refresh_token",
            "",
            Some("refresh_token"),
        ),
        (
            "refresh, not hinted",
            refresh,
            "",
            "",
            Some("refresh_token"),
        ),
        ("garbage", "garbage", "", "", None),
        ("empty", "", "", "", None),
    ];
    for (case, token, hint, scope, token_use) in cases {
        let seen = srv.oauth2.introspect(token, hint, scope).await.unwrap();
        assert_eq!(seen.active, token_use.is_some(), "{case}");
        assert_eq!(seen.token_use, *token_use, "{case}");
        if seen.active {
            assert_eq!(
                seen.scope.as_deref(),
                Some("openid offline photos.read"),
                "{case}"
            );
            assert_eq!(seen.iss.as_deref(), Some(ISSUER), "{case}");
            assert_eq!(seen.token_type, Some("Bearer"), "{case}");
        } else {
            assert_eq!(
                serde_json::to_value(&seen).unwrap(),
                json!({"active": false}),
                "{case}"
            );
        }
    }
}

/// RFC 7009 as Hydra answers it: another client's token is "revoked" without effect; the
/// owner's revocation takes the whole grant.
#[tokio::test]
async fn revocation_takes_the_grant_of_its_owner_only() {
    let srv = started().await;
    srv.client(json!({"client_id": "other"})).await;
    let t = srv.tokens("openid offline").await;
    let refresh = t.refresh_token.clone().unwrap();
    let revoke = |token: String, creds: ClientCredentials| {
        let srv = &srv;
        async move {
            srv.oauth2
                .revoke(&params(&[("token", &token)]), &creds)
                .await
        }
    };
    revoke(refresh.clone(), basic("other", CLIENT_SECRET))
        .await
        .unwrap();
    assert!(
        srv.active(&t.access_token).await,
        "another client cannot revoke"
    );
    let e = err(
        revoke(String::new(), basic("app", CLIENT_SECRET)).await,
        "missing",
    );
    assert_oauth(
        &e,
        "invalid_request",
        "The 'token' parameter is missing.",
        "missing",
    );
    let e = err(
        revoke(refresh.clone(), basic("app", "wrong-secret")).await,
        "auth",
    );
    assert_eq!(e.name, "invalid_client");
    revoke("unknown".into(), basic("app", CLIENT_SECRET))
        .await
        .unwrap();
    revoke(refresh.clone(), basic("app", CLIENT_SECRET))
        .await
        .unwrap();
    assert!(
        !srv.active(&t.access_token).await,
        "the access token of the grant goes too"
    );
    assert!(
        !srv.oauth2
            .introspect(&refresh, "refresh_token", "")
            .await
            .unwrap()
            .active
    );
}
