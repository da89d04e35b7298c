//! Service-level tests: the use cases the HTTP handlers call, on an in-memory SQLite store with
//! an injected clock, no listener in between. Tables in the manner of fosite's
//! `handler/oauth2/*_test.go`: each row names its case and the exact outcome.
//!
//! - `authorize`: validation order at `/oauth2/auth`, where each error goes, response modes,
//!   PKCE enforcement;
//! - `flows`: the login/consent state machine (forward-only states, spent verifiers, CSRF,
//!   expiry by the clock, remembered logins and consents);
//! - `grants`: authorization_code (PKCE, redirect URI, reuse), refresh_token (rotation, reuse
//!   revokes the family), client_credentials, client authentication, token expiry;
//! - `subjects`: scope strategies and audience at the service, pairwise subjects;
//! - `coherence`: what each cache serves after a change made through another instance on the
//!   same store.
mod authorize;
mod coherence;
mod fixture;
mod flows;
mod grants;
mod subjects;
