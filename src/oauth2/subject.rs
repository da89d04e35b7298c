//! Pairwise subject identifiers (OIDC Core 8.1), as Hydra computes them
//! (consent/subject_identifier_algorithm_pairwise.go): hex SHA-256 of the sector host (the
//! host of `sector_identifier_uri`, else of the only redirect URI), the subject and the salt.
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
    let host = url::Url::parse(source)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let digest = Sha256::digest(format!("{host}{subject}{salt}").as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
