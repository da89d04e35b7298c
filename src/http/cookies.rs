//! The flow cookies (consent/helper.go names): authenticated and encrypted with the `cookie`
//! crate's private jar (AES-256-GCM, the cookie name bound as associated data) under keys
//! derived from `secrets.cookie` (default: the system secret). Later entries still decrypt.
use crate::service::oauth2::types::{BrowserCookies, CookieOp};
use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, CookieJar, Key, SameSite};
use sha2::{Digest, Sha512};

pub const LOGIN_CSRF: &str = "oauth2_authentication_csrf";
pub const CONSENT_CSRF: &str = "oauth2_consent_csrf";
pub const SESSION: &str = "oauth2_authentication_session";

/// Hydra keeps CSRF cookies for 30 days.
const CSRF_MAX_AGE: i64 = 30 * 24 * 3600;

pub struct CookieCodec {
    keys: Vec<Key>,
    secure: bool,
    same_site: SameSite,
}

impl std::fmt::Debug for CookieCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CookieCodec({} keys, secure: {})",
            self.keys.len(),
            self.secure
        )
    }
}

impl CookieCodec {
    /// `secure` is false when plain HTTP is served: names then get the `_insecure` suffix.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S], secure: bool, same_site_mode: &str) -> CookieCodec {
        let keys = secrets
            .iter()
            .filter_map(|s| Key::try_from(Sha512::digest(s.as_ref()).as_slice()).ok())
            .collect();
        let same_site = match same_site_mode {
            "Strict" => SameSite::Strict,
            "Lax" => SameSite::Lax,
            "None" => SameSite::None,
            // Hydra: None by default, Lax when HTTPS is off (None needs Secure).
            _ if secure => SameSite::None,
            _ => SameSite::Lax,
        };
        CookieCodec {
            keys,
            secure,
            same_site,
        }
    }

    pub fn name(&self, base: &str) -> String {
        if self.secure {
            base.to_string()
        } else {
            format!("{base}_insecure")
        }
    }

    fn open(&self, name: &str, raw: &str) -> Option<String> {
        self.keys.iter().find_map(|key| {
            let mut jar = CookieJar::new();
            jar.add_original(Cookie::new(name.to_string(), raw.to_string()));
            jar.private(key).get(name).map(|c| c.value().to_string())
        })
    }

    fn seal(&self, name: &str, value: &str) -> Option<String> {
        let key = self.keys.first()?;
        let mut jar = CookieJar::new();
        jar.private_mut(key)
            .add(Cookie::new(name.to_string(), value.to_string()));
        jar.get(name).map(|c| c.value().to_string())
    }

    /// The flow cookies of a request; forged or foreign values are ignored.
    pub fn read(&self, headers: &HeaderMap) -> BrowserCookies {
        let (login, consent, session) = (
            self.name(LOGIN_CSRF),
            self.name(CONSENT_CSRF),
            self.name(SESSION),
        );
        let mut out = BrowserCookies::default();
        for value in headers.get_all(header::COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            for c in Cookie::split_parse(value).flatten() {
                let slot = match c.name() {
                    n if n == login => &mut out.login_csrf,
                    n if n == consent => &mut out.consent_csrf,
                    n if n == session => &mut out.session,
                    _ => continue,
                };
                if slot.is_none() {
                    *slot = self.open(c.name(), c.value());
                }
            }
        }
        out
    }

    /// `Set-Cookie` header values for the operations.
    pub fn write(&self, ops: &[CookieOp]) -> Vec<HeaderValue> {
        ops.iter()
            .filter_map(|op| {
                let (base, value, max_age) = match op {
                    CookieOp::LoginCsrf(v) => (LOGIN_CSRF, Some(v.as_str()), Some(CSRF_MAX_AGE)),
                    CookieOp::ConsentCsrf(v) => {
                        (CONSENT_CSRF, Some(v.as_str()), Some(CSRF_MAX_AGE))
                    }
                    CookieOp::Session { sid, max_age } => (
                        SESSION,
                        Some(sid.as_str()),
                        (*max_age > 0).then_some(*max_age),
                    ),
                    CookieOp::ClearSession => (SESSION, None, Some(0)),
                };
                let name = self.name(base);
                let sealed = match value {
                    Some(v) => self.seal(&name, v)?,
                    None => String::new(),
                };
                let mut c = Cookie::build((name, sealed))
                    .path("/")
                    .http_only(true)
                    .secure(self.secure)
                    .same_site(self.same_site);
                if let Some(age) = max_age {
                    c = c.max_age(cookie::time::Duration::seconds(age));
                }
                HeaderValue::from_str(&c.build().to_string()).ok()
            })
            .collect()
    }
}
