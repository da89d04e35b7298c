//! What a client may ask for and what it sees: scope strategies and audience at the service
//! (authorization and client credentials agree), pairwise subject identifiers, forced subjects,
//! `id_token_hint` against the remembered session.
use super::fixture::*;
use crate::service::clients::ClientsError;
use serde_json::json;
use sha2::{Digest, Sha256};

const SALT: &str = "pairwise-salt-0123456789";
const PAIRWISE: &[(&str, &str)] = &[
    (
        "OIDC_SUBJECT_IDENTIFIERS_SUPPORTED_TYPES",
        "public,pairwise",
    ),
    ("OIDC_SUBJECT_IDENTIFIERS_PAIRWISE_SALT", SALT),
];
const PW_REDIRECT: &str = "https://pw.example/cb";

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `strategies.scope` decides both at `/oauth2/auth` and for client credentials.
#[tokio::test]
async fn scope_strategies_decide_alike_for_every_grant() {
    let exact = Server::start(&[("STRATEGIES_SCOPE", "exact")]).await;
    let wildcard = Server::start(&[("STRATEGIES_SCOPE", "wildcard")]).await;
    for srv in [&exact, &wildcard] {
        srv.client(json!({})).await;
    }
    let cases: &[(&str, &Server, &str, Option<&str>)] = &[
        (
            "wildcard: one segment under the star",
            &wildcard,
            "photos.read",
            None,
        ),
        (
            "wildcard: two segments",
            &wildcard,
            "photos.read.all",
            Some("photos.read.all"),
        ),
        ("wildcard: the pattern itself", &wildcard, "photos.*", None),
        (
            "wildcard: the bare prefix",
            &wildcard,
            "photos",
            Some("photos"),
        ),
        (
            "exact: a name under the star",
            &exact,
            "photos.read",
            Some("photos.read"),
        ),
        ("exact: the pattern itself", &exact, "photos.*", None),
        ("exact: a plain name", &exact, "profile", None),
    ];
    for (case, srv, scope, denied) in cases {
        let r = Browser::default().authorize(srv, &[("scope", scope)]).await;
        let cc = srv
            .token(
                &[("grant_type", "client_credentials"), ("scope", scope)],
                &basic("app", CLIENT_SECRET),
            )
            .await;
        match denied {
            None => {
                assert!(r.location.starts_with(LOGIN_URL), "{case}: {}", r.location);
                assert_eq!(cc.unwrap().scope, *scope, "{case}");
            }
            Some(s) => {
                let hint = format!("The OAuth 2.0 Client is not allowed to request scope '{s}'.");
                let (e, description) = redirect_error(&r);
                assert_eq!(e, "invalid_scope", "{case}");
                assert!(description.contains(&hint), "{case}: {description}");
                assert_oauth(&err(cc, case), "invalid_scope", &hint, case);
            }
        }
    }
}

/// Requested audiences must sit under one the client registered (same origin, path equal or
/// below); what the consent app grants is what introspection reports.
#[tokio::test]
async fn audiences_must_sit_under_the_client_audience() {
    let srv = Server::start(&[]).await;
    srv.client(json!({})).await;
    let cases: &[(&str, Option<&str>)] = &[
        ("https://api.example/v1", None),
        ("https://api.example/v1/photos", None),
        ("https://api.example/v1/photos https://api.example/v1", None),
        ("https://api.example/v10", Some("https://api.example/v10")),
        (
            "https://api.example/v1 https://evil.example/x",
            Some("https://evil.example/x"),
        ),
        ("http://api.example/v1", Some("http://api.example/v1")),
        (
            "https://api.example:8443/v1",
            Some("https://api.example:8443/v1"),
        ),
    ];
    for (audience, denied) in cases {
        let r = Browser::default()
            .authorize(&srv, &[("audience", audience)])
            .await;
        match denied {
            None => {
                let challenge = param(&r, "login_challenge").unwrap();
                let (flow, _) = srv.oauth2.get_login_request(&challenge).await.unwrap();
                assert_eq!(
                    flow.requested_audience,
                    crate::oauth2::split_spaces(audience)
                );
            }
            Some(a) => {
                let (e, description) = redirect_error(&r);
                assert_eq!(e, "invalid_request", "{audience}");
                let hint = format!(
                    "Requested audience '{a}' has not been whitelisted by the OAuth 2.0 Client."
                );
                assert!(description.contains(&hint), "{audience}: {description}");
            }
        }
    }
    let granted = vec!["https://api.example/v1/photos".to_string()];
    let r = srv
        .flow(
            &mut Browser::default(),
            &[(
                "audience",
                "https://api.example/v1/photos https://api.example/v1",
            )],
            login("alice"),
            AcceptConsent {
                grant_access_token_audience: granted.clone(),
                ..grant(&["openid"])
            },
        )
        .await;
    let t = srv
        .exchange(&param(&r, "code").unwrap(), &[])
        .await
        .unwrap();
    let seen = srv
        .oauth2
        .introspect(&t.access_token, "", "")
        .await
        .unwrap();
    assert_eq!(seen.aud, Some(granted));
}

/// Runs a flow of `client` for `subject`; returns the ID token's `sub`, and introspection's
/// `sub` and `obfuscated_subject`, and userinfo's `sub`.
async fn subjects_seen(
    srv: &Server,
    client: &str,
    redirect: &str,
    accept: AcceptLogin,
) -> (String, Option<String>, Option<String>, String) {
    let r = srv
        .flow(
            &mut Browser::default(),
            &[("client_id", client), ("redirect_uri", redirect)],
            accept,
            grant(&["openid"]),
        )
        .await;
    let code = param(&r, "code").unwrap_or_else(|| panic!("{client}: {}", r.location));
    let t = srv
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect),
            ],
            &basic(client, CLIENT_SECRET),
        )
        .await
        .unwrap();
    let claims = srv.id_claims(t.id_token.as_deref().unwrap()).await;
    let seen = srv
        .oauth2
        .introspect(&t.access_token, "", "")
        .await
        .unwrap();
    let Userinfo::Json(info) = srv.oauth2.userinfo(&t.access_token).await.unwrap() else {
        panic!("{client}: userinfo was signed")
    };
    (
        claims["sub"].as_str().unwrap_or_default().to_string(),
        seen.sub,
        seen.obfuscated_subject,
        info["sub"].as_str().unwrap_or_default().to_string(),
    )
}

/// OIDC Core 8.1 as Hydra computes it: hex SHA-256 of the sector host (port included), the
/// subject and the salt. Introspection keeps the real subject for the resource server.
#[tokio::test]
async fn pairwise_clients_see_their_own_subject() {
    let srv = Server::start(PAIRWISE).await;
    srv.client(json!({})).await;
    srv.client(
        json!({"client_id": "pw", "subject_type": "pairwise", "redirect_uris": [PW_REDIRECT]}),
    )
    .await;
    srv.client(json!({
        "client_id": "pw-port",
        "subject_type": "pairwise",
        "redirect_uris": ["https://pw.example:8443/cb"],
    }))
    .await;
    let pw = sha256_hex(&format!("pw.example{}{SALT}", "alice"));
    let pw_port = sha256_hex(&format!("pw.example:8443{}{SALT}", "alice"));
    assert_ne!(pw, pw_port);
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("app", REDIRECT, "alice", None),
        ("pw", PW_REDIRECT, pw.as_str(), Some(pw.as_str())),
        (
            "pw-port",
            "https://pw.example:8443/cb",
            pw_port.as_str(),
            Some(pw_port.as_str()),
        ),
    ];
    for (client, redirect, expected, obfuscated) in cases {
        let (id_sub, sub, obf, info_sub) =
            subjects_seen(&srv, client, redirect, login("alice")).await;
        assert_eq!(id_sub, *expected, "{client}: ID token");
        assert_eq!(info_sub, *expected, "{client}: userinfo");
        assert_eq!(sub.as_deref(), Some("alice"), "{client}: introspection");
        assert_eq!(obf.as_deref(), *obfuscated, "{client}: obfuscated_subject");
    }
    // The same person at the same sector is the same pairwise subject; another is not.
    let (bob, ..) = subjects_seen(&srv, "pw", PW_REDIRECT, login("bob")).await;
    assert_eq!(bob, sha256_hex(&format!("pw.examplebob{SALT}")));
    let (again, ..) = subjects_seen(&srv, "pw", PW_REDIRECT, login("alice")).await;
    assert_eq!(again, pw);
}

#[tokio::test]
async fn a_forced_subject_identifier_wins_over_pairwise() {
    let srv = Server::start(PAIRWISE).await;
    srv.client(json!({})).await;
    srv.client(
        json!({"client_id": "pw", "subject_type": "pairwise", "redirect_uris": [PW_REDIRECT]}),
    )
    .await;
    let forced = AcceptLogin {
        force_subject_identifier: "forced-7".into(),
        ..login("alice")
    };
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("app", REDIRECT, None),
        ("pw", PW_REDIRECT, Some("forced-7")),
    ];
    for (client, redirect, obfuscated) in cases {
        let (id_sub, sub, obf, info_sub) =
            subjects_seen(&srv, client, redirect, forced.clone()).await;
        assert_eq!(id_sub, "forced-7", "{client}");
        assert_eq!(info_sub, "forced-7", "{client}");
        assert_eq!(sub.as_deref(), Some("alice"), "{client}");
        assert_eq!(obf.as_deref(), *obfuscated, "{client}");
    }
}

#[tokio::test]
async fn subject_types_are_limited_to_what_the_server_offers() {
    let public_only = Server::start(&[]).await;
    let both = Server::start(PAIRWISE).await;
    let cases: &[(&str, &Server, &str, bool)] = &[
        (
            "public server, pairwise client",
            &public_only,
            "pairwise",
            false,
        ),
        ("public server, public client", &public_only, "public", true),
        ("pairwise server, pairwise client", &both, "pairwise", true),
        ("pairwise server, unknown type", &both, "secret", false),
    ];
    for (i, (case, srv, subject_type, ok)) in cases.iter().enumerate() {
        let id = format!("c{i}");
        let created = srv
            .clients
            .create(client_model(
                json!({"client_id": id, "subject_type": subject_type}),
            ))
            .await;
        match created {
            Ok(c) => {
                assert!(ok, "{case}: created");
                assert_eq!(c.subject_type, *subject_type, "{case}");
            }
            Err(ClientsError::Invalid(e)) => {
                assert!(!ok, "{case}: {e}");
                assert_eq!(e.code(), "invalid_client_metadata", "{case}");
                assert!(
                    e.to_string().contains(&format!(
                        "Subject type {subject_type} is not supported by server"
                    )),
                    "{case}: {e}"
                );
            }
            Err(e) => panic!("{case}: {e:?}"),
        }
    }
}

fn with_hint<'a>(request: &[(&'a str, &'a str)], token: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut over = request.to_vec();
    over.push(("id_token_hint", token));
    over
}

/// `id_token_hint` must name the remembered subject, as the client saw it (pairwise included).
#[tokio::test]
async fn an_id_token_hint_must_match_the_remembered_subject() {
    let srv = Server::start(PAIRWISE).await;
    srv.client(
        json!({"client_id": "pw", "subject_type": "pairwise", "redirect_uris": [PW_REDIRECT]}),
    )
    .await;
    let request = [("client_id", "pw"), ("redirect_uri", PW_REDIRECT)];
    let remember = |subject: &str| AcceptLogin {
        remember: true,
        ..login(subject)
    };
    let mut alice = Browser::default();
    let r = srv
        .flow(&mut alice, &request, remember("alice"), grant(&["openid"]))
        .await;
    let code = param(&r, "code").unwrap();
    let t = srv
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", PW_REDIRECT),
            ],
            &basic("pw", CLIENT_SECRET),
        )
        .await
        .unwrap();
    let hint = t.id_token.unwrap();
    let mut bob = Browser::default();
    srv.flow(&mut bob, &request, remember("bob"), grant(&["openid"]))
        .await;
    // Alice's browser: the pairwise `sub` of the hint is hers.
    let r = alice.authorize(&srv, &with_hint(&request, &hint)).await;
    let challenge = param(&r, "login_challenge").unwrap_or_else(|| panic!("{}", r.location));
    let (flow, _) = srv.oauth2.get_login_request(&challenge).await.unwrap();
    assert!(flow.login_skip);
    assert_eq!(
        flow.oidc_context.id_token_hint_claims.get("sub"),
        Some(&json!(sha256_hex(&format!("pw.examplealice{SALT}"))))
    );
    // Bob's browser with Alice's hint.
    let r = bob.authorize(&srv, &with_hint(&request, &hint)).await;
    let (e, description) = redirect_error(&r);
    assert_eq!(e, "login_required");
    assert!(
        description.contains(
            "subject claim from id_token_hint does not match subject from authentication session"
        ),
        "{description}"
    );
    // Not a token of ours.
    let r = alice.authorize(&srv, &with_hint(&request, "a.b.c")).await;
    let (e, description) = redirect_error(&r);
    assert_eq!(e, "invalid_request");
    assert!(
        description.contains("decoding id token from id_token_hint parameter failed"),
        "{description}"
    );
}
