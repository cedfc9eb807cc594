//! The approval-link signing keys of a deployment (a Secrets Manager secret, read by
//! [`super::Deps::signing_keys`] and cached per container): parsing, rotation, and the keyed MAC.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// Shortest signing key accepted: HMAC-SHA256 is only as strong as its key, and a short
/// key can be brute-forced from one link.
pub const MIN_KEY_BYTES: usize = 32;

/// Why the signing secret cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Shorter than [`MIN_KEY_BYTES`].
    #[error("signing key `{id}` is {len} bytes; at least {MIN_KEY_BYTES} are required")]
    TooShort { id: String, len: usize },
    /// JSON that is not the documented shape.
    #[error("the signing secret is not a key nor {{\"current\": {{\"id\", \"key\"}}, \"previous\": ...}}: {0}")]
    Shape(String),
}

/// One key and its id (the id travels in the link, so rotation knows which key to check).
#[derive(Clone)]
pub struct SigningKey {
    /// Key id (`kid` in the link).
    pub id: String,
    key: Secret,
}

/// The keys of a deployment: links are signed with `current`; `previous` is still accepted so
/// links mailed just before a rotation keep working until they expire.
#[derive(Clone)]
pub struct SigningKeys {
    /// Signs new links.
    pub current: SigningKey,
    /// Accepted for verification only.
    pub previous: Option<SigningKey>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous.as_ref().map(|k| &k.id))
            .finish()
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    id: String,
    key: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysDoc {
    current: KeyDoc,
    #[serde(default)]
    previous: Option<KeyDoc>,
}

impl SigningKeys {
    /// Parses the secret: a plain key (id `k0`), or
    /// `{"current": {"id": "...", "key": "..."}, "previous": {"id": "...", "key": "..."}}`
    /// for rotation. Every key must be at least [`MIN_KEY_BYTES`] long.
    pub fn parse(secret: &Secret) -> Result<SigningKeys, KeyError> {
        let raw = secret.expose().trim();
        let keys = if raw.starts_with('{') {
            let doc: KeysDoc =
                serde_json::from_str(raw).map_err(|e| KeyError::Shape(e.to_string()))?;
            let key = |d: KeyDoc| {
                if d.id.is_empty()
                    || d.id.len() > 32
                    || !d
                        .id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(KeyError::Shape(
                        "a key id must be 1–32 of letters, digits, '-', '_', '.'".into(),
                    ));
                }
                Ok(SigningKey {
                    id: d.id,
                    key: Secret::new(d.key),
                })
            };
            SigningKeys {
                current: key(doc.current)?,
                previous: doc.previous.map(key).transpose()?,
            }
        } else {
            SigningKeys {
                current: SigningKey {
                    id: "k0".into(),
                    key: Secret::new(raw),
                },
                previous: None,
            }
        };
        for k in std::iter::once(&keys.current).chain(keys.previous.as_ref()) {
            let len = k.key.expose().len();
            if len < MIN_KEY_BYTES {
                return Err(KeyError::TooShort {
                    id: k.id.clone(),
                    len,
                });
            }
        }
        Ok(keys)
    }

    /// The key a link names by its `kid` (current or previous).
    pub fn by_id(&self, id: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == id)
    }
}

impl SigningKey {
    /// An HMAC-SHA256 keyed with this key (the key itself never leaves this module).
    pub fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length (the minimum is enforced by `SigningKeys::parse`).
        Hmac::<Sha256>::new_from_slice(self.key.expose().as_bytes())
            .unwrap_or_else(|_| unreachable!("hmac takes any key length"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_or_malformed_keys_are_refused() {
        assert_eq!(
            SigningKeys::parse(&Secret::new("x")).unwrap_err(),
            KeyError::TooShort {
                id: "k0".into(),
                len: 1
            }
        );
        let short_previous = format!(
            r#"{{"current": {{"id": "a", "key": "{}"}}, "previous": {{"id": "b", "key": "short"}}}}"#,
            "n".repeat(32)
        );
        assert!(matches!(
            SigningKeys::parse(&Secret::new(short_previous)),
            Err(KeyError::TooShort { id, .. }) if id == "b"
        ));
        for bad in [
            r#"{"current": "x"}"#,
            r#"{"current": {"id": "a", "key": "x"}, "extra": 1}"#,
            r#"{"current": {"id": "a b", "key": "0123456789abcdef0123456789abcdef"}}"#,
        ] {
            assert!(
                matches!(
                    SigningKeys::parse(&Secret::new(bad)),
                    Err(KeyError::Shape(_))
                ),
                "{bad}"
            );
        }
        // The message never shows the key.
        let e = SigningKeys::parse(&Secret::new("supersecret")).unwrap_err();
        assert!(!e.to_string().contains("supersecret"));
    }
}
