//! The OAuth 2.0 client model of Hydra v1.9.2 (client/client.go) and its validation rules
//! (client/validator.go).
use super::protocol::{ClientAuthMethod, GrantType, SubjectType};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Wire and storage model. Lists are always arrays (never null) so strict SDKs parse them.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Client {
    pub client_id: String,
    pub client_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub redirect_uris: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub grant_types: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub response_types: Vec<String>,
    pub scope: String,
    #[serde(deserialize_with = "null_as_default")]
    pub audience: Vec<String>,
    pub owner: String,
    pub policy_uri: String,
    #[serde(deserialize_with = "null_as_default")]
    pub allowed_cors_origins: Vec<String>,
    pub tos_uri: String,
    pub client_uri: String,
    pub logo_uri: String,
    #[serde(deserialize_with = "null_as_default")]
    pub contacts: Vec<String>,
    pub client_secret_expires_at: i64,
    pub subject_type: String,
    pub sector_identifier_uri: String,
    #[serde(deserialize_with = "null_as_object")]
    pub jwks: Value,
    pub jwks_uri: String,
    pub token_endpoint_auth_method: String,
    pub token_endpoint_auth_signing_alg: String,
    #[serde(deserialize_with = "null_as_default")]
    pub request_uris: Vec<String>,
    pub request_object_signing_alg: String,
    pub userinfo_signed_response_alg: String,
    #[serde(skip_deserializing)]
    pub created_at: String,
    #[serde(skip_deserializing)]
    pub updated_at: String,
    pub frontchannel_logout_uri: String,
    pub frontchannel_logout_session_required: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: String,
    pub backchannel_logout_session_required: bool,
    #[serde(deserialize_with = "null_as_object")]
    pub metadata: Value,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v) => v,
    })
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    InvalidMetadata(String),
    #[error("{0}")]
    InvalidRedirectUri(String),
}

impl ClientError {
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::InvalidMetadata(_) => "invalid_client_metadata",
            ClientError::InvalidRedirectUri(_) => "invalid_redirect_uri",
        }
    }
}

const SIGNING_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
];

/// Schemes a browser executes or renders with the opener's privileges.
const SCRIPT_SCHEMES: [&str; 5] = ["javascript", "data", "vbscript", "file", "blob"];

/// True for an absolute `http`/`https` URL with a host: the only kind of client URI we put in
/// a page, a redirect or an outgoing request.
pub fn is_web_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

/// Server policy the validator needs.
pub struct Policy<'a> {
    pub default_scope: &'a [String],
    pub subject_types: &'a [String],
}

/// `(scheme, host, port)` of a URL: what a post-logout redirect URI must share with one of
/// the redirect URIs.
type Origin = (String, Option<String>, Option<u16>);

fn origin_of(u: &url::Url) -> Origin {
    (
        u.scheme().to_string(),
        u.host_str().map(str::to_string),
        u.port_or_known_default(),
    )
}

fn meta(m: impl Into<String>) -> ClientError {
    ClientError::InvalidMetadata(m.into())
}

impl Client {
    /// Applies Hydra's defaults and validation rules, in the order of client/validator.go.
    pub fn validate(&mut self, policy: &Policy<'_>) -> Result<(), ClientError> {
        self.check_auth_method()?;
        self.check_jwks()?;
        self.check_secret()?;
        if self.scope.is_empty() {
            self.scope = policy.default_scope.join(" ");
        }
        self.normalize_cors_origins()?;
        self.check_userinfo_alg()?;
        let redirect_origins = self.check_redirect_uris()?;
        self.check_subject_type(policy)?;
        self.check_web_urls()?;
        if !self.sector_identifier_uri.is_empty()
            && !self.sector_identifier_uri.starts_with("https://")
        {
            return Err(meta(
                "Value of sector_identifier_uri must use the https scheme.",
            ));
        }
        self.check_post_logout_uris(&redirect_origins)?;
        self.client_secret_expires_at = 0;
        self.check_metadata()
    }

    /// `token_endpoint_auth_method` (default `client_secret_basic`); `private_key_jwt` needs
    /// keys and a supported signing algorithm.
    fn check_auth_method(&mut self) -> Result<(), ClientError> {
        if self.token_endpoint_auth_method.is_empty() {
            self.token_endpoint_auth_method = ClientAuthMethod::ClientSecretBasic.to_string();
        }
        match self.token_endpoint_auth_method.parse::<ClientAuthMethod>() {
            Ok(ClientAuthMethod::PrivateKeyJwt) => {
                if self.jwks_is_empty() && self.jwks_uri.is_empty() {
                    return Err(meta("When token_endpoint_auth_method is \"private_key_jwt\", either jwks or jwks_uri must be set."));
                }
                if !self.token_endpoint_auth_signing_alg.is_empty()
                    && !SIGNING_ALGS.contains(&self.token_endpoint_auth_signing_alg.as_str())
                {
                    return Err(meta("Only RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 and ES512 are supported as algorithms for private key authentication."));
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(other) => Err(meta(format!(
                "Field token_endpoint_auth_method \"{}\" is not supported.",
                other.0
            ))),
        }
    }

    fn check_jwks(&mut self) -> Result<(), ClientError> {
        if self.jwks.is_null() {
            self.jwks = Value::Object(Default::default());
        }
        if !self.jwks_uri.is_empty() && !self.jwks_is_empty() {
            return Err(meta(
                "Fields jwks and jwks_uri can not both be set, you must choose one.",
            ));
        }
        if !self.jwks.is_object() {
            return Err(meta("Field jwks must be a JSON Web Key Set object."));
        }
        Ok(())
    }

    fn check_secret(&self) -> Result<(), ClientError> {
        match &self.client_secret {
            Some(secret) if !secret.is_empty() && secret.len() < 6 => Err(meta(
                "Field client_secret must contain a secret that is at least 6 characters long.",
            )),
            _ => Ok(()),
        }
    }

    /// Origins must be bare http(s) origins; a trailing `/` is dropped.
    fn normalize_cors_origins(&mut self) -> Result<(), ClientError> {
        for origin in &mut self.allowed_cors_origins {
            let u = url::Url::parse(origin)
                .map_err(|_| meta(format!("Origin URL {origin} could not be parsed.")))?;
            if u.scheme() != "http" && u.scheme() != "https" {
                return Err(meta(format!(
                    "Origin URL {origin} must use the http or https scheme."
                )));
            }
            if !u.username().is_empty() || u.password().is_some() {
                return Err(meta(format!(
                    "Origin URL {origin} has HTTP user and/or password set which is not allowed."
                )));
            }
            if u.query().is_some()
                || u.fragment().is_some()
                || (u.path() != "/" && !u.path().is_empty())
            {
                return Err(meta(format!("Origin URL {origin} must have an empty path, query, and fragment but one of the parts is not empty.")));
            }
            *origin = origin.trim_end_matches('/').to_string();
        }
        Ok(())
    }

    fn check_userinfo_alg(&mut self) -> Result<(), ClientError> {
        if self.userinfo_signed_response_alg.is_empty() {
            self.userinfo_signed_response_alg = "none".into();
        }
        if !matches!(self.userinfo_signed_response_alg.as_str(), "none" | "RS256") {
            return Err(meta(
                "Field userinfo_signed_response_alg can either be \"none\" or \"RS256\".",
            ));
        }
        Ok(())
    }

    /// Redirect URIs parse, use no script scheme and have no fragment; returns their origins.
    fn check_redirect_uris(&self) -> Result<Vec<Origin>, ClientError> {
        let mut origins = Vec::new();
        for r in &self.redirect_uris {
            let u = url::Url::parse(r).map_err(|_| {
                ClientError::InvalidRedirectUri(format!("Unable to parse redirect URL: {r}"))
            })?;
            // Private-use schemes stay allowed for native apps (RFC 8252 §7.1), but never a
            // scheme a browser would run or render in our origin (a form_post page or the
            // Location header of an error redirect would hand it over).
            if SCRIPT_SCHEMES.contains(&u.scheme()) {
                return Err(ClientError::InvalidRedirectUri(format!(
                    "Redirect URIs must not use the {} scheme.",
                    u.scheme()
                )));
            }
            if r.contains('#') {
                return Err(ClientError::InvalidRedirectUri(
                    "Redirect URIs must not contain fragments (#).".into(),
                ));
            }
            origins.push(origin_of(&u));
        }
        Ok(origins)
    }

    /// `subject_type` defaults to `public` when the server offers it, else to its first type.
    fn check_subject_type(&mut self, policy: &Policy<'_>) -> Result<(), ClientError> {
        if self.subject_type.is_empty() {
            let public = SubjectType::Public;
            if policy.subject_types.iter().any(|t| t.parse() == Ok(public)) {
                self.subject_type = public.to_string();
            } else if let Some(first) = policy.subject_types.first() {
                self.subject_type = first.clone();
            }
        } else if !policy.subject_types.contains(&self.subject_type) {
            return Err(meta(format!(
                "Subject type {} is not supported by server, only {:?} are allowed.",
                self.subject_type, policy.subject_types
            )));
        }
        Ok(())
    }

    fn check_post_logout_uris(&self, redirect_origins: &[Origin]) -> Result<(), ClientError> {
        for p in &self.post_logout_redirect_uris {
            let u = url::Url::parse(p)
                .map_err(|_| meta(format!("Unable to parse post_logout_redirect_uri: {p}")))?;
            if !redirect_origins.contains(&origin_of(&u)) {
                return Err(meta(format!(
                    "post_logout_redirect_uri \"{p}\" must match the domain, port, scheme of at least one of the registered redirect URIs but did not"
                )));
            }
        }
        Ok(())
    }

    /// The SDKs model metadata as a map (`map[string]interface{}` in Hydra's Go SDK): a string,
    /// number or array here would break every client that reads it back.
    fn check_metadata(&mut self) -> Result<(), ClientError> {
        if self.metadata.is_null() {
            self.metadata = Value::Object(Default::default());
        }
        if !self.metadata.is_object() {
            return Err(meta("Field metadata must be a JSON object."));
        }
        Ok(())
    }

    /// Every URI a page, a redirect or an outgoing request of ours uses must be an absolute
    /// http(s) URL: a `javascript:` or `data:` front-channel URI would otherwise run in our
    /// origin from the logout page. Hydra v1.9.2 does not check these; RFC 7591 §2 defines
    /// them as web URLs, and refusing others is the only safe reading.
    fn check_web_urls(&self) -> Result<(), ClientError> {
        let single = [
            ("client_uri", &self.client_uri),
            ("logo_uri", &self.logo_uri),
            ("policy_uri", &self.policy_uri),
            ("tos_uri", &self.tos_uri),
            ("jwks_uri", &self.jwks_uri),
            ("sector_identifier_uri", &self.sector_identifier_uri),
            ("frontchannel_logout_uri", &self.frontchannel_logout_uri),
            ("backchannel_logout_uri", &self.backchannel_logout_uri),
        ];
        let lists = [
            ("request_uris", &self.request_uris),
            ("post_logout_redirect_uris", &self.post_logout_redirect_uris),
        ];
        let fields = single.into_iter().filter(|(_, v)| !v.is_empty()).chain(
            lists
                .into_iter()
                .flat_map(|(k, l)| l.iter().map(move |v| (k, v))),
        );
        for (field, value) in fields {
            if !is_web_url(value) {
                return Err(ClientError::InvalidMetadata(format!(
                    "Field {field} must hold absolute http or https URLs only, but '{value}' is not one."
                )));
            }
        }
        Ok(())
    }

    fn jwks_is_empty(&self) -> bool {
        match &self.jwks {
            Value::Object(m) => m
                .get("keys")
                .and_then(Value::as_array)
                .is_none_or(|k| k.is_empty()),
            _ => true,
        }
    }

    /// The registered `token_endpoint_auth_method`; None for a value this server does not
    /// know (only rows stored before validation, or imported, can hold one).
    pub fn auth_method(&self) -> Option<ClientAuthMethod> {
        self.token_endpoint_auth_method.parse().ok()
    }

    /// True for clients that authenticate without a secret.
    pub fn is_public(&self) -> bool {
        self.auth_method() == Some(ClientAuthMethod::None)
    }

    /// True for clients that see pairwise subject identifiers.
    pub fn is_pairwise(&self) -> bool {
        self.subject_type.parse() == Ok(SubjectType::Pairwise)
    }

    /// Whether the client may use `grant` (only authorization_code when it lists none, as in
    /// fosite).
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        if self.grant_types.is_empty() {
            return grant == GrantType::AuthorizationCode;
        }
        self.grant_types.iter().any(|g| g.parse() == Ok(grant))
    }

    /// The registered response types (`code` when it lists none, as in fosite), each a
    /// space-separated combination.
    pub fn response_type_combinations(&self) -> Vec<&str> {
        if self.response_types.is_empty() {
            vec![super::protocol::ResponseType::Code.as_str()]
        } else {
            self.response_types.iter().map(String::as_str).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy<'a>(scope: &'a [String], types: &'a [String]) -> Policy<'a> {
        Policy {
            default_scope: scope,
            subject_types: types,
        }
    }

    fn validated(mut c: Client) -> Result<Client, ClientError> {
        let (scope, types) = (
            vec!["openid".to_string()],
            vec!["public".to_string(), "pairwise".to_string()],
        );
        c.validate(&policy(&scope, &types)).map(|()| c)
    }

    #[test]
    fn defaults_are_hydras() {
        let c = validated(Client::default()).unwrap();
        assert_eq!(c.auth_method(), Some(ClientAuthMethod::ClientSecretBasic));
        assert_eq!(c.token_endpoint_auth_method, "client_secret_basic");
        assert_eq!(c.subject_type, "public");
        assert_eq!(c.userinfo_signed_response_alg, "none");
        assert_eq!(c.scope, "openid");
        assert!(c.metadata.is_object() && c.jwks.is_object());
        assert!(c.allows_grant(GrantType::AuthorizationCode));
        assert!(!c.allows_grant(GrantType::Implicit));
        assert_eq!(c.response_type_combinations(), ["code"]);
        assert!(!c.is_public() && !c.is_pairwise());
    }

    #[test]
    fn validation_errors_in_order() {
        let cases = [
            (
                Client {
                    token_endpoint_auth_method: "client_secret_jwt".into(),
                    client_secret: Some("x".into()),
                    ..Client::default()
                },
                "Field token_endpoint_auth_method \"client_secret_jwt\" is not supported.",
            ),
            (
                Client {
                    token_endpoint_auth_method: "private_key_jwt".into(),
                    ..Client::default()
                },
                "When token_endpoint_auth_method is \"private_key_jwt\", either jwks or jwks_uri must be set.",
            ),
            (
                Client {
                    client_secret: Some("short".into()),
                    allowed_cors_origins: vec!["ftp://x".into()],
                    ..Client::default()
                },
                "Field client_secret must contain a secret that is at least 6 characters long.",
            ),
            (
                Client {
                    allowed_cors_origins: vec!["https://a.example/path".into()],
                    ..Client::default()
                },
                "Origin URL https://a.example/path must have an empty path, query, and fragment but one of the parts is not empty.",
            ),
            (
                Client {
                    subject_type: "secret".into(),
                    ..Client::default()
                },
                "Subject type secret is not supported by server, only [\"public\", \"pairwise\"] are allowed.",
            ),
            (
                Client {
                    redirect_uris: vec!["https://a.example/cb".into()],
                    post_logout_redirect_uris: vec!["https://b.example/bye".into()],
                    ..Client::default()
                },
                "post_logout_redirect_uri \"https://b.example/bye\" must match the domain, port, scheme of at least one of the registered redirect URIs but did not",
            ),
        ];
        for (c, want) in cases {
            assert_eq!(validated(c).unwrap_err().to_string(), want);
        }
        let e = validated(Client {
            redirect_uris: vec!["javascript:alert(1)".into()],
            ..Client::default()
        })
        .unwrap_err();
        assert_eq!(e.code(), "invalid_redirect_uri");
    }

    #[test]
    fn typed_views_of_the_wire_strings() {
        let c = validated(Client {
            token_endpoint_auth_method: "none".into(),
            subject_type: "pairwise".into(),
            grant_types: vec!["implicit".into(), "refresh_token".into()],
            allowed_cors_origins: vec!["https://a.example/".into()],
            ..Client::default()
        })
        .unwrap();
        assert!(c.is_public() && c.is_pairwise());
        assert!(c.allows_grant(GrantType::Implicit) && c.allows_grant(GrantType::RefreshToken));
        assert!(!c.allows_grant(GrantType::AuthorizationCode));
        assert_eq!(c.allowed_cors_origins, ["https://a.example"]);
    }
}
