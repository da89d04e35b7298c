//! The login/consent state machine: states only move forward, every answer and verifier counts
//! once, CSRF cookies bind the browser, the injected clock expires requests and remembered
//! logins and consents.
use super::fixture::*;
use crate::domain::flow::Flow;
use serde_json::json;

async fn started() -> Server {
    let srv = Server::start(&[]).await;
    srv.client(json!({})).await;
    srv
}

/// Starts a flow; returns the login challenge.
async fn login_challenge(srv: &Server, browser: &mut Browser, over: &[(&str, &str)]) -> String {
    let r = browser.authorize(srv, over).await;
    param(&r, "login_challenge").unwrap_or_else(|| panic!("no login challenge: {}", r.location))
}

/// Runs the login step; returns the consent challenge.
async fn consent_challenge(
    srv: &Server,
    browser: &mut Browser,
    over: &[(&str, &str)],
    accept: AcceptLogin,
) -> String {
    let challenge = login_challenge(srv, browser, over).await;
    let back = srv.oauth2.accept_login(&challenge, accept).await.unwrap();
    let r = browser.follow(srv, &back).await;
    param(&r, "consent_challenge").unwrap_or_else(|| panic!("no consent challenge: {}", r.location))
}

/// The consent request a flow reaches, as the consent app reads it.
async fn consent_request(
    srv: &Server,
    browser: &mut Browser,
    over: &[(&str, &str)],
    accept: AcceptLogin,
) -> Flow {
    let challenge = consent_challenge(srv, browser, over, accept).await;
    srv.oauth2.get_consent_request(&challenge).await.unwrap().0
}

fn remembered(subject: &str, remember_for: i64) -> AcceptLogin {
    AcceptLogin {
        remember: true,
        remember_for,
        ..login(subject)
    }
}

#[tokio::test]
async fn a_login_request_is_answered_once() {
    let srv = started().await;
    let mut browser = Browser::default();
    let challenge = login_challenge(&srv, &mut browser, &[]).await;
    let back = srv
        .oauth2
        .accept_login(&challenge, login("alice"))
        .await
        .unwrap();
    assert!(back.starts_with(&format!("{ISSUER}oauth2/auth?")), "{back}");
    assert!(back.contains("login_verifier="), "{back}");
    let again = srv.oauth2.accept_login(&challenge, login("bob")).await;
    assert!(matches!(again, Err(FlowError::Conflict(_))), "{again:?}");
    let reject = srv.oauth2.reject_login(&challenge, Denial::default()).await;
    assert!(matches!(reject, Err(FlowError::Conflict(_))), "{reject:?}");
    // Answered but not yet used: the login app may still read it.
    let (flow, _) = srv.oauth2.get_login_request(&challenge).await.unwrap();
    assert_eq!(flow.login.map(|l| l.subject).as_deref(), Some("alice"));
    browser.follow(&srv, &back).await;
    let used = srv.oauth2.get_login_request(&challenge).await;
    assert!(matches!(used, Err(FlowError::Conflict(_))), "{used:?}");
    for unknown in [
        srv.oauth2.get_login_request("nope").await.err(),
        srv.oauth2.get_consent_request("nope").await.err(),
        srv.oauth2.accept_login("nope", login("a")).await.err(),
        srv.oauth2.accept_consent("nope", grant(&[])).await.err(),
    ] {
        assert!(matches!(unknown, Some(FlowError::NotFound)), "{unknown:?}");
    }
}

#[tokio::test]
async fn a_login_verifier_is_spent_once() {
    let srv = started().await;
    let mut browser = Browser::default();
    let challenge = login_challenge(&srv, &mut browser, &[]).await;
    let back = srv
        .oauth2
        .accept_login(&challenge, login("alice"))
        .await
        .unwrap();
    let first = browser.follow(&srv, &back).await;
    assert!(
        first.location.starts_with(CONSENT_URL),
        "{}",
        first.location
    );
    let replay = browser.follow(&srv, &back).await;
    assert!(replay.location.starts_with(REDIRECT), "{}", replay.location);
    let (e, description) = redirect_error(&replay);
    assert_eq!(e, "invalid_request");
    assert!(
        description.contains("The login verifier has already been used."),
        "{description}"
    );
    assert_eq!(param(&replay, "state").as_deref(), Some(STATE));
    let forged = browser
        .authorize(&srv, &[("login_verifier", "0123456789abcdef")])
        .await;
    let (e, description) = redirect_error(&forged);
    assert_eq!(e, "access_denied");
    assert!(
        description.contains("has already been used, has not been granted, or is invalid"),
        "{description}"
    );
}

/// Hydra upserts consent answers: the last one before the verifier is spent counts.
#[tokio::test]
async fn a_consent_answer_may_change_until_its_verifier_is_spent() {
    let srv = started().await;
    let mut browser = Browser::default();
    let challenge = consent_challenge(&srv, &mut browser, &[], login("alice")).await;
    srv.oauth2
        .accept_consent(&challenge, grant(&["openid"]))
        .await
        .unwrap();
    let back = srv
        .oauth2
        .reject_consent(
            &challenge,
            Denial {
                error: "access_denied".into(),
                error_description: "Changed my mind".into(),
                ..Denial::default()
            },
        )
        .await
        .unwrap();
    let r = browser.follow(&srv, &back).await;
    let (e, description) = redirect_error(&r);
    assert_eq!(e, "access_denied");
    assert!(description.contains("Changed my mind"), "{description}");
    assert_eq!(param(&r, "code"), None);
    let late = srv
        .oauth2
        .accept_consent(&challenge, grant(&["openid"]))
        .await;
    assert!(matches!(late, Err(FlowError::Conflict(_))), "{late:?}");
    let read = srv.oauth2.get_consent_request(&challenge).await;
    assert!(matches!(read, Err(FlowError::Conflict(_))), "{read:?}");
    let replay = browser.follow(&srv, &back).await;
    let (e, description) = redirect_error(&replay);
    assert_eq!(e, "invalid_request");
    assert!(
        description.contains("The consent verifier has already been used."),
        "{description}"
    );
}

/// Denials are replayed to the client as the OAuth error the app chose (consent/types.go).
#[tokio::test]
async fn denials_reach_the_client() {
    let srv = started().await;
    let denial = Denial {
        error: "consent_required".into(),
        error_description: "The user must agree first.".into(),
        error_hint: "Ask again later.".into(),
        status_code: 403,
        ..Denial::default()
    };
    for at_login in [true, false] {
        let case = if at_login { "login" } else { "consent" };
        let mut browser = Browser::default();
        let back = if at_login {
            let challenge = login_challenge(&srv, &mut browser, &[]).await;
            srv.oauth2.reject_login(&challenge, denial.clone()).await
        } else {
            let challenge = consent_challenge(&srv, &mut browser, &[], login("alice")).await;
            srv.oauth2.reject_consent(&challenge, denial.clone()).await
        }
        .unwrap();
        let r = browser.follow(&srv, &back).await;
        assert!(r.location.starts_with(REDIRECT), "{case}: {}", r.location);
        let (e, description) = redirect_error(&r);
        assert_eq!(e, "consent_required", "{case}");
        assert_eq!(
            description, "The user must agree first. Ask again later.",
            "{case}"
        );
        assert_eq!(param(&r, "state").as_deref(), Some(STATE), "{case}");
    }
}

#[tokio::test]
async fn verifiers_need_the_csrf_cookie_of_their_browser() {
    let srv = started().await;
    let cases: &[(&str, bool, Option<&str>, &str)] = &[
        (
            "login cookie missing",
            true,
            None,
            "The login CSRF cookie is missing or invalid.",
        ),
        (
            "login cookie of another flow",
            true,
            Some("0000"),
            "The login CSRF cookie",
        ),
        (
            "consent cookie missing",
            false,
            None,
            "The consent CSRF cookie is missing or invalid.",
        ),
        (
            "consent cookie of another flow",
            false,
            Some("0000"),
            "The consent CSRF cookie",
        ),
    ];
    for (case, at_login, cookie, hint) in cases {
        let mut browser = Browser::default();
        let back = if *at_login {
            let challenge = login_challenge(&srv, &mut browser, &[]).await;
            srv.oauth2.accept_login(&challenge, login("alice")).await
        } else {
            let challenge = consent_challenge(&srv, &mut browser, &[], login("alice")).await;
            srv.oauth2
                .accept_consent(&challenge, grant(&["openid"]))
                .await
        }
        .unwrap();
        let value = cookie.map(str::to_string);
        if *at_login {
            browser.cookies.login_csrf = value;
        } else {
            browser.cookies.consent_csrf = value;
        }
        let r = browser.follow(&srv, &back).await;
        let (e, description) = redirect_error(&r);
        assert_eq!(e, "request_forbidden", "{case}");
        assert!(description.contains(hint), "{case}: {description}");
        assert_eq!(param(&r, "code"), None, "{case}");
    }
}

/// `ttl.login_consent_request` counts from the authorization request, on the injected clock.
#[tokio::test]
async fn login_and_consent_requests_expire_by_the_clock() {
    let srv = started().await;
    // (case, expire at the consent step?, seconds after the request, outcome)
    let cases: &[(&str, bool, i64, Option<&str>)] = &[
        ("login at the last second", false, TTL_FLOW, None),
        (
            "login one second late",
            false,
            TTL_FLOW + 1,
            Some("The login request has expired, please try again."),
        ),
        ("consent at the last second", true, TTL_FLOW, None),
        (
            "consent one second late",
            true,
            TTL_FLOW + 1,
            Some("The consent request has expired, please try again."),
        ),
    ];
    for (case, at_consent, after, outcome) in cases {
        let mut browser = Browser::default();
        let started_at = srv.clock.unix();
        let back = if *at_consent {
            let challenge = consent_challenge(&srv, &mut browser, &[], login("alice")).await;
            srv.oauth2
                .accept_consent(&challenge, grant(&["openid"]))
                .await
        } else {
            let challenge = login_challenge(&srv, &mut browser, &[]).await;
            srv.oauth2.accept_login(&challenge, login("alice")).await
        }
        .unwrap();
        srv.clock.advance(started_at + after - srv.clock.unix());
        let r = browser.follow(&srv, &back).await;
        match outcome {
            None if *at_consent => assert!(param(&r, "code").is_some(), "{case}: {}", r.location),
            None => assert!(
                r.location.starts_with(CONSENT_URL),
                "{case}: {}",
                r.location
            ),
            Some(hint) => {
                let (e, description) = redirect_error(&r);
                assert_eq!(e, "request_unauthorized", "{case}");
                assert!(description.contains(hint), "{case}: {description}");
            }
        }
    }
}

#[tokio::test]
async fn accepting_a_login_checks_the_subject() {
    let srv = started().await;
    let mut browser = Browser::default();
    let challenge = login_challenge(&srv, &mut browser, &[]).await;
    let empty = srv.oauth2.accept_login(&challenge, login("")).await;
    assert!(
        matches!(&empty, Err(FlowError::BadRequest(m)) if m == "Field 'subject' must not be empty."),
        "{empty:?}"
    );
    // The empty answer did not count: the request is still open.
    let back = srv
        .oauth2
        .accept_login(&challenge, remembered("alice", 0))
        .await
        .unwrap();
    browser.follow(&srv, &back).await;
    // A remembered session fixes the subject of the next login.
    let challenge = login_challenge(&srv, &mut browser, &[]).await;
    let (flow, _) = srv.oauth2.get_login_request(&challenge).await.unwrap();
    assert!(flow.login_skip);
    assert_eq!(flow.subject, "alice");
    let other = srv.oauth2.accept_login(&challenge, login("bob")).await;
    assert!(
        matches!(&other, Err(FlowError::BadRequest(m)) if m.contains("expected 'alice', got 'bob'")),
        "{other:?}"
    );
    srv.oauth2
        .accept_login(&challenge, login("alice"))
        .await
        .unwrap();
}

/// `remember_for` bounds the remembered login on the server, whatever the browser keeps.
#[tokio::test]
async fn a_remembered_login_skips_login_until_it_expires() {
    let srv = started().await;
    let mut browser = Browser::default();
    let r = srv
        .flow(
            &mut browser,
            &[],
            remembered("alice", 60),
            grant(&["openid"]),
        )
        .await;
    assert!(param(&r, "code").is_some(), "{}", r.location);
    assert!(browser.cookies.session.is_some());
    let skips = |over: &'static [(&'static str, &'static str)]| {
        let srv = &srv;
        let cookies = browser.cookies.clone();
        async move {
            let mut b = Browser { cookies };
            let challenge = login_challenge(srv, &mut b, over).await;
            srv.oauth2
                .get_login_request(&challenge)
                .await
                .unwrap()
                .0
                .login_skip
        }
    };
    assert!(skips(&[]).await, "remembered");
    assert!(
        !skips(&[("prompt", "login")]).await,
        "prompt=login asks again"
    );
    srv.clock.advance(59);
    assert!(skips(&[]).await, "59 s later");
    srv.clock.advance(1);
    assert!(!skips(&[]).await, "60 s later the session is over");
}

#[tokio::test]
async fn prompt_none_needs_a_remembered_login_and_consent() {
    let srv = started().await;
    let none = [("prompt", "none")];
    // No session at all.
    let r = Browser::default().authorize(&srv, &none).await;
    let (e, description) = redirect_error(&r);
    assert_eq!(e, "login_required");
    assert!(
        description.contains("no existing login session was found"),
        "{description}"
    );
    // A remembered login, but no remembered consent.
    let mut browser = Browser::default();
    srv.flow(
        &mut browser,
        &[],
        remembered("alice", 0),
        grant(&["openid", "offline"]),
    )
    .await;
    let challenge = login_challenge(&srv, &mut browser, &none).await;
    let back = srv
        .oauth2
        .accept_login(&challenge, login("alice"))
        .await
        .unwrap();
    let r = browser.follow(&srv, &back).await;
    let (e, description) = redirect_error(&r);
    assert_eq!(e, "consent_required");
    assert!(
        description.contains("no previous consent was found"),
        "{description}"
    );
    // Remembered consent too: both apps are still asked, and the code comes without a prompt.
    srv.flow(
        &mut browser,
        &[],
        login("alice"),
        AcceptConsent {
            remember: true,
            ..grant(&["openid", "offline"])
        },
    )
    .await;
    let r = srv
        .flow(
            &mut browser,
            &none,
            login("alice"),
            grant(&["openid", "offline"]),
        )
        .await;
    assert!(param(&r, "code").is_some(), "{}", r.location);
    // max_age: the remembered authentication is too old for a silent login.
    srv.clock.advance(100);
    let r = browser
        .authorize(&srv, &[("prompt", "none"), ("max_age", "50")])
        .await;
    let (e, description) = redirect_error(&r);
    assert_eq!(e, "login_required");
    assert!(description.contains("max_age"), "{description}");
}

/// A remembered consent lets the consent app skip only within what it granted, for as long as
/// `remember_for` says, and never under `prompt=consent`.
#[tokio::test]
async fn a_remembered_consent_covers_only_its_scopes_and_lifetime() {
    let srv = started().await;
    let mut browser = Browser::default();
    srv.flow(
        &mut browser,
        &[("scope", "openid offline")],
        remembered("alice", 0),
        AcceptConsent {
            remember: true,
            remember_for: 300,
            ..grant(&["openid", "offline"])
        },
    )
    .await;
    let cases: &[(&str, i64, Pairs, bool)] = &[
        ("same scopes", 0, &[("scope", "openid offline")], true),
        ("fewer scopes", 0, &[("scope", "openid")], true),
        (
            "a scope not granted before",
            0,
            &[("scope", "openid profile")],
            false,
        ),
        ("prompt=consent", 0, &[("prompt", "consent")], false),
        ("at the end of remember_for", 300, &[], true),
        ("after remember_for", 1, &[], false),
    ];
    for (case, advance, over, skip) in cases {
        srv.clock.advance(*advance);
        let flow = consent_request(&srv, &mut browser, over, login("alice")).await;
        assert_eq!(flow.consent_skip, *skip, "{case}");
        assert_eq!(flow.subject, "alice", "{case}");
    }
}

#[tokio::test]
async fn a_verifier_belongs_to_the_client_it_was_issued_for() {
    let srv = started().await;
    srv.client(json!({"client_id": "other", "redirect_uris": ["https://other.example/cb"]}))
        .await;
    let mut browser = Browser::default();
    let challenge = login_challenge(&srv, &mut browser, &[]).await;
    let back = srv
        .oauth2
        .accept_login(&challenge, login("alice"))
        .await
        .unwrap();
    let verifier = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "login_verifier")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let r = browser
        .authorize(
            &srv,
            &[
                ("client_id", "other"),
                ("redirect_uri", "https://other.example/cb"),
                ("login_verifier", &verifier),
            ],
        )
        .await;
    assert!(
        r.location.starts_with("https://other.example/cb"),
        "{}",
        r.location
    );
    let (e, description) = redirect_error(&r);
    assert_eq!(e, "invalid_request");
    assert!(
        description.contains("The login verifier was issued for another OAuth 2.0 Client."),
        "{description}"
    );
}
