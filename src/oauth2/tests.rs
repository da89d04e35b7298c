//! The protocol rules as tables (in the manner of fosite's `handler/oauth2/*_test.go`): each row
//! names its case, its input and the exact outcome. Pure functions only; the service-level
//! tests in `service/tests` show the same rules through the use cases.
use super::pkce::{check_challenge, verify};
use super::redirect::resolve;
use super::scope::{first_denied_audience, ScopeStrategy};
use super::subject::pairwise;
use super::{has_offline, split_spaces, OAuthError};
use crate::domain::client::Client;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// `Ok(())`, or the error's name and a part of its hint.
type Expect = Result<(), (&'static str, &'static str)>;
/// The resolved URL, or the error's name and a part of its hint.
type ExpectUrl = Result<&'static str, (&'static str, &'static str)>;
/// Redirect parameters in order.
type Pairs = Vec<(&'static str, String)>;

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Asserts an outcome: `Ok(())`, or the error's name and a part of its hint.
#[track_caller]
fn check(case: &str, got: Result<(), OAuthError>, want: Expect) {
    match (got, want) {
        (Ok(()), Ok(())) => {}
        (Err(e), Err((name, hint))) => {
            assert_eq!(e.name, name, "{case}: {e:?}");
            assert!(
                e.hint.contains(hint),
                "{case}: hint {:?} lacks {hint:?}",
                e.hint
            );
        }
        (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn wildcard_scopes_match_one_segment_per_star() {
    let granted = v(&["openid", "photos.*", "api.*.read", "offline"]);
    let cases: &[(&str, &str, bool)] = &[
        ("the name itself", "openid", true),
        ("one segment under a star", "photos.read", true),
        ("the pattern itself", "photos.*", true),
        ("a star needs a non-empty segment", "photos.", false),
        ("a star covers one segment only", "photos.read.all", false),
        ("the bare prefix", "photos", false),
        ("a star in the middle", "api.users.read", true),
        ("a star in the middle, other tail", "api.users.write", false),
        ("an empty middle segment", "api..read", false),
        ("case matters", "OpenID", false),
        ("a prefix of a name", "open", false),
        ("unknown", "email", false),
        ("empty", "", false),
    ];
    for (case, needle, allowed) in cases {
        assert_eq!(
            ScopeStrategy::Wildcard.allows(&granted, needle),
            *allowed,
            "{case}: {needle:?}"
        );
    }
}

#[test]
fn exact_scopes_match_names_only() {
    let granted = v(&["openid", "photos.*"]);
    let cases: &[(&str, bool)] = &[
        ("openid", true),
        ("photos.*", true),
        ("photos.read", false),
        ("OPENID", false),
        ("openid ", false),
        ("", false),
    ];
    for (needle, allowed) in cases {
        assert_eq!(
            ScopeStrategy::Exact.allows(&granted, needle),
            *allowed,
            "{needle:?}"
        );
    }
}

/// The first scope not covered is named, in the order requested; nothing requested is fine.
#[test]
fn the_first_denied_scope_is_named_in_request_order() {
    let allowed = v(&["openid", "photos.*"]);
    let cases: &[(ScopeStrategy, &[&str], Option<&str>)] = &[
        (ScopeStrategy::Wildcard, &[], None),
        (ScopeStrategy::Wildcard, &["openid", "photos.read"], None),
        (ScopeStrategy::Wildcard, &["openid", "b", "a"], Some("b")),
        (
            ScopeStrategy::Wildcard,
            &["photos.a.b", "x"],
            Some("photos.a.b"),
        ),
        (
            ScopeStrategy::Exact,
            &["openid", "photos.read"],
            Some("photos.read"),
        ),
        (ScopeStrategy::Exact, &["photos.*", "openid"], None),
    ];
    for (strategy, requested, denied) in cases {
        let requested = v(requested);
        assert_eq!(
            strategy.first_denied(&allowed, &requested),
            *denied,
            "{strategy:?} {requested:?}"
        );
    }
}

/// fosite's default audience strategy: same scheme, host and port, path equal or below.
#[test]
fn audiences_match_by_origin_and_path_prefix() {
    let allowed = v(&[
        "https://api.example.com/v1",
        "https://files.example.com",
        "urn:example:aud",
    ]);
    let cases: &[(&str, &str, bool)] = &[
        ("equal", "https://api.example.com/v1", true),
        ("below", "https://api.example.com/v1/users", true),
        ("deeper", "https://api.example.com/v1/users/7", true),
        ("trailing slash", "https://api.example.com/v1/", true),
        (
            "a sibling sharing the prefix",
            "https://api.example.com/v10",
            false,
        ),
        ("the parent", "https://api.example.com", false),
        ("another scheme", "http://api.example.com/v1", false),
        ("another host", "https://evil.example.com/v1", false),
        (
            "a host suffix",
            "https://api.example.com.evil.example/v1",
            false,
        ),
        ("another port", "https://api.example.com:8443/v1", false),
        (
            "under a host-wide audience",
            "https://files.example.com/a/b",
            true,
        ),
        ("a non-URL audience, equal", "urn:example:aud", true),
        ("a non-URL audience, extended", "urn:example:aud:sub", false),
        ("not a URL", "api", false),
    ];
    for (case, requested, allowed_) in cases {
        let requested = v(&[requested]);
        let denied = first_denied_audience(&allowed, &requested);
        assert_eq!(denied.is_none(), *allowed_, "{case}: {requested:?}");
    }
    let requested = v(&[
        "https://api.example.com/v1/a",
        "https://other.example/",
        "https://third.example/",
    ]);
    assert_eq!(
        first_denied_audience(&allowed, &requested),
        Some("https://other.example/")
    );
    assert_eq!(first_denied_audience(&[], &[]), None);
    assert_eq!(
        first_denied_audience(&[], &requested[..1]),
        Some("https://api.example.com/v1/a")
    );
}

/// fosite authorize_helper.go and RFC 8252 §7.3: exact match, any port on a loopback IP.
#[test]
fn redirect_uris_match_exactly_or_by_the_loopback_rule() {
    let registered = v(&[
        "https://app.example.com/cb",
        "http://127.0.0.1/cb",
        "http://[::1]/cb?x=1",
        "com.example.app:/oauth",
        "http://localhost:3000/cb",
        "https://127.0.0.1/secure",
    ]);
    let mismatch = "does not match any of the OAuth 2.0 Client's pre-registered redirect urls";
    let cases: &[(&str, ExpectUrl)] = &[
        (
            "https://app.example.com/cb",
            Ok("https://app.example.com/cb"),
        ),
        (
            "https://app.example.com/cb/",
            Err(("invalid_request", mismatch)),
        ),
        (
            "https://app.example.com/cb?x=1",
            Err(("invalid_request", mismatch)),
        ),
        (
            "https://APP.example.com/cb",
            Err(("invalid_request", mismatch)),
        ),
        ("http://127.0.0.1:8123/cb", Ok("http://127.0.0.1:8123/cb")),
        ("http://127.0.0.1/cb", Ok("http://127.0.0.1/cb")),
        (
            "http://127.0.0.1:8123/other",
            Err(("invalid_request", mismatch)),
        ),
        ("http://[::1]:9000/cb?x=1", Ok("http://[::1]:9000/cb?x=1")),
        (
            "http://[::1]:9000/cb?x=2",
            Err(("invalid_request", mismatch)),
        ),
        (
            "https://127.0.0.1:9/secure",
            Err(("invalid_request", mismatch)),
        ),
        (
            "http://localhost:3001/cb",
            Err(("invalid_request", mismatch)),
        ),
        ("http://localhost:3000/cb", Ok("http://localhost:3000/cb")),
        ("com.example.app:/oauth", Ok("com.example.app:/oauth")),
        (
            "https://app.example.com/cb#x",
            Err(("invalid_request", "absolute URL without a fragment")),
        ),
        (
            "/cb",
            Err(("invalid_request", "absolute URL without a fragment")),
        ),
        (
            "",
            Err((
                "invalid_request",
                "required when the client has zero or several registered redirect URIs",
            )),
        ),
    ];
    for (requested, want) in cases {
        let got = resolve(requested, &registered);
        if let (Ok(url), Ok(expected)) = (&got, want) {
            assert_eq!(url.as_str(), *expected, "{requested:?}");
            continue;
        }
        check(requested, got.map(|_| ()), want.map(|_| ()));
    }
}

/// An omitted `redirect_uri` takes the only registered one, under the same https rule.
#[test]
fn an_omitted_redirect_uri_defaults_under_the_same_rules() {
    let insecure = "Redirect URL is using an insecure protocol";
    let cases: &[(&str, &[&str], Expect)] = &[
        ("one https URI", &["https://app.example/cb"], Ok(())),
        (
            "none registered",
            &[],
            Err(("invalid_request", "required when the client has zero")),
        ),
        (
            "two registered",
            &["https://a.example/cb", "https://b.example/cb"],
            Err(("invalid_request", "zero or several")),
        ),
        (
            "plain http to a remote host",
            &["http://app.example/cb"],
            Err(("invalid_request", insecure)),
        ),
        (
            "plain http to localhost",
            &["http://localhost:9000/cb"],
            Ok(()),
        ),
        (
            "plain http to a .localhost name",
            &["http://dev.localhost/cb"],
            Ok(()),
        ),
        (
            "plain http to a loopback IP",
            &["http://127.0.0.1:5555/cb"],
            Ok(()),
        ),
        ("a private-use scheme", &["com.example.app:/cb"], Ok(())),
    ];
    for (case, registered, want) in cases {
        check(case, resolve("", &v(registered)).map(|_| ()), *want);
    }
    // Requested explicitly, plain http to a remote host fails the same way.
    check(
        "requested plain http",
        resolve("http://app.example/cb", &v(&["http://app.example/cb"])).map(|_| ()),
        Err(("invalid_request", insecure)),
    );
}

/// fosite handler/pkce at `/oauth2/auth`: S256 only, 43 to 128 unreserved characters.
#[test]
fn code_challenges_are_s256_and_well_formed() {
    let good = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let missing = "Clients must include a code_challenge";
    let plain = "Clients must use code_challenge_method=S256, plain is not allowed.";
    let shape = "must be 43 to 128 characters of [A-Za-z0-9-._~]";
    let long_ok = "a".repeat(128);
    let too_long = "a".repeat(129);
    let too_short = &good[..42];
    let bad_char = format!("{}+", &good[..42]);
    let cases: &[(&str, &str, &str, bool, Expect)] = &[
        ("no challenge, not enforced", "", "", false, Ok(())),
        (
            "no challenge, enforced",
            "",
            "",
            true,
            Err(("invalid_request", missing)),
        ),
        (
            "a method but no challenge, enforced",
            "",
            "S256",
            true,
            Err(("invalid_request", missing)),
        ),
        ("S256", good, "S256", false, Ok(())),
        ("S256, enforced", good, "S256", true, Ok(())),
        (
            "plain",
            good,
            "plain",
            false,
            Err(("invalid_request", plain)),
        ),
        (
            "no method means plain",
            good,
            "",
            false,
            Err(("invalid_request", plain)),
        ),
        (
            "the method is case-sensitive",
            good,
            "s256",
            false,
            Err(("invalid_request", plain)),
        ),
        (
            "42 characters",
            too_short,
            "S256",
            false,
            Err(("invalid_request", shape)),
        ),
        ("128 characters", &long_ok, "S256", false, Ok(())),
        (
            "129 characters",
            &too_long,
            "S256",
            false,
            Err(("invalid_request", shape)),
        ),
        (
            "a reserved character",
            &bad_char,
            "S256",
            false,
            Err(("invalid_request", shape)),
        ),
    ];
    for (case, challenge, method, enforced, want) in cases {
        check(case, check_challenge(challenge, method, *enforced), *want);
    }
}

/// fosite handler/pkce at `/oauth2/token`: the verifier must hash to the stored challenge.
#[test]
fn code_verifiers_must_hash_to_the_challenge() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let long = "~".repeat(128);
    let long_challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(long.as_bytes()));
    let shape = "The PKCE code verifier must be 43 to 128 characters";
    let mismatch = "The PKCE code challenge did not match the code verifier.";
    let other = format!("{}A", &verifier[..42]);
    let cases: &[(&str, &str, &str, Expect)] = &[
        ("no challenge was made", "", "", Ok(())),
        ("no challenge, any verifier", "", "whatever", Ok(())),
        ("RFC 7636 appendix B", challenge, verifier, Ok(())),
        ("128 characters", &long_challenge, &long, Ok(())),
        ("no verifier", challenge, "", Err(("invalid_grant", shape))),
        (
            "too short",
            challenge,
            &verifier[..42],
            Err(("invalid_grant", shape)),
        ),
        (
            "another verifier",
            challenge,
            &other,
            Err(("invalid_grant", mismatch)),
        ),
        (
            "the challenge as verifier",
            challenge,
            challenge,
            Err(("invalid_grant", mismatch)),
        ),
    ];
    for (case, challenge, verifier, want) in cases {
        check(case, verify(challenge, verifier), *want);
    }
}

/// OIDC Core 8.1 as Hydra computes it: SHA-256 over the sector host as Go's `URL.Host` writes it
/// (port kept), the subject and the salt.
fn pairwise_client(redirects: &[&str], sector: &str) -> Client {
    Client {
        redirect_uris: v(redirects),
        sector_identifier_uri: sector.into(),
        ..Client::default()
    }
}

#[test]
fn pairwise_subjects_hash_sector_host_subject_and_salt() {
    let client = pairwise_client;
    let cases: &[(&str, Client, &str)] = &[
        (
            "one redirect URI",
            client(&["https://app.example/cb"], ""),
            "app.example",
        ),
        (
            "its port is kept",
            client(&["https://app.example:8443/cb"], ""),
            "app.example:8443",
        ),
        (
            "user info is dropped",
            client(&["https://u:p@app.example/cb"], ""),
            "app.example",
        ),
        (
            "loopback",
            client(&["http://127.0.0.1:5555/cb"], ""),
            "127.0.0.1:5555",
        ),
        (
            "the sector URI wins over several redirect URIs",
            client(
                &["https://a.example/cb", "https://b.example/cb"],
                "https://sector.example/ids.json",
            ),
            "sector.example",
        ),
        (
            "the sector URI wins over one redirect URI",
            client(&["https://a.example/cb"], "https://sector.example/ids.json"),
            "sector.example",
        ),
    ];
    for (case, c, host) in cases {
        assert_eq!(
            pairwise("alice", c, "salt").unwrap(),
            sha256_hex(&format!("{host}alicesalt")),
            "{case}"
        );
    }
}

/// One sector and subject, one identifier; another subject or salt, another identifier; no
/// sector at all, no identifier.
#[test]
fn pairwise_subjects_differ_by_sector_subject_and_salt_only() {
    let client = pairwise_client;
    let one = client(&["https://app.example/cb"], "");
    let same_host = client(&["https://app.example/other?x=1"], "");
    assert_eq!(
        pairwise("alice", &one, "s").unwrap(),
        pairwise("alice", &same_host, "s").unwrap(),
        "one sector, one subject"
    );
    assert_ne!(
        pairwise("alice", &one, "s").unwrap(),
        pairwise("bob", &one, "s").unwrap()
    );
    assert_ne!(
        pairwise("alice", &one, "s").unwrap(),
        pairwise("alice", &one, "t").unwrap()
    );
    let errors: &[(&str, Client, &str)] = &[
        (
            "no URI at all",
            client(&[], ""),
            "No redirect_uri and no sector_identifier_uri",
        ),
        (
            "several redirect URIs, no sector",
            client(&["https://a.example/cb", "https://b.example/cb"], ""),
            "Several redirect_uris but no sector_identifier_uri",
        ),
    ];
    for (case, c, hint) in errors {
        check(
            case,
            pairwise("alice", c, "salt").map(|_| ()),
            Err(("invalid_request", *hint)),
        );
    }
}

#[test]
fn space_separated_parameters_and_offline_scopes() {
    let cases: &[(&str, &[&str], bool)] = &[
        ("", &[], false),
        ("   ", &[], false),
        ("openid", &["openid"], false),
        ("openid  offline", &["openid", "offline"], true),
        (" offline_access ", &["offline_access"], true),
        ("offline.read profile", &["offline.read", "profile"], false),
        ("Offline", &["Offline"], false),
    ];
    for (raw, parts, offline) in cases {
        let split = split_spaces(raw);
        assert_eq!(split, v(parts), "{raw:?}");
        assert_eq!(has_offline(&split), *offline, "{raw:?}");
    }
}

/// fosite's error table: name and status per constructor, as the HTTP edge sends them.
#[test]
fn errors_carry_fosite_names_and_statuses() {
    let cases: &[(OAuthError, &str, u16)] = &[
        (OAuthError::invalid_request(), "invalid_request", 400),
        (OAuthError::invalid_client(), "invalid_client", 401),
        (OAuthError::invalid_grant(), "invalid_grant", 400),
        (
            OAuthError::unauthorized_client(),
            "unauthorized_client",
            400,
        ),
        (OAuthError::access_denied(), "access_denied", 403),
        (OAuthError::invalid_scope(), "invalid_scope", 400),
        (
            OAuthError::request_unauthorized(),
            "request_unauthorized",
            401,
        ),
        (OAuthError::request_forbidden(), "request_forbidden", 403),
        (OAuthError::scope_not_granted(), "scope_not_granted", 403),
        (OAuthError::token_expired(), "token_expired", 401),
        (OAuthError::server_error(), "server_error", 500),
        (
            OAuthError::temporarily_unavailable(),
            "temporarily_unavailable",
            503,
        ),
        (OAuthError::throttled(), "temporarily_unavailable", 429),
        (
            OAuthError::address_throttled(),
            "temporarily_unavailable",
            429,
        ),
        (OAuthError::login_required(), "login_required", 400),
        (OAuthError::consent_required(), "consent_required", 400),
    ];
    for (e, name, status) in cases {
        assert_eq!((e.name.as_str(), e.status), (*name, *status), "{name}");
        assert!(!e.description.is_empty() && e.hint.is_empty(), "{name}");
    }
}

/// Redirect parameters: `error` and the joined description, or the legacy field set.
#[test]
fn error_redirect_parameters_in_both_shapes() {
    let e = OAuthError::invalid_scope()
        .hint("Scope \"x\" is not allowed.")
        .debug("row 7");
    let pairs = |legacy, debug| -> Vec<(String, String)> { e.params(legacy, debug) };
    let joined = format!("{} Scope 'x' is not allowed.", e.description);
    let cases: Vec<(bool, bool, Pairs)> = vec![
        (
            false,
            false,
            vec![
                ("error", "invalid_scope".into()),
                ("error_description", joined.clone()),
            ],
        ),
        (
            false,
            true,
            vec![
                ("error", "invalid_scope".into()),
                ("error_description", format!("{joined} row 7")),
            ],
        ),
        (
            true,
            false,
            vec![
                ("error", "invalid_scope".into()),
                ("error_description", e.description.clone()),
                ("error_hint", "Scope \"x\" is not allowed.".into()),
            ],
        ),
        (
            true,
            true,
            vec![
                ("error", "invalid_scope".into()),
                ("error_description", e.description.clone()),
                ("error_hint", "Scope \"x\" is not allowed.".into()),
                ("error_debug", "row 7".into()),
            ],
        ),
    ];
    for (legacy, debug, want) in cases {
        let want: Vec<(String, String)> =
            want.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(pairs(legacy, debug), want, "legacy {legacy}, debug {debug}");
    }
}
