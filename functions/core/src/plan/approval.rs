//! `[approval]` and `[notifications]`: who decides a failover, how many distinct people must,
//! how long they have, and who else hears about it. The checks count people, not spellings:
//! one person listed twice (or voting as a role and as a session of it) would defeat the
//! two-person rule.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};
use crate::identity::{Identity, Principal};

/// Approval settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// How long a request stays open.
    #[serde(default = "default_approval_timeout")]
    pub timeout_seconds: u32,
    /// Who may approve (e-mail addresses or IAM principals).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Full drills run without asking.
    #[serde(default)]
    pub drill_preapproved: bool,
    /// Readiness drills (non-disruptive) ask too.
    #[serde(default)]
    pub readiness_requires_approval: bool,
    /// Distinct approvers needed before the execution continues (two-person rule: 2).
    #[serde(default = "one_approval")]
    pub required_approvals: u32,
    /// IAM principals (user, role or assumed-role session ARNs) that are the same person as an
    /// e-mail approver, so a vote by link and one by CLI count once: `"alice@x" = ["arn:..."]`.
    #[serde(default)]
    pub principals: BTreeMap<String, Vec<String>>,
}

fn one_approval() -> u32 {
    1
}

impl Default for Approval {
    fn default() -> Self {
        Self {
            timeout_seconds: default_approval_timeout(),
            approvers: Vec::new(),
            drill_preapproved: false,
            readiness_requires_approval: false,
            required_approvals: one_approval(),
            principals: BTreeMap::new(),
        }
    }
}

fn default_approval_timeout() -> u32 {
    3600
}

/// Notification targets beyond the SNS topic of the deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Slack/Teams incoming webhook URLs (Secrets Manager ids, since they are credentials).
    #[serde(default)]
    pub webhook_secret_ids: Vec<String>,
}

/// Shortest approval wait (tests use seconds; a real plan gives people minutes to hours).
pub const MIN_APPROVAL_TIMEOUT_SECONDS: u32 = 1;

/// Longest approval wait: a Standard Step Functions execution lasts at most one year, so the
/// wait (the task's `TimeoutSecondsPath`) must end inside it to time out cleanly.
pub const MAX_APPROVAL_TIMEOUT_SECONDS: u32 = 31_536_000;

/// Why two principals would let one person vote twice: the same principal, or a role and a
/// session of it (anyone who can assume the role picks the session name).
fn overlap(a: &Principal, b: &Principal) -> Option<&'static str> {
    let covers = |role: &Principal, session: &Principal| match (role, session) {
        (
            Principal::Role {
                partition,
                account,
                name,
            },
            Principal::Session {
                partition: p,
                account: a,
                role,
                ..
            },
        ) => partition == p && account == a && name == role,
        _ => false,
    };
    if a == b {
        Some("the same principal")
    } else if covers(a, b) || covers(b, a) {
        Some("a role and a session of it (whoever assumes the role picks the session name)")
    } else {
        None
    }
}

/// E-mail approvers the template can subscribe, one filtered subscription each
/// (`ApproverSubscription0..7` in `infra/template.yaml`; `sam build` cannot read `Fn::ForEach`).
pub const MAX_EMAIL_APPROVERS: usize = 8;

impl Approval {
    /// Checks the approval settings: every approver a distinct person, every IAM principal
    /// mapped to exactly one of them, and a two-person rule that can be met.
    pub(super) fn validate(&self) -> Result<(), PlanError> {
        if self.required_approvals == 0 || self.required_approvals > 5 {
            return Err(invalid("approval.required_approvals", "must be 1–5"));
        }
        let listed = self.listed_approvers()?;
        self.validate_principals(&listed)?;
        let required = self.required_approvals as usize;
        if listed.is_empty() && required > 1 {
            return Err(invalid(
                "approval.required_approvals",
                format!(
                    "is {required} but approval.approvers is empty: without a list anyone counts \
                     as themself, so one person voting by link and by CLI would count twice"
                ),
            ));
        }
        if !listed.is_empty() && required > listed.len() {
            return Err(invalid(
                "approval.required_approvals",
                format!(
                    "is {required} but approval.approvers lists {} distinct approver(s): the \
                     failover could never be approved",
                    listed.len()
                ),
            ));
        }
        if !(MIN_APPROVAL_TIMEOUT_SECONDS..=MAX_APPROVAL_TIMEOUT_SECONDS)
            .contains(&self.timeout_seconds)
        {
            return Err(invalid(
                "approval.timeout_seconds",
                format!(
                    "must be {MIN_APPROVAL_TIMEOUT_SECONDS}–{MAX_APPROVAL_TIMEOUT_SECONDS} \
                     seconds: a Standard Step Functions execution lasts at most a year, so a \
                     longer wait could never time out cleanly"
                ),
            ));
        }
        Ok(())
    }

    /// The approvers as identities, each a distinct person, and no more e-mail approvers than
    /// the template can subscribe.
    fn listed_approvers(&self) -> Result<Vec<Identity>, PlanError> {
        let mut listed: Vec<Identity> = Vec::with_capacity(self.approvers.len());
        for (i, raw) in self.approvers.iter().enumerate() {
            let key = format!("approval.approvers[{i}]");
            let id = Identity::parse(raw).map_err(|e| invalid(&key, e.to_string()))?;
            for (j, other) in listed.iter().enumerate() {
                let why = match (other, &id) {
                    (x, y) if x == y => {
                        Some("the same identity once normalised: trimmed, e-mail lower-cased")
                    }
                    (Identity::Principal(x), Identity::Principal(y)) => overlap(x, y),
                    _ => None,
                };
                if let Some(why) = why {
                    return Err(invalid(
                        key,
                        format!(
                            "repeats approval.approvers[{j}] ({why}): the two-person rule counts \
                             people, so each approver must be listed once"
                        ),
                    ));
                }
            }
            if matches!(id, Identity::Email(_))
                && listed
                    .iter()
                    .filter(|l| matches!(l, Identity::Email(_)))
                    .count()
                    == MAX_EMAIL_APPROVERS
            {
                return Err(invalid(
                    key,
                    format!(
                        "is e-mail approver number {}, but the template gives at most \
                         {MAX_EMAIL_APPROVERS} e-mail approvers a subscription of their own: this \
                         one would never receive links",
                        MAX_EMAIL_APPROVERS + 1
                    ),
                ));
            }
            listed.push(id);
        }
        Ok(listed)
    }

    /// Checks `principals` maps listed e-mail approvers to IAM principals of no one else.
    fn validate_principals(&self, listed: &[Identity]) -> Result<(), PlanError> {
        // Principal → (approver e-mail, key it is mapped at).
        let mut mapped: Vec<(Principal, String, String)> = Vec::new();
        let mut emails: BTreeMap<String, String> = BTreeMap::new();
        for (raw_email, arns) in &self.principals {
            let key = format!("approval.principals.{raw_email:?}");
            let email = match Identity::parse(raw_email) {
                Ok(Identity::Email(e)) => e,
                Ok(Identity::Principal(_)) => {
                    return Err(invalid(
                        key,
                        "must be an e-mail approver: principals maps an e-mail to the IAM \
                         principals of the same person",
                    ))
                }
                Err(e) => return Err(invalid(key, e.to_string())),
            };
            if !listed.contains(&Identity::Email(email.clone())) {
                return Err(invalid(
                    key,
                    "is not listed in approval.approvers: only an approver's principals may vote \
                     for them",
                ));
            }
            if let Some(first) = emails.insert(email.clone(), raw_email.clone()) {
                return Err(invalid(
                    key,
                    format!(
                        "is approval.principals.{first:?} again (after trimming and lower-casing)"
                    ),
                ));
            }
            for (k, raw_arn) in arns.iter().enumerate() {
                let key = format!("{key}[{k}]");
                let principal =
                    match Identity::parse(raw_arn) {
                        Ok(Identity::Principal(p)) => p,
                        Ok(Identity::Email(_)) => return Err(invalid(
                            key,
                            "must be an IAM user or role ARN or an STS assumed-role ARN, not an \
                             e-mail address",
                        )),
                        Err(e) => return Err(invalid(key, e.to_string())),
                    };
                for (j, other) in listed.iter().enumerate() {
                    if let Identity::Principal(other) = other {
                        if let Some(why) = overlap(other, &principal) {
                            return Err(invalid(
                                key,
                                format!(
                                    "and approval.approvers[{j}] are {why}: one person cannot vote \
                                     as two approvers"
                                ),
                            ));
                        }
                    }
                }
                for (other, owner, at) in &mapped {
                    if let Some(why) = overlap(other, &principal) {
                        let whose = if *owner == email {
                            "listed twice for this approver".to_string()
                        } else {
                            format!(
                                "mapped to {owner} too: one person cannot vote as two approvers"
                            )
                        };
                        return Err(invalid(key, format!("and {at} are {why}, {whose}")));
                    }
                }
                mapped.push((principal, email.clone(), key));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::{check_rows, Row};

    const APPROVERS: &str = "approvers = [\"oncall-dr@example.com\"]";
    const TIMEOUT: &str = "timeout_seconds = 900";
    /// The last line of the plan, inside `[approval]`: approval keys are appended to it.
    const APPROVAL_END: &str = "drill_preapproved = false";

    #[test]
    fn unsafe_settings_are_refused_naming_the_key() {
        let approvers = |list: &str| (APPROVERS, format!("approvers = {list}"));
        let approval = |extra: &str| (APPROVAL_END, format!("{APPROVAL_END}\n{extra}"));
        let timeout = |t: &str| (TIMEOUT, format!("timeout_seconds = {t}"));
        let two = approvers(r#"["alice@x.com", "bob@x.com"]"#);
        let long = format!(r#"["oncall-dr@example.com", "{}@x.com"]"#, "a".repeat(300));
        let rows: Vec<Row> = vec![
            // 4. Approvers are identities, each listed once.
            (
                "approver with a newline",
                vec![approvers(
                    r#"["oncall-dr@example.com", "bob@x.com\nBcc: all@x.com"]"#,
                )],
                Some(("approval.approvers[1]", "control character")),
            ),
            (
                "blank approver",
                vec![approvers(r#"["oncall-dr@example.com", " "]"#)],
                Some(("approval.approvers[1]", "empty")),
            ),
            (
                "approver too long",
                vec![approvers(&long)],
                Some(("approval.approvers[1]", "longer than")),
            ),
            (
                "approver neither e-mail nor ARN",
                vec![approvers(r#"["on-call"]"#)],
                Some(("approval.approvers[0]", "neither")),
            ),
            (
                "nine e-mail approvers",
                vec![approvers(&format!(
                    "[{}]",
                    (0..9)
                        .map(|i| format!("\"a{i}@x.com\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))],
                Some(("approval.approvers[8]", "at most 8 e-mail approvers")),
            ),
            (
                "approver a group ARN",
                vec![approvers(r#"["arn:aws:iam::123456789012:group/ops"]"#)],
                Some(("approval.approvers[0]", "neither")),
            ),
            (
                "same approver in two spellings",
                vec![approvers(r#"["Alice@X.com", "alice@x.com "]"#)],
                Some(("approval.approvers[1]", "repeats approval.approvers[0]")),
            ),
            (
                "same IAM user with a path",
                vec![approvers(
                    r#"["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/ops/alice"]"#,
                )],
                Some(("approval.approvers[1]", "repeats approval.approvers[0]")),
            ),
            (
                "a role and a session of it",
                vec![approvers(
                    r#"["arn:aws:iam::123456789012:role/OnCall", "arn:aws:sts::123456789012:assumed-role/OnCall/bob"]"#,
                )],
                Some(("approval.approvers[1]", "session")),
            ),
            // 5. Principals map a listed e-mail approver to IAM principals of no one else.
            (
                "principals of an unlisted person",
                vec![approval(
                    r#"principals = { "bob@x.com" = ["arn:aws:iam::123456789012:user/bob"] }"#,
                )],
                Some((r#"approval.principals."bob@x.com""#, "not listed")),
            ),
            (
                "principals keyed by an ARN",
                vec![
                    approvers(r#"["arn:aws:iam::123456789012:role/OnCall"]"#),
                    approval(
                        r#"principals = { "arn:aws:iam::123456789012:role/OnCall" = ["arn:aws:iam::123456789012:user/bob"] }"#,
                    ),
                ],
                Some((
                    r#"approval.principals."arn:aws:iam::123456789012:role/OnCall""#,
                    "e-mail",
                )),
            ),
            (
                "principals keyed twice by one approver",
                vec![
                    approvers(r#"["alice@x.com"]"#),
                    approval(
                        r#"principals = { "Alice@x.com" = ["arn:aws:iam::123456789012:user/a"], "alice@x.com" = ["arn:aws:iam::123456789012:user/b"] }"#,
                    ),
                ],
                Some((r#"approval.principals."alice@x.com""#, "again")),
            ),
            (
                "principal that is an e-mail",
                vec![approval(
                    r#"principals = { "oncall-dr@example.com" = ["alice@x.com"] }"#,
                )],
                Some((
                    r#"approval.principals."oncall-dr@example.com"[0]"#,
                    "not an e-mail",
                )),
            ),
            (
                "principal that is no IAM principal",
                vec![approval(
                    r#"principals = { "oncall-dr@example.com" = ["arn:aws:iam::123456789012:user/a", "arn:aws:s3:::bucket"] }"#,
                )],
                Some((
                    r#"approval.principals."oncall-dr@example.com"[1]"#,
                    "neither",
                )),
            ),
            (
                "principal with a newline",
                vec![approval(
                    r#"principals = { "oncall-dr@example.com" = ["arn:aws:iam::123456789012:user/a\n"] }"#,
                )],
                Some((
                    r#"approval.principals."oncall-dr@example.com"[0]"#,
                    "control character",
                )),
            ),
            (
                "one principal mapped to two approvers",
                vec![
                    two.clone(),
                    approval(
                        r#"principals = { "alice@x.com" = ["arn:aws:iam::123456789012:user/x"], "bob@x.com" = ["arn:aws:iam::123456789012:user/x"] }"#,
                    ),
                ],
                Some((
                    r#"approval.principals."bob@x.com"[0]"#,
                    "mapped to alice@x.com",
                )),
            ),
            (
                "principal that is another approver",
                vec![
                    approvers(r#"["alice@x.com", "arn:aws:iam::123456789012:user/bob"]"#),
                    approval(
                        r#"principals = { "alice@x.com" = ["arn:aws:iam::123456789012:user/bob"] }"#,
                    ),
                ],
                Some((
                    r#"approval.principals."alice@x.com"[0]"#,
                    "approval.approvers[1]",
                )),
            ),
            (
                "principal a role whose session is another approver",
                vec![
                    approvers(
                        r#"["alice@x.com", "arn:aws:sts::123456789012:assumed-role/OnCall/bob"]"#,
                    ),
                    approval(
                        r#"principals = { "alice@x.com" = ["arn:aws:iam::123456789012:role/OnCall"] }"#,
                    ),
                ],
                Some((r#"approval.principals."alice@x.com"[0]"#, "session")),
            ),
            // 6. A two-person rule that can be met, by listed people.
            (
                "more approvals than approvers",
                vec![two.clone(), approval("required_approvals = 3")],
                Some(("approval.required_approvals", "lists 2")),
            ),
            (
                "two approvals and no list",
                vec![approvers("[]"), approval("required_approvals = 2")],
                Some(("approval.required_approvals", "empty")),
            ),
            // 7. A wait that a person can answer and Step Functions can end.
            (
                "timeout over a year",
                vec![timeout("31536001")],
                Some(("approval.timeout_seconds", "Step Functions")),
            ),
            (
                "no timeout",
                vec![timeout("0")],
                Some(("approval.timeout_seconds", "1–31536000")),
            ),
            // Still valid.
            (
                "approver ARNs",
                vec![approvers(
                    r#"["oncall-dr@example.com", "arn:aws:iam::123456789012:role/OnCall", "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/carol@x.com", "arn:aws-us-gov:iam::123456789012:user/dave"]"#,
                )],
                None,
            ),
            (
                "principals mapping and two-person rule",
                vec![
                    two.clone(),
                    approval(
                        r#"required_approvals = 2
principals = { "Alice@X.com " = ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:role/AliceAdmin"], "bob@x.com" = ["arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/bob"] }"#,
                    ),
                ],
                None,
            ),
            ("no approvers, one approval", vec![approvers("[]")], None),
            ("shortest timeout", vec![timeout("60")], None),
            ("longest timeout", vec![timeout("31536000")], None),
        ];
        check_rows(rows);
    }

    mod properties {
        use proptest::prelude::*;

        use crate::identity::Identity;
        use crate::plan::test_support::{example, proptest_config};
        use crate::plan::PlanError;

        fn approver() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[ \\t]?[A-Za-z0-9._%+'|-]{0,10}@?[A-Za-z0-9.-]{0,10}[ \\n]?",
                "[ ]?[A-Za-z0-9._+-]{1,10}@[A-Za-z0-9-]{1,8}(\\.[A-Za-z0-9-]{1,8}){0,2}[ ]?",
                "arn:aws(-cn)?:(iam|sts|s3)::[0-9]{11,13}:(user|role|group|assumed-role)(/[A-Za-z0-9+=,.@_-]{0,6}){0,3}",
                "arn:aws:(iam::[0-9]{12}:(user|role)(/[A-Za-z0-9_+=,.@-]{1,8}){1,3}|sts::[0-9]{12}:assumed-role/[A-Za-z0-9_]{1,8}/[A-Za-z0-9_@.]{1,8})",
                Just("ONCALL-DR@example.com ".to_string()),
            ]
        }

        proptest! {
            #![proptest_config(proptest_config())]

            #[test]
            fn approvers_are_identities_or_refused_by_index(raw in approver()) {
                let mut plan = example();
                plan.approval.approvers = vec!["oncall-dr@example.com".into(), raw.clone()];
                match plan.validate() {
                    Ok(()) => prop_assert!(Identity::parse(&raw).is_ok(), "{raw:?}"),
                    Err(PlanError::Invalid { key, .. }) => {
                        prop_assert_eq!(key, "approval.approvers[1]")
                    }
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }
        }
    }
}
