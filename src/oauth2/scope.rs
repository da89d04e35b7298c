//! Scope and audience strategies (fosite scope_strategy.go, audience_strategy.go).

/// `strategies.scope`: `exact` or `wildcard` (`*` matches one non-empty dot segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeStrategy {
    Exact,
    Wildcard,
}

impl ScopeStrategy {
    pub fn from_config(name: &str) -> ScopeStrategy {
        if name == "exact" {
            ScopeStrategy::Exact
        } else {
            ScopeStrategy::Wildcard
        }
    }

    /// Whether `needle` is covered by any of `allowed`.
    pub fn allows(self, allowed: &[String], needle: &str) -> bool {
        allowed.iter().any(|a| match self {
            ScopeStrategy::Exact => a == needle,
            ScopeStrategy::Wildcard => wildcard_match(a, needle),
        })
    }

    /// The first of `requested` not covered by `allowed`.
    pub fn first_denied<'a>(self, allowed: &[String], requested: &'a [String]) -> Option<&'a str> {
        requested
            .iter()
            .find(|r| !self.allows(allowed, r))
            .map(String::as_str)
    }
}

fn wildcard_match(pattern: &str, needle: &str) -> bool {
    if pattern == needle {
        return true;
    }
    let p: Vec<&str> = pattern.split('.').collect();
    let n: Vec<&str> = needle.split('.').collect();
    p.len() == n.len()
        && p.iter()
            .zip(&n)
            .all(|(p, n)| (*p == "*" && !n.is_empty()) || p == n)
}

/// Audience check: every requested audience must sit under an allowed one (same scheme and
/// host, path equal or below). Returns the first one that is not allowed.
pub fn first_denied_audience<'a>(allowed: &[String], requested: &'a [String]) -> Option<&'a str> {
    requested
        .iter()
        .find(|r| !allowed.iter().any(|a| audience_allows(a, r)))
        .map(String::as_str)
}

fn audience_allows(allowed: &str, needle: &str) -> bool {
    if allowed == needle {
        return true;
    }
    let (Ok(a), Ok(n)) = (url::Url::parse(allowed), url::Url::parse(needle)) else {
        return false;
    };
    if a.scheme() != n.scheme() || a.host_str() != n.host_str() || a.port() != n.port() {
        return false;
    }
    let base = a.path().trim_end_matches('/');
    let path = n.path().trim_end_matches('/');
    path == base || path.starts_with(&format!("{base}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn strategies() {
        let allowed = v(&["openid", "photos.*"]);
        let w = ScopeStrategy::Wildcard;
        assert!(w.allows(&allowed, "photos.read"));
        assert!(!w.allows(&allowed, "photos.read.all"));
        assert!(!w.allows(&allowed, "photos."));
        assert!(!ScopeStrategy::Exact.allows(&allowed, "photos.read"));
        assert_eq!(
            w.first_denied(&allowed, &v(&["openid", "email"])),
            Some("email")
        );
        let aud = v(&["https://api.example.com/v1"]);
        assert_eq!(
            first_denied_audience(&aud, &v(&["https://api.example.com/v1/x"])),
            None
        );
        assert_eq!(
            first_denied_audience(&aud, &v(&["https://api.example.com/v10"])),
            Some("https://api.example.com/v10")
        );
    }
}
