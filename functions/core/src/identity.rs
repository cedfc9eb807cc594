//! Who decided: identities normalised so that one person compares equal to themself, and
//! resolved against the plan's approvers so that the two-person rule counts people, not
//! spellings.
//!
//! Two kinds of identity reach a decision:
//! - an **e-mail address**, from a signed approval link (the link was delivered only to that
//!   address): compared after trimming and lower-casing — `Alice@X ` and `alice@x` are one
//!   person;
//! - an **IAM principal ARN**, from STS `GetCallerIdentity` (CLI): an IAM user
//!   (`arn:aws:iam::ACCOUNT:user/NAME`) or an assumed-role session
//!   (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
//!
//! A session name is chosen by whoever assumes the role, so it proves nothing by itself: a role
//! listed in the plan (`arn:aws:iam::ACCOUNT:role/ROLE`) counts as **one** approver whatever the
//! session. Only a session ARN listed verbatim (IAM Identity Center sets the session name to the
//! user name) identifies a person within a shared role.

use std::collections::BTreeMap;

/// Longest identity accepted anywhere (an IAM ARN is at most 2048; e-mail 254).
pub const MAX_IDENTITY: usize = 256;

/// Why a string is not an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Empty after trimming.
    #[error("is empty")]
    Empty,
    /// Too long to be an e-mail address or an ARN we accept.
    #[error("is longer than {MAX_IDENTITY} characters")]
    TooLong,
    /// Newlines, tabs and other control characters would forge lines in mails and logs.
    #[error("contains a control character (newline, tab, ...)")]
    Control,
    /// Neither `name@domain` nor an IAM/STS ARN.
    #[error(
        "is neither an e-mail address (name@domain) nor an IAM user/role or STS assumed-role ARN"
    )]
    Unrecognised,
}

/// A normalised identity.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identity {
    /// Lower-cased, trimmed e-mail address.
    Email(String),
    /// An IAM or STS principal.
    Principal(Principal),
}

/// An IAM principal as ARNs name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    /// `arn:PART:iam::ACCOUNT:user[/path]/NAME`.
    User {
        partition: String,
        account: String,
        name: String,
    },
    /// `arn:PART:iam::ACCOUNT:role[/path]/NAME` (any session of it).
    Role {
        partition: String,
        account: String,
        name: String,
    },
    /// `arn:PART:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    Session {
        partition: String,
        account: String,
        role: String,
        session: String,
    },
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Email(e) => f.write_str(e),
            Identity::Principal(p) => p.fmt(f),
        }
    }
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::User {
                partition,
                account,
                name,
            } => write!(f, "arn:{partition}:iam::{account}:user/{name}"),
            Principal::Role {
                partition,
                account,
                name,
            } => write!(f, "arn:{partition}:iam::{account}:role/{name}"),
            Principal::Session {
                partition,
                account,
                role,
                session,
            } => write!(
                f,
                "arn:{partition}:sts::{account}:assumed-role/{role}/{session}"
            ),
        }
    }
}

fn is_name_char(c: char) -> bool {
    // IAM names: alphanumerics and +=,.@_- ; session names the same.
    c.is_ascii_alphanumeric() || "+=,.@_-".contains(c)
}

fn parse_arn(s: &str) -> Option<Principal> {
    let mut parts = s.splitn(6, ':');
    let (arn, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn"
        || !matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        || !region.is_empty()
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let (partition, account) = (partition.to_string(), account.to_string());
    let segments: Vec<&str> = resource.split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || !s.chars().all(is_name_char))
    {
        return None;
    }
    match (service, segments.as_slice()) {
        ("iam", ["user", .., name]) if segments.len() >= 2 => Some(Principal::User {
            partition,
            account,
            name: name.to_string(),
        }),
        ("iam", ["role", .., name]) if segments.len() >= 2 => Some(Principal::Role {
            partition,
            account,
            name: name.to_string(),
        }),
        ("sts", ["assumed-role", role, session]) => Some(Principal::Session {
            partition,
            account,
            role: role.to_string(),
            session: session.to_string(),
        }),
        _ => None,
    }
}

impl Identity {
    /// Parses and normalises an e-mail address or a principal ARN.
    pub fn parse(raw: &str) -> Result<Identity, IdentityError> {
        if raw.chars().any(char::is_control) {
            return Err(IdentityError::Control);
        }
        let s = raw.trim();
        if s.is_empty() {
            return Err(IdentityError::Empty);
        }
        if s.chars().count() > MAX_IDENTITY {
            return Err(IdentityError::TooLong);
        }
        if s.starts_with("arn:") {
            return parse_arn(s)
                .map(Identity::Principal)
                .ok_or(IdentityError::Unrecognised);
        }
        let email = s.to_lowercase();
        let Some((local, domain)) = email.split_once('@') else {
            return Err(IdentityError::Unrecognised);
        };
        let ok_local = !local.is_empty()
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&*+-/=?^_`{}~.'".contains(c));
        let ok_domain = !domain.is_empty()
            && domain
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
        if ok_local && ok_domain {
            Ok(Identity::Email(email))
        } else {
            Err(IdentityError::Unrecognised)
        }
    }
}

/// Who an identity counts as under the plan: the approvers list entry it matches (an e-mail
/// key or a listed ARN), or `None` when the plan lists approvers and this is none of them.
///
/// `approvers` are the plan's entries; `principals` maps an e-mail approver to the IAM
/// principals that are the same person (so that alice by link and alice by CLI are one vote).
/// With no approvers listed, anyone who can reach the decision path counts as themself.
pub fn resolve(
    approvers: &[String],
    principals: &BTreeMap<String, Vec<String>>,
    who: &Identity,
) -> Option<String> {
    let listed: Vec<Identity> = approvers
        .iter()
        .filter_map(|a| Identity::parse(a).ok())
        .collect();
    if listed.is_empty() {
        return Some(who.to_string());
    }
    let covers = |entry: &Identity| match (entry, who) {
        (Identity::Email(a), Identity::Email(b)) => a == b,
        (Identity::Principal(a), Identity::Principal(b)) => principal_covers(a, b),
        _ => false,
    };
    if let Some(hit) = listed.iter().find(|e| covers(e)) {
        return Some(hit.to_string());
    }
    // An IAM principal mapped to an e-mail approver.
    principals.iter().find_map(|(email, arns)| {
        let email = Identity::parse(email).ok()?;
        arns.iter()
            .filter_map(|a| Identity::parse(a).ok())
            .any(|a| covers(&a))
            .then(|| email.to_string())
    })
}

/// Whether a listed principal covers a caller: equal, or the listed role of an assumed-role
/// session (any session: the session name is self-chosen).
fn principal_covers(listed: &Principal, caller: &Principal) -> bool {
    match (listed, caller) {
        (
            Principal::Role {
                partition,
                account,
                name,
            },
            Principal::Session {
                partition: p2,
                account: a2,
                role,
                ..
            },
        ) => partition == p2 && account == a2 && name == role,
        (a, b) => a == b,
    }
}

/// Truncates untrusted text (a self-declared name, a comment) for audit lines and pages:
/// control characters become spaces, at most `max` characters, an ellipsis marks the cut.
pub fn bounded(text: &str, max: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut s: String = clean.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let email = |s: &str| Ok(Identity::Email(s.into()));
        for (raw, want) in [
            ("alice@x.com", email("alice@x.com")),
            ("Alice@X.com", email("alice@x.com")),
            ("  alice@x.com ", email("alice@x.com")),
            ("alice@x.com\n", Err(IdentityError::Control)),
            ("alice\n@x.com", Err(IdentityError::Control)),
            ("", Err(IdentityError::Empty)),
            ("   ", Err(IdentityError::Empty)),
            ("alice", Err(IdentityError::Unrecognised)),
            ("alice@", Err(IdentityError::Unrecognised)),
            ("@x.com", Err(IdentityError::Unrecognised)),
            ("a b@x.com", Err(IdentityError::Unrecognised)),
            ("alice|bob@x.com", Err(IdentityError::Unrecognised)),
            ("a@x..com", Err(IdentityError::Unrecognised)),
            (
                "arn:aws:iam::12345678901:user/a",
                Err(IdentityError::Unrecognised),
            ),
            ("arn:aws:s3:::bucket", Err(IdentityError::Unrecognised)),
            (
                "arn:aws:iam::123456789012:group/ops",
                Err(IdentityError::Unrecognised),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/R",
                Err(IdentityError::Unrecognised),
            ),
            (
                "arn:aws:iam::123456789012:user/",
                Err(IdentityError::Unrecognised),
            ),
        ] {
            assert_eq!(Identity::parse(raw), want, "{raw:?}");
        }
        assert_eq!(
            Identity::parse(&format!("{}@x.com", "a".repeat(300))),
            Err(IdentityError::TooLong)
        );
        let user = Identity::parse("arn:aws:iam::123456789012:user/ops/alice").unwrap();
        assert_eq!(user.to_string(), "arn:aws:iam::123456789012:user/alice");
        let session =
            Identity::parse(" arn:aws:sts::123456789012:assumed-role/OnCall/alice ").unwrap();
        assert_eq!(
            session.to_string(),
            "arn:aws:sts::123456789012:assumed-role/OnCall/alice"
        );
    }

    #[test]
    fn resolve_table() {
        let approvers: Vec<String> = [
            "alice@example.com",
            "arn:aws:iam::123456789012:role/OnCall",
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/carol@example.com",
            "arn:aws:iam::123456789012:user/dave",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut principals = BTreeMap::new();
        principals.insert(
            "alice@example.com".to_string(),
            vec!["arn:aws:iam::123456789012:user/alice".to_string()],
        );
        let r = |who: &str| resolve(&approvers, &principals, &Identity::parse(who).unwrap());
        for (who, want) in [
            ("ALICE@example.com", Some("alice@example.com")),
            // Alice by CLI is Alice.
            (
                "arn:aws:iam::123456789012:user/alice",
                Some("alice@example.com"),
            ),
            // Any session of the shared role is the role: one vote, whoever chose the name.
            (
                "arn:aws:sts::123456789012:assumed-role/OnCall/bob",
                Some("arn:aws:iam::123456789012:role/OnCall"),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/OnCall/alice@example.com",
                Some("arn:aws:iam::123456789012:role/OnCall"),
            ),
            // A listed session is that session only.
            (
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/carol@example.com",
                Some(
                    "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/carol@example.com",
                ),
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/mallory",
                None,
            ),
            (
                "arn:aws:iam::123456789012:user/dave",
                Some("arn:aws:iam::123456789012:user/dave"),
            ),
            // Another account, another partition, an unlisted person.
            ("arn:aws:iam::999999999999:user/dave", None),
            ("arn:aws-cn:iam::123456789012:user/dave", None),
            ("mallory@example.com", None),
        ] {
            assert_eq!(r(who).as_deref(), want, "{who}");
        }
        // No approvers listed: anyone counts as themself, normalised.
        assert_eq!(
            resolve(&[], &principals, &Identity::parse("Bob@X.org ").unwrap()).as_deref(),
            Some("bob@x.org")
        );
    }

    #[test]
    fn bounded_text() {
        assert_eq!(bounded("abc", 5), "abc");
        assert_eq!(bounded("a\nb", 5), "a b");
        assert_eq!(bounded("abcdefgh", 5), "abcd…");
        assert_eq!(bounded(&"é".repeat(10), 3).chars().count(), 3);
    }
}
