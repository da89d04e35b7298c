//! Redirect-URI rules (fosite authorize_helper.go): exact match, the loopback rule of RFC 8252
//! §7.3 (any port on 127.0.0.1/[::1]), absolute URLs without fragment, https unless local.
use super::OAuthError;
use url::Url;

/// The redirect URI to use for this request, or an error (which must not redirect).
///
/// The https-unless-local rule applies to a defaulted URI (parameter omitted, one registered)
/// exactly as to a requested one: fosite checks the resolved `ar.GetRedirectURI()` in
/// handler/oauth2/flow_authorize_code_auth.go whichever way it was chosen. fosite does so after
/// login and consent and then redirects the error to that plaintext URI; refusing here, before
/// any user interaction, sends the browser to `urls.error` instead and nothing to the insecure
/// URI.
pub fn resolve(requested: &str, registered: &[String]) -> Result<Url, OAuthError> {
    let url = if requested.is_empty() {
        let [only] = registered else {
            return Err(OAuthError::invalid_request()
                .hint("The 'redirect_uri' parameter is required when the client has zero or several registered redirect URIs."));
        };
        parse_valid(only)?
    } else {
        let url = parse_valid(requested)?;
        if !registered
            .iter()
            .any(|r| r == requested || loopback_match(r, &url))
        {
            return Err(OAuthError::invalid_request().hint(
                "The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.",
            ));
        }
        url
    };
    if !is_secure(&url) {
        return Err(OAuthError::invalid_request().hint(
            "Redirect URL is using an insecure protocol, http is only allowed for hosts with suffix 'localhost', for example: http://myapp.localhost/.",
        ));
    }
    Ok(url)
}

fn parse_valid(raw: &str) -> Result<Url, OAuthError> {
    match Url::parse(raw) {
        Ok(u) if u.fragment().is_none() => Ok(u),
        _ => Err(OAuthError::invalid_request()
            .hint("The redirect URI must be an absolute URL without a fragment.")),
    }
}

fn is_loopback_ip(u: &Url) -> bool {
    matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]"))
}

fn loopback_match(registered: &str, requested: &Url) -> bool {
    let Ok(reg) = Url::parse(registered) else {
        return false;
    };
    requested.scheme() == "http"
        && reg.scheme() == "http"
        && is_loopback_ip(requested)
        && reg.host_str() == requested.host_str()
        && reg.path() == requested.path()
        && reg.query() == requested.query()
}

/// https, a custom scheme, or http on a local host.
pub fn is_secure(u: &Url) -> bool {
    u.scheme() != "http" || is_local(u)
}

pub fn is_local(u: &Url) -> bool {
    match u.host_str() {
        Some(h) => {
            h == "localhost" || h.ends_with(".localhost") || h == "127.0.0.1" || h == "[::1]"
        }
        None => false,
    }
}

/// `base` with `pairs` appended to its query (or put in its fragment), existing query kept.
/// It takes a parsed URL, so there is no base it could silently fail to extend.
pub fn with_params(base: &Url, pairs: &[(String, String)], fragment: bool) -> String {
    let mut url = base.clone();
    if fragment {
        let encoded = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter())
            .finish();
        url.set_fragment(Some(&encoded));
    } else {
        url.query_pairs_mut().extend_pairs(pairs.iter());
    }
    url.to_string()
}

/// A URL as configured or registered: sent as written when it is used alone, and parsed once
/// so that parameters can always be added to it.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseUrl {
    raw: String,
    url: Url,
}

impl BaseUrl {
    pub fn parse(raw: &str) -> Result<BaseUrl, url::ParseError> {
        Ok(BaseUrl {
            url: Url::parse(raw)?,
            raw: raw.to_string(),
        })
    }

    /// The URL exactly as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The URL with `pairs` added to its query.
    pub fn with_query(&self, pairs: &[(String, String)]) -> String {
        with_params(&self.url, pairs, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_keep_the_query_and_can_go_in_the_fragment() {
        let base = BaseUrl::parse("https://app.example/cb?x=1").unwrap();
        let pairs = [("error".to_string(), "access_denied".to_string())];
        assert_eq!(
            base.with_query(&pairs),
            "https://app.example/cb?x=1&error=access_denied"
        );
        assert_eq!(
            with_params(base.url(), &pairs, true),
            "https://app.example/cb?x=1#error=access_denied"
        );
        assert_eq!(
            BaseUrl::parse("https://app.example").unwrap().as_str(),
            "https://app.example"
        );
        assert!(BaseUrl::parse("/relative").is_err());
    }

    #[test]
    fn matching_rules() {
        let reg = vec![
            "https://app.example.com/cb".to_string(),
            "http://127.0.0.1/cb".to_string(),
        ];
        assert!(resolve("https://app.example.com/cb", &reg).is_ok());
        assert!(resolve("https://app.example.com/cb/", &reg).is_err());
        assert!(resolve("http://127.0.0.1:8123/cb", &reg).is_ok());
        assert!(resolve("http://127.0.0.1:8123/other", &reg).is_err());
        assert!(resolve("http://localhost:8123/cb", &reg).is_err());
        assert!(resolve("", &reg).is_err());
        assert!(resolve("", &reg[..1]).is_ok());
        let insecure = vec!["http://app.example.com/cb".to_string()];
        assert!(resolve("http://app.example.com/cb", &insecure).is_err());
        // Omitting the parameter does not skip the rule.
        assert!(resolve("", &insecure).is_err());
        assert!(resolve("", &["http://localhost:9000/cb".to_string()]).is_ok());
        let frag = vec!["https://a.example/cb#x".to_string()];
        assert!(resolve("https://a.example/cb#x", &frag).is_err());
    }
}
