//! Secrets that must never reach a log line, an error, a report or a step output.

use std::fmt;

/// A secret value (token, client secret, signing key). `Debug` and `Display` print
/// `***`; the value is only reachable through [`Secret::expose`], so every use is greppable.
/// Deserialises from a plain string (step inputs carry the task token); deliberately not
/// `Serialize`, so a secret cannot end up in a step output or report by accident.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that has to send it (an HTTP header, a signature).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("dapi-very-secret");
        assert!(!format!("{s:?} {s}").contains("very-secret"));
        assert_eq!(s.expose(), "dapi-very-secret");
    }
}
