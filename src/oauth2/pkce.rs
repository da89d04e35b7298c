//! PKCE (RFC 7636) as fosite's handler/pkce: only `S256`, verifier 43–128 unreserved characters.
use super::OAuthError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Validates the `/oauth2/auth` parameters; `required` when PKCE is enforced for this client.
pub fn check_challenge(challenge: &str, method: &str, required: bool) -> Result<(), OAuthError> {
    if challenge.is_empty() {
        if required {
            return Err(OAuthError::invalid_request()
                .hint("Clients must include a code_challenge when performing the authorize code flow, but it is missing.")
                .debug("The server is configured in a way that enforces PKCE for clients."));
        }
        return Ok(());
    }
    if method != "S256" {
        return Err(OAuthError::invalid_request()
            .hint("Clients must use code_challenge_method=S256, plain is not allowed.")
            .debug("The server is configured in a way that enforces PKCE S256 as challenge method for clients."));
    }
    if challenge.len() < 43 || challenge.len() > 128 || !challenge.bytes().all(unreserved) {
        return Err(OAuthError::invalid_request()
            .hint("The PKCE code challenge must be 43 to 128 characters of [A-Za-z0-9-._~]."));
    }
    Ok(())
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Checks `code_verifier` against the stored S256 challenge at the token endpoint.
pub fn verify(challenge: &str, verifier: &str) -> Result<(), OAuthError> {
    if challenge.is_empty() {
        return Ok(());
    }
    if verifier.len() < 43 || verifier.len() > 128 || !verifier.bytes().all(unreserved) {
        return Err(OAuthError::invalid_grant()
            .hint("The PKCE code verifier must be 43 to 128 characters of [A-Za-z0-9-._~]."));
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        computed.as_bytes(),
        challenge.as_bytes(),
    )) {
        return Err(OAuthError::invalid_grant()
            .hint("The PKCE code challenge did not match the code verifier."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_challenge(challenge, "S256", true).is_ok());
        assert!(check_challenge(challenge, "plain", false).is_err());
        assert!(check_challenge("", "", true).is_err());
        assert!(verify(challenge, verifier).is_ok());
        assert!(verify(challenge, &verifier.replace('d', "e")).is_err());
        assert!(verify(challenge, "short").is_err());
    }
}
