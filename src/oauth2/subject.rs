//! Pairwise subject identifiers (OIDC Core 8.1), as Hydra computes them
//! (consent/subject_identifier_algorithm_pairwise.go): hex SHA-256 of the sector host (the
//! host of `sector_identifier_uri`, else of the only redirect URI), the subject and the salt.
//! The host is Go's `url.URL.Host`: the authority as written, port included when the URI names
//! one, so that pairwise subjects survive a move from Hydra unchanged.
use super::OAuthError;
use crate::domain::client::Client;
use sha2::{Digest, Sha256};

pub fn pairwise(subject: &str, client: &Client, salt: &str) -> Result<String, OAuthError> {
    let source = if !client.sector_identifier_uri.is_empty() {
        client.sector_identifier_uri.as_str()
    } else {
        match client.redirect_uris.as_slice() {
            [only] => only.as_str(),
            [] => {
                return Err(OAuthError::invalid_request().hint(
                    "No redirect_uri and no sector_identifier_uri: the pairwise subject identifier cannot be computed.",
                ))
            }
            _ => {
                return Err(OAuthError::invalid_request().hint(
                    "Several redirect_uris but no sector_identifier_uri: the pairwise subject identifier cannot be computed.",
                ))
            }
        }
    };
    let host = go_url_host(source);
    let digest = Sha256::digest(format!("{host}{subject}{salt}").as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// The host part of a URL as Go's `url.Parse` reports it in `URL.Host`: the authority without
/// user information, with the port if one is written (`127.0.0.1:5555`, `[::1]:8080`), in the
/// case it was written in.
fn go_url_host(raw: &str) -> &str {
    let Some(rest) = raw
        .split_once(':')
        .and_then(|(_, after_scheme)| after_scheme.strip_prefix("//"))
    else {
        return "";
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(input: &[u8]) -> String {
        Sha256::digest(input)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn the_host_keeps_its_port_as_go_does() {
        assert_eq!(go_url_host("http://127.0.0.1:5555/cb"), "127.0.0.1:5555");
        assert_eq!(
            go_url_host("https://app.example.com/cb?x=1"),
            "app.example.com"
        );
        assert_eq!(
            go_url_host("https://app.example.com:443/cb"),
            "app.example.com:443"
        );
        assert_eq!(
            go_url_host("https://user:pw@Host.Example:8443#f"),
            "Host.Example:8443"
        );
        assert_eq!(go_url_host("http://[::1]:8080/cb"), "[::1]:8080");
        assert_eq!(go_url_host("com.example.app:/cb"), "");
        assert_eq!(go_url_host("com.example.app:/cb//x"), "");
        let c = Client {
            redirect_uris: vec!["http://127.0.0.1:5555/cb".into()],
            ..Client::default()
        };
        assert_eq!(
            pairwise("alice", &c, "salt").unwrap(),
            hex(b"127.0.0.1:5555alicesalt")
        );
    }

    #[test]
    fn sector_host_subject_salt() {
        let c = Client {
            redirect_uris: vec!["https://app.example.com/cb".into()],
            ..Client::default()
        };
        let expected: String = Sha256::digest(b"app.example.comalicesalty-salt")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(pairwise("alice", &c, "salty-salt").unwrap(), expected);
        let two = Client {
            redirect_uris: vec!["https://a.example/cb".into(), "https://b.example/cb".into()],
            ..Client::default()
        };
        assert!(pairwise("alice", &two, "s").is_err());
        let sector = Client {
            sector_identifier_uri: "https://sector.example/ids.json".into(),
            ..two
        };
        assert_ne!(
            pairwise("alice", &sector, "s").unwrap(),
            pairwise("bob", &sector, "s").unwrap()
        );
    }
}
