//! The request and response values the OAuth 2.0 use cases share with the HTTP edge: the
//! parameters of a request, the flow cookies the browser sent, the cookies to set, and the
//! redirect (or form post) that answers a browser.
use crate::oauth2::error::Cause;
/// Query and form parameters, in order.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The flow cookies the browser sent, already authenticated and decrypted by the HTTP edge.
#[derive(Debug, Default, Clone)]
pub struct BrowserCookies {
    pub login_csrf: Option<String>,
    pub consent_csrf: Option<String>,
    pub session: Option<String>,
}

/// Cookies to set; names, flags and encryption are the HTTP edge's business.
#[derive(Debug, Clone, PartialEq)]
pub enum CookieOp {
    LoginCsrf(String),
    ConsentCsrf(String),
    /// Remembered login; `max_age` 0 makes it a browser-session cookie.
    Session {
        sid: String,
        max_age: i64,
    },
    ClearSession,
}

/// Where the browser goes next: a redirect, or (`response_mode=form_post`) a page that POSTs
/// `form` to `location` (OAuth 2.0 Form Post Response Mode; fosite authorize_write.go).
#[derive(Debug, Clone)]
pub struct Redirect {
    pub location: String,
    pub cookies: Vec<CookieOp>,
    pub form: Option<Vec<(String, String)>>,
    /// The internal failure this redirect reports (as `server_error`), for the HTTP edge to
    /// log; never shown to the browser.
    pub failure: Option<Cause>,
}

impl Redirect {
    /// A plain redirect (to the login, consent, logout or error page, or back to a client).
    pub fn to(location: String, cookies: Vec<CookieOp>) -> Redirect {
        Redirect {
            location,
            cookies,
            form: None,
            failure: None,
        }
    }

    /// The authorization response for the client as a page that POSTs `fields` to `action`.
    pub fn form_post(action: String, fields: Vec<(String, String)>) -> Redirect {
        Redirect {
            location: action,
            cookies: vec![],
            form: Some(fields),
            failure: None,
        }
    }

    /// Records the internal failure behind this redirect, if any.
    pub fn failed(mut self, failure: Option<Cause>) -> Redirect {
        self.failure = failure;
        self
    }
}
