//! The built-in demo login, consent and logout app of `serve --dev`: what each page shows, and
//! its answers turned into the same accept/reject calls the admin API makes. Anyone may log in
//! under any name without a password, so it exists only in development mode.
//!
//! The forms carry a CSRF token: an HMAC-SHA256, under a key derived from the cookie secret,
//! over the page kind and the challenge. A page can therefore only be answered by someone who
//! read it (the challenge alone is not enough), and the token of one flow or page kind is
//! worthless for another.
use crate::domain::flow::Denial;
use crate::service::oauth2::flows::{AcceptConsent, AcceptLogin, FlowError};
use crate::service::oauth2::OAuth2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;

type HmacSha256 = Hmac<Sha256>;

/// Longest username the demo login takes (subjects are indexed columns).
const MAX_USERNAME: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum DevUiError {
    /// The form's CSRF token is missing, or was not minted for this page and challenge.
    #[error("the form's CSRF token is missing or invalid")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Flow(#[from] FlowError),
}

/// Which page a form belongs to; part of the CSRF token's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Login,
    Consent,
    Logout,
}

impl Page {
    fn label(self) -> &'static str {
        match self {
            Page::Login => "login",
            Page::Consent => "consent",
            Page::Logout => "logout",
        }
    }
}

/// The button the user pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Deny,
}

/// What the login page shows.
#[derive(Debug, Clone)]
pub struct LoginView {
    pub challenge: String,
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    pub requested_scope: Vec<String>,
    /// A remembered session exists: the login must be accepted for this subject.
    pub remembered_subject: Option<String>,
}

/// What the consent page shows.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub challenge: String,
    pub csrf: String,
    pub client_id: String,
    pub client_name: String,
    pub subject: String,
    pub requested_scope: Vec<String>,
    pub requested_audience: Vec<String>,
    /// A remembered consent covers this request already.
    pub skip: bool,
}

/// What the logout page shows.
#[derive(Debug, Clone)]
pub struct LogoutView {
    pub challenge: String,
    pub csrf: String,
    pub subject: String,
    pub rp_initiated: bool,
}

/// A submitted login form.
#[derive(Debug, Clone)]
pub struct LoginForm {
    pub challenge: String,
    pub csrf: String,
    pub username: String,
    pub remember: bool,
    pub decision: Decision,
}

/// A submitted consent form.
#[derive(Debug, Clone)]
pub struct ConsentForm {
    pub challenge: String,
    pub csrf: String,
    /// The scopes left ticked; only requested ones are granted.
    pub grant_scope: Vec<String>,
    pub remember: bool,
    pub decision: Decision,
}

/// The CSRF keys: one per cookie secret; the first mints, all verify (a rotation keeps pages
/// that are already open valid).
#[derive(Clone)]
pub struct CsrfKeys(Vec<[u8; 32]>);

impl CsrfKeys {
    /// `secrets`: the cookie secrets (`secrets.cookie`, else `secrets.system`), newest first.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> CsrfKeys {
        // A subkey for this purpose, so the HMAC never shares a key with the cookie encryption.
        CsrfKeys(
            secrets
                .iter()
                .filter_map(|s| {
                    let mut mac = HmacSha256::new_from_slice(s.as_ref()).ok()?;
                    mac.update(b"portcullis dev-ui csrf v1");
                    Some(mac.finalize().into_bytes().into())
                })
                .collect(),
        )
    }

    fn mac(key: &[u8; 32], page: Page, challenge: &str) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(key).ok()?;
        mac.update(page.label().as_bytes());
        mac.update(&[0]);
        mac.update(challenge.as_bytes());
        Some(mac)
    }

    /// The token for a page of one flow.
    pub fn token(&self, page: Page, challenge: &str) -> String {
        self.0
            .first()
            .and_then(|k| Self::mac(k, page, challenge))
            .map(|m| URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
            .unwrap_or_default()
    }

    /// Constant-time check of a submitted token against every key.
    pub fn check(&self, page: Page, challenge: &str, token: &str) -> Result<(), DevUiError> {
        let Ok(raw) = URL_SAFE_NO_PAD.decode(token.as_bytes()) else {
            return Err(DevUiError::Csrf);
        };
        let ok = self
            .0
            .iter()
            .any(|k| Self::mac(k, page, challenge).is_some_and(|m| m.verify_slice(&raw).is_ok()));
        if ok && !challenge.is_empty() {
            Ok(())
        } else {
            Err(DevUiError::Csrf)
        }
    }
}

pub struct DevUi {
    oauth2: Arc<OAuth2>,
    csrf: CsrfKeys,
}

impl std::fmt::Debug for DevUi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevUi({} CSRF keys)", self.csrf.0.len())
    }
}

impl DevUi {
    pub fn new(oauth2: Arc<OAuth2>, csrf: CsrfKeys) -> DevUi {
        DevUi { oauth2, csrf }
    }

    pub async fn login(&self, challenge: &str) -> Result<LoginView, DevUiError> {
        let (flow, client) = self.oauth2.get_login_request(challenge).await?;
        Ok(LoginView {
            csrf: self.csrf.token(Page::Login, &flow.login_challenge),
            challenge: flow.login_challenge,
            client_id: client.client_id.clone(),
            client_name: client.client_name.clone(),
            requested_scope: flow.requested_scope,
            remembered_subject: flow.login_skip.then_some(flow.subject),
        })
    }

    /// Accepts (as the typed username) or denies the login; returns where the browser goes.
    pub async fn submit_login(&self, form: LoginForm) -> Result<String, DevUiError> {
        self.csrf.check(Page::Login, &form.challenge, &form.csrf)?;
        match form.decision {
            Decision::Deny => Ok(self.oauth2.reject_login(&form.challenge, denial()).await?),
            Decision::Accept => {
                let subject = username(&form.username)?;
                let accept = AcceptLogin {
                    subject,
                    remember: form.remember,
                    ..AcceptLogin::default()
                };
                Ok(self.oauth2.accept_login(&form.challenge, accept).await?)
            }
        }
    }

    pub async fn consent(&self, challenge: &str) -> Result<ConsentView, DevUiError> {
        let (flow, client) = self.oauth2.get_consent_request(challenge).await?;
        Ok(ConsentView {
            csrf: self.csrf.token(Page::Consent, &flow.consent_challenge),
            challenge: flow.consent_challenge,
            client_id: client.client_id.clone(),
            client_name: client.client_name.clone(),
            subject: flow.subject,
            requested_scope: flow.requested_scope,
            requested_audience: flow.requested_audience,
            skip: flow.consent_skip,
        })
    }

    /// Grants the ticked scopes that were requested (and every requested audience), or denies.
    pub async fn submit_consent(&self, form: ConsentForm) -> Result<String, DevUiError> {
        self.csrf
            .check(Page::Consent, &form.challenge, &form.csrf)?;
        if form.decision == Decision::Deny {
            return Ok(self
                .oauth2
                .reject_consent(&form.challenge, denial())
                .await?);
        }
        let (flow, _) = self.oauth2.get_consent_request(&form.challenge).await?;
        let grant_scope = flow
            .requested_scope
            .iter()
            .filter(|s| form.grant_scope.contains(s))
            .cloned()
            .collect();
        let accept = AcceptConsent {
            grant_scope,
            grant_access_token_audience: flow.requested_audience.clone(),
            remember: form.remember,
            ..AcceptConsent::default()
        };
        Ok(self.oauth2.accept_consent(&form.challenge, accept).await?)
    }

    pub async fn logout(&self, challenge: &str) -> Result<LogoutView, DevUiError> {
        let l = self.oauth2.get_logout_request(challenge).await?;
        Ok(LogoutView {
            csrf: self.csrf.token(Page::Logout, &l.challenge),
            challenge: l.challenge,
            subject: l.subject,
            rp_initiated: l.rp_initiated,
        })
    }

    /// Accept: where the browser goes to finish logging out. Deny: `None`, the session stays.
    pub async fn submit_logout(
        &self,
        challenge: &str,
        csrf: &str,
        decision: Decision,
    ) -> Result<Option<String>, DevUiError> {
        self.csrf.check(Page::Logout, challenge, csrf)?;
        match decision {
            Decision::Accept => Ok(Some(self.oauth2.accept_logout(challenge).await?)),
            Decision::Deny => {
                // Hydra answers a rejection of an unknown request with success; the demo
                // page should not claim a session stays when there was no request at all.
                self.oauth2.get_logout_request(challenge).await?;
                self.oauth2.reject_logout(challenge).await?;
                Ok(None)
            }
        }
    }
}

/// The denial the demo app stores, as Hydra's example login/consent app words it.
fn denial() -> Denial {
    Denial {
        error: "access_denied".into(),
        error_description: "The resource owner denied the request".into(),
        status_code: 403,
        ..Denial::default()
    }
}

/// Any name is fine, as long as it can be a subject: not blank, no control characters, short.
fn username(raw: &str) -> Result<String, DevUiError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DevUiError::BadRequest(
            "Enter a username: any name is accepted in development mode.".into(),
        ));
    }
    if name.chars().count() > MAX_USERNAME || name.chars().any(char::is_control) {
        return Err(DevUiError::BadRequest(format!(
            "The username must be at most {MAX_USERNAME} characters, without control characters."
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::{username, CsrfKeys, Page};

    #[test]
    fn csrf_tokens_are_bound_to_page_challenge_and_key() {
        let keys = CsrfKeys::new(&["new-secret", "old-secret"]);
        let t = keys.token(Page::Login, "abc");
        assert_eq!(t.len(), 43);
        assert!(keys.check(Page::Login, "abc", &t).is_ok());
        assert!(keys.check(Page::Consent, "abc", &t).is_err());
        assert!(keys.check(Page::Login, "abd", &t).is_err());
        assert!(keys.check(Page::Login, "abc", "").is_err());
        assert!(keys.check(Page::Login, "abc", "not base64!").is_err());
        // A token minted before a rotation still verifies; one under a foreign key does not.
        let old = CsrfKeys::new(&["old-secret"]).token(Page::Login, "abc");
        assert!(keys.check(Page::Login, "abc", &old).is_ok());
        let foreign = CsrfKeys::new(&["other"]).token(Page::Login, "abc");
        assert!(keys.check(Page::Login, "abc", &foreign).is_err());
        // No challenge, no token.
        let empty = keys.token(Page::Login, "");
        assert!(keys.check(Page::Login, "", &empty).is_err());
    }

    #[test]
    fn usernames() {
        assert_eq!(username("  alice ").ok().as_deref(), Some("alice"));
        assert!(username("   ").is_err());
        assert!(username("a\u{0}b").is_err());
        assert!(username(&"x".repeat(129)).is_err());
        assert!(username(&"é".repeat(128)).is_ok());
    }
}
