//! The caches and what they serve after a change made through another instance on the same
//! store (`service::changes`): clients and keys within `changes::BOUND`, tokens at once with
//! the introspection cache off, and within `oauth2.introspection_cache_ttl` with it on. A
//! change through the instance itself is served at once everywhere.
use super::fixture::*;
use crate::domain::jwk::ID_TOKEN_SET;
use crate::service::clients::ClientsError;
use serde_json::json;

async fn pair(overrides: &[(&str, &str)]) -> (Server, Server) {
    let a = Server::start(overrides).await;
    a.client(json!({})).await;
    let b = a.replica().await;
    (a, b)
}

async fn client_credentials(srv: &Server, secret: &str) -> Result<TokenResponse, OAuthError> {
    srv.token(
        &[("grant_type", "client_credentials")],
        &basic("app", secret),
    )
    .await
}

/// `id_token_signing_alg_values_supported` of the (cached) discovery document.
async fn signing_algs(srv: &Server) -> serde_json::Value {
    let doc = srv.jwks.discovery(&json!({})).await.unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&doc).unwrap();
    doc["id_token_signing_alg_values_supported"].clone()
}

#[tokio::test]
async fn a_client_change_reaches_other_instances_within_the_bound() {
    let (a, b) = pair(&[]).await;
    assert_eq!(b.clients.get("app").await.unwrap().client_name, "");
    let mut renamed = client_model(json!({"client_name": "Renamed", "client_secret": ""}));
    renamed.client_secret = None;
    a.clients.update("app", renamed).await.unwrap();
    assert_eq!(
        a.clients.get("app").await.unwrap().client_name,
        "Renamed",
        "the writer sees its change at once"
    );
    eventually!(
        "the new name at the replica",
        b.clients.get("app").await.unwrap().client_name == "Renamed"
    );
}

/// The verified-secret cache is keyed by the stored hash: once the client cache entry is void,
/// the old secret fails on every instance.
#[tokio::test]
async fn a_secret_rotation_reaches_other_instances_within_the_bound() {
    let (a, b) = pair(&[]).await;
    client_credentials(&b, CLIENT_SECRET).await.unwrap();
    let rotated = client_model(json!({"client_secret": "rotated-secret-0123456789"}));
    a.clients.update("app", rotated).await.unwrap();
    let e = err(client_credentials(&a, CLIENT_SECRET).await, "writer");
    assert_oauth(
        &e,
        "invalid_client",
        "did not match the registered one",
        "writer",
    );
    eventually!(
        "the old secret refused at the replica",
        client_credentials(&b, CLIENT_SECRET).await.is_err()
    );
    let e = err(client_credentials(&b, CLIENT_SECRET).await, "replica");
    assert_oauth(
        &e,
        "invalid_client",
        "did not match the registered one",
        "replica",
    );
    client_credentials(&b, "rotated-secret-0123456789")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_client_deletion_reaches_other_instances_within_the_bound() {
    let (a, b) = pair(&[]).await;
    let t = client_credentials(&b, CLIENT_SECRET).await.unwrap();
    a.oauth2.delete_client("app").await.unwrap();
    assert!(matches!(
        a.clients.get("app").await,
        Err(ClientsError::NotFound)
    ));
    // Tokens go with their client, in the store: no instance may call them active.
    assert!(!b.active(&t.access_token).await);
    eventually!(
        "the deletion at the replica",
        matches!(b.clients.get("app").await, Err(ClientsError::NotFound))
    );
    let e = err(client_credentials(&b, CLIENT_SECRET).await, "deleted");
    assert_oauth(
        &e,
        "invalid_client",
        "The requested OAuth 2.0 Client does not exist.",
        "deleted",
    );
}

/// A new signing key: the writer signs with it and publishes it at once, the replica within
/// the bound (no token is signed with a stale key set for longer).
#[tokio::test]
async fn a_key_rotation_reaches_other_instances_within_the_bound() {
    let (a, b) = pair(&[]).await;
    let before = b.jwks.public_document().await.unwrap();
    assert!(String::from_utf8_lossy(&before).contains("public:svc-tests"));
    assert_eq!(
        b.jwks.id_token_signer().await.unwrap().kid,
        "public:svc-tests"
    );
    assert_eq!(signing_algs(&b).await, json!(["RS256"]));
    // Newer than the seeded keys: the newest private key signs.
    a.clock.advance(10);
    a.jwks
        .generate(ID_TOKEN_SET, "ES256", "rotated", "sig")
        .await
        .unwrap();
    assert_eq!(
        a.jwks.id_token_signer().await.unwrap().kid,
        "public:rotated"
    );
    let doc = a.jwks.public_document().await.unwrap();
    assert!(String::from_utf8_lossy(&doc).contains("public:rotated"));
    eventually!(
        "the new signer at the replica",
        b.jwks.id_token_signer().await.unwrap().kid == "public:rotated"
    );
    let doc = b.jwks.public_document().await.unwrap();
    let doc = String::from_utf8_lossy(&doc);
    assert!(
        doc.contains("public:rotated") && doc.contains("public:svc-tests"),
        "{doc}"
    );
    // The discovery document names the current signer's algorithm first.
    assert_eq!(signing_algs(&b).await, json!(["ES256", "RS256"]));
    // An ID token from the replica verifies with the writer's published keys.
    let t = b.tokens("openid").await;
    let claims = a.id_claims(t.id_token.as_deref().unwrap()).await;
    assert_eq!(claims["sub"], "alice");
    let header = jsonwebtoken::decode_header(t.id_token.as_deref().unwrap()).unwrap();
    assert_eq!(header.kid.as_deref(), Some("public:rotated"));
}

/// With `oauth2.introspection_cache_ttl` at its default (off), every instance reads the store:
/// a revocation anywhere is seen by the next request everywhere.
#[tokio::test]
async fn without_the_introspection_cache_revocations_are_seen_at_once() {
    let (a, b) = pair(&[]).await;
    let t = a.tokens("openid offline").await;
    assert!(b.active(&t.access_token).await);
    a.oauth2
        .revoke(
            &params(&[("token", t.refresh_token.as_deref().unwrap())]),
            &basic("app", CLIENT_SECRET),
        )
        .await
        .unwrap();
    assert!(!b.active(&t.access_token).await);
    let r = b.refresh(t.refresh_token.as_deref().unwrap()).await;
    assert_oauth(
        &err(r, "refresh"),
        "invalid_grant",
        "unknown, malformed or revoked",
        "refresh",
    );
}

/// With the cache on, an instance forgets what it revoked itself at once; another instance
/// may answer from its cache until the TTL runs out (the documented price of the cache).
#[tokio::test]
async fn with_the_introspection_cache_another_instance_lags_by_its_ttl() {
    let (a, b) = pair(&[("OAUTH2_INTROSPECTION_CACHE_TTL", "1h")]).await;
    let t = a.tokens("openid offline").await;
    assert!(b.active(&t.access_token).await, "cached at the replica");
    assert!(a.active(&t.access_token).await, "cached at the writer");
    a.oauth2
        .revoke(
            &params(&[("token", &t.access_token)]),
            &basic("app", CLIENT_SECRET),
        )
        .await
        .unwrap();
    assert!(
        !a.active(&t.access_token).await,
        "the revoking instance at once"
    );
    assert!(
        b.active(&t.access_token).await,
        "the replica still answers from its cache"
    );
    // A deletion through the replica itself voids its cache.
    b.oauth2.delete_client_tokens("app").await.unwrap();
    assert!(!b.active(&t.access_token).await);
}

/// Every way this instance removes tokens voids its own cached answers at once.
#[tokio::test]
async fn with_the_introspection_cache_local_removals_apply_at_once() {
    let srv = Server::start(&[("OAUTH2_INTROSPECTION_CACHE_TTL", "1h")]).await;
    srv.client(json!({})).await;
    #[derive(Debug)]
    enum Removal {
        RevokeRefresh,
        RevokeAccess,
        Rotate,
        ReuseCode,
        DeleteClientTokens,
        DeleteClient,
    }
    for removal in [
        Removal::RevokeRefresh,
        Removal::RevokeAccess,
        Removal::Rotate,
        Removal::ReuseCode,
        Removal::DeleteClientTokens,
        Removal::DeleteClient,
    ] {
        let case = format!("{removal:?}");
        let code = srv.code(&[]).await;
        let t = srv.exchange(&code, &[]).await.unwrap();
        assert!(srv.active(&t.access_token).await, "{case}: cached");
        let refresh = t.refresh_token.clone().unwrap();
        let revoke = |token: String| {
            let srv = &srv;
            async move {
                srv.oauth2
                    .revoke(&params(&[("token", &token)]), &basic("app", CLIENT_SECRET))
                    .await
                    .unwrap()
            }
        };
        match removal {
            Removal::RevokeRefresh => revoke(refresh).await,
            Removal::RevokeAccess => revoke(t.access_token.clone()).await,
            Removal::Rotate => {
                srv.refresh(&refresh).await.unwrap();
            }
            Removal::ReuseCode => {
                srv.exchange(&code, &[]).await.unwrap_err();
            }
            Removal::DeleteClientTokens => {
                srv.oauth2.delete_client_tokens("app").await.unwrap();
            }
            Removal::DeleteClient => srv.oauth2.delete_client("app").await.unwrap(),
        }
        assert!(!srv.active(&t.access_token).await, "{case}: gone");
    }
}
