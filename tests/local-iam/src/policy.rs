//! Identity-policy evaluation with AWS logic: an applicable `Deny` wins, else an applicable
//! `Allow`, else implicit deny.
//!
//! A statement applies to (action, resource) when:
//! - `Effect` is exactly `Allow` or `Deny`;
//! - `Action` matches (or `NotAction` does not): case-insensitive, `*`/`?` wildcards;
//! - `Resource` matches (or `NotResource` does not): case-sensitive, `*`/`?` match any
//!   characters including `/` and `:` (`arn:aws:s3:::b/*` covers `arn:aws:s3:::b/a/b`); a
//!   request resource `*` is therefore matched only by a pattern of wildcards;
//! - its `Condition` holds (see [`crate::condition`]).
//!
//! A statement with both or neither of `Action`/`NotAction` (or `Resource`/`NotResource`), or
//! with a malformed or unsupported `Condition`, never applies: an Allow fails closed; a Deny
//! of that shape is ignored (AWS would refuse to attach such a policy at all). `Principal` is
//! ignored (identity policies have none). Policy variables (`${aws:username}`) are not
//! expanded.

use serde_json::Value;

use crate::condition;
use crate::Authorization;

/// The outcome of evaluating a policy against one authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No statement allows it: "because no identity-based policy allows the ... action".
    ImplicitDeny,
    /// A Deny statement applies: "with an explicit deny in an identity-based policy".
    ExplicitDeny,
}

/// The decision, and the resource a denial should name (the first explicitly denied resource,
/// else the first one no statement allows; None when allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub resource: Option<String>,
}

/// Evaluates `policy` — one identity policy document (`{"Version":..,"Statement":[..] | {..}}`)
/// or a JSON array of them (all of a role's inline policies) — against `auth`. Every resource
/// must be allowed; an explicit deny of any resource denies the request.
/// `sts:GetCallerIdentity` is always allowed (AWS requires no permission for it).
pub fn evaluate(policy: &Value, auth: &Authorization) -> Decision {
    verdict(policy, auth).decision
}

/// [`evaluate`], also naming the resource that was refused (what [`crate::denial`] reports).
pub fn verdict(policy: &Value, auth: &Authorization) -> Verdict {
    if auth.needs_no_permission() {
        return Verdict {
            decision: Decision::Allowed,
            resource: None,
        };
    }
    let mut statements = Vec::new();
    collect_statements(policy, &mut statements, 0);
    let star = ["*".to_string()];
    let resources = match auth.resources.as_slice() {
        [] => &star[..],
        some => some,
    };
    let mut implicit: Option<&String> = None;
    for resource in resources {
        match decide(&statements, auth, resource) {
            Decision::ExplicitDeny => {
                return Verdict {
                    decision: Decision::ExplicitDeny,
                    resource: Some(resource.clone()),
                }
            }
            Decision::ImplicitDeny => {
                implicit.get_or_insert(resource);
            }
            Decision::Allowed => {}
        }
    }
    match implicit {
        Some(resource) => Verdict {
            decision: Decision::ImplicitDeny,
            resource: Some(resource.clone()),
        },
        None => Verdict {
            decision: Decision::Allowed,
            resource: None,
        },
    }
}

fn collect_statements<'v>(policy: &'v Value, out: &mut Vec<&'v Value>, depth: usize) {
    match policy {
        Value::Array(documents) if depth < 4 => {
            for document in documents {
                collect_statements(document, out, depth + 1);
            }
        }
        Value::Object(document) => match document.get("Statement") {
            Some(Value::Array(statements)) => out.extend(statements),
            Some(statement @ Value::Object(_)) => out.push(statement),
            _ => {}
        },
        _ => {}
    }
}

fn decide(statements: &[&Value], auth: &Authorization, resource: &str) -> Decision {
    let mut allowed = false;
    for statement in statements {
        match applies(statement, auth, resource) {
            Some(Effect::Deny) => return Decision::ExplicitDeny,
            Some(Effect::Allow) => allowed = true,
            None => {}
        }
    }
    if allowed {
        Decision::Allowed
    } else {
        Decision::ImplicitDeny
    }
}

enum Effect {
    Allow,
    Deny,
}

fn applies(statement: &Value, auth: &Authorization, resource: &str) -> Option<Effect> {
    let effect = match statement.get("Effect")?.as_str()? {
        "Allow" => Effect::Allow,
        "Deny" => Effect::Deny,
        _ => return None,
    };
    let action = auth.action.to_lowercase();
    let action_matches = covers(statement, "Action", "NotAction", |pattern| {
        glob(&pattern.to_lowercase(), &action)
    })?;
    let resource_matches = covers(statement, "Resource", "NotResource", |pattern| {
        glob(pattern, resource)
    })?;
    let conditions = condition::holds(statement.get("Condition"), &auth.context);
    (action_matches && resource_matches && conditions).then_some(effect)
}

/// Whether an element (`Action`) or its negation (`NotAction`) covers the request; None when
/// the statement has both or neither (it never applies).
fn covers(
    statement: &Value,
    element: &str,
    negation: &str,
    matches: impl Fn(&str) -> bool,
) -> Option<bool> {
    match (statement.get(element), statement.get(negation)) {
        (Some(patterns), None) => Some(strings(patterns).any(&matches)),
        (None, Some(patterns)) => Some(!strings(patterns).any(&matches)),
        _ => None,
    }
}

/// A policy element's string or list of strings (non-strings skipped).
fn strings(value: &Value) -> impl Iterator<Item = &str> {
    let (one, list) = match value {
        Value::String(s) => (Some(s.as_str()), None),
        Value::Array(items) => (None, Some(items.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(list.into_iter().flatten())
}

/// Wildcard match of the whole `text`: `*` any run of characters (including none, `/` and
/// `:`), `?` exactly one character; everything else literal (case-sensitive).
pub(crate) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                backtrack = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match backtrack {
                Some((star, consumed)) => {
                    pi = star + 1;
                    ti = consumed + 1;
                    backtrack = Some((star, consumed + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_matches_like_iam() {
        let cases = [
            ("*", "", true),
            ("*", "*", true),
            ("?", "*", true),
            ("arn:*", "*", false),
            ("a*b", "ab", true),
            ("a*b", "axxb", true),
            ("a*b", "axxbx", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*/_lifeboat/*", "x/_lifeboat/y/z", true),
            ("*/_lifeboat/*", "x/lifeboat/y", false),
            ("a**b*c", "abbbc", true),
            ("runs/*/approval.json", "runs/r1/approval.json", true),
            ("runs/*/approval.json", "runs/r1/approval.jsonx", false),
            ("Ab", "ab", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob(pattern, text), expected, "{pattern} vs {text}");
        }
    }
}
