//! OAuth 2.0 and OpenID Connect protocol values as types. Each one reads and writes (`serde`,
//! `FromStr`, `as_str`) exactly the strings Hydra v1.9.2 uses; code compares the types, never
//! the strings.
use serde::{Deserialize, Serialize};

/// Declares a string enum: its variants, their wire names, `as_str`, `FromStr` and `Display`.
macro_rules! protocol_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownValue(s.to_string())),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A string that names no value of the expected type (kept for the error message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value '{0}'")]
pub struct UnknownValue(pub String);

protocol_enum! {
    /// `grant_type` at the token endpoint, and the grants a client may use.
    GrantType {
        AuthorizationCode => "authorization_code",
        RefreshToken => "refresh_token",
        ClientCredentials => "client_credentials",
        Implicit => "implicit",
    }
}

protocol_enum! {
    /// One word of `response_type`.
    ResponseType {
        Code => "code",
        Token => "token",
        IdToken => "id_token",
    }
}

protocol_enum! {
    /// `response_mode`: how the authorization response reaches the redirect URI.
    ResponseMode {
        Query => "query",
        Fragment => "fragment",
        FormPost => "form_post",
    }
}

protocol_enum! {
    /// One word of `prompt`.
    Prompt {
        None => "none",
        Login => "login",
        Consent => "consent",
    }
}

protocol_enum! {
    /// `token_endpoint_auth_method` of a client.
    ClientAuthMethod {
        ClientSecretBasic => "client_secret_basic",
        ClientSecretPost => "client_secret_post",
        PrivateKeyJwt => "private_key_jwt",
        None => "none",
    }
}

protocol_enum! {
    /// `subject_type` of a client, and `oidc.subject_identifiers.supported_types`.
    SubjectType {
        Public => "public",
        Pairwise => "pairwise",
    }
}

protocol_enum! {
    /// `strategies.access_token`: opaque HMAC-signed tokens, or RS256 JWTs.
    AccessTokenStrategy {
        Opaque => "opaque",
        Jwt => "jwt",
    }
}

// The variants come from `protocol_enum!`, which derives no `Default`.
#[allow(clippy::derivable_impls)]
impl Default for AccessTokenStrategy {
    fn default() -> AccessTokenStrategy {
        AccessTokenStrategy::Opaque
    }
}

/// A set of response types (`response_type`'s words, in any order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseTypes {
    pub code: bool,
    pub token: bool,
    pub id_token: bool,
}

impl ResponseTypes {
    /// The set of `words` (already split and lower-cased); the first unknown word is the error.
    pub fn parse<'a>(
        words: impl IntoIterator<Item = &'a str>,
    ) -> Result<ResponseTypes, UnknownValue> {
        let mut set = ResponseTypes::default();
        for w in words {
            match w.parse()? {
                ResponseType::Code => set.code = true,
                ResponseType::Token => set.token = true,
                ResponseType::IdToken => set.id_token = true,
            }
        }
        Ok(set)
    }

    pub fn contains(&self, t: ResponseType) -> bool {
        match t {
            ResponseType::Code => self.code,
            ResponseType::Token => self.token,
            ResponseType::IdToken => self.id_token,
        }
    }

    /// Exactly `code`: the authorization code flow, nothing in the front channel.
    pub fn is_code_only(&self) -> bool {
        *self
            == ResponseTypes {
                code: true,
                ..ResponseTypes::default()
            }
    }
}

/// The words of `prompt`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompts(Vec<Prompt>);

impl Prompts {
    /// The prompts of `words`; the first unknown word is the error.
    pub fn parse<'a>(words: impl IntoIterator<Item = &'a str>) -> Result<Prompts, UnknownValue> {
        words
            .into_iter()
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Prompts)
    }

    pub fn contains(&self, p: Prompt) -> bool {
        self.0.contains(&p)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>(), Ok(*g));
            let json = serde_json::to_string(g).unwrap();
            assert_eq!(json, format!("\"{}\"", g.as_str()));
            assert_eq!(serde_json::from_str::<GrantType>(&json).unwrap(), *g);
        }
        for m in ClientAuthMethod::ALL {
            assert_eq!(m.as_str().parse::<ClientAuthMethod>(), Ok(*m));
        }
        assert_eq!("pairwise".parse(), Ok(SubjectType::Pairwise));
        assert_eq!("jwt".parse(), Ok(AccessTokenStrategy::Jwt));
        assert_eq!("form_post".parse(), Ok(ResponseMode::FormPost));
        assert!("Pairwise".parse::<SubjectType>().is_err());
    }

    #[test]
    fn response_type_sets() {
        let hybrid = ResponseTypes::parse(["id_token", "code"]).unwrap();
        assert!(hybrid.contains(ResponseType::Code) && hybrid.contains(ResponseType::IdToken));
        assert!(!hybrid.is_code_only());
        assert!(ResponseTypes::parse(["code"]).unwrap().is_code_only());
        assert_eq!(
            ResponseTypes::parse(["code", "device"]),
            Err(UnknownValue("device".into()))
        );
    }

    #[test]
    fn prompts() {
        let p = Prompts::parse(["login", "consent"]).unwrap();
        assert!(p.contains(Prompt::Login) && !p.contains(Prompt::None));
        assert_eq!(p.len(), 2);
        assert_eq!(
            Prompts::parse(["select_account"]),
            Err(UnknownValue("select_account".into()))
        );
    }
}
