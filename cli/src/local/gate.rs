//! IAM at the local host: every AWS request a function binary makes arrives here (its
//! `AWS_ENDPOINT_URL` is the host) signed with its role's session key; the gate works out what
//! the request asks for (action, resources, condition keys — `local_iam::classify`) and
//! evaluates the role's policy, read from the template, with AWS semantics. A denied request is
//! answered as AWS would (403 naming the action and resource) and recorded, so a missing
//! permission fails the drill with the action named. Allowed requests are recorded too: the
//! set of grants a drill exercised.
//!
//! moto's own enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`) is not used: it authorises every
//! non-S3 service against resource `*` and denies any statement with a `Condition`, so the
//! template's least-privilege policy could not pass it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Mutex,
};

use anyhow::{Context, Result};
use serde_json::Value;

use super::names::{ACCOUNT, REGION};
use super::{
    runtime::{Function, RoleCredentials},
    template::FunctionSpec,
};

/// One authorisation decision, as the drill's evidence of least privilege.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Decision {
    /// The function (binary name).
    pub function: String,
    /// IAM action (`s3:GetObject`).
    pub action: String,
    /// Resource ARN (or `*`).
    pub resource: String,
    /// Whether the policy allowed it.
    pub allowed: bool,
}

#[derive(Debug, Clone)]
struct Caller {
    function: String,
    principal: String,
    policy: Value,
}

/// The host's IAM gate (empty until binaries mode installs the functions).
#[derive(Debug, Default)]
pub struct Gate {
    callers: Mutex<HashMap<String, Caller>>,
    secret_arns: Mutex<Vec<String>>,
    tokens: Mutex<HashMap<String, String>>,
    decisions: Mutex<BTreeSet<Decision>>,
}

/// What the gate answers for one request.
pub enum Verdict {
    /// Not a function's request (the harness, the CLI): forwarded untouched.
    Unchecked,
    /// Allowed; `missing_key_is_403` when a 404 for this request must become 403 (S3 without
    /// `s3:ListBucket` on the key).
    Allowed {
        /// Real S3 hides a missing key from a caller that may not list it: the 403 to answer
        /// instead of a 404, and the denial to record when that happens.
        missing_key_is_403: Option<(u16, &'static str, Vec<u8>, Decision)>,
        /// The calling function (binary name).
        function: String,
        /// The IAM action (`s3:PutObject`): what injected AWS faults match on.
        action: String,
        /// The wire protocol: the shape of an injected error.
        protocol: local_iam::Protocol,
    },
    /// Denied: the AWS-shaped answer.
    Denied {
        /// HTTP status.
        status: u16,
        /// Content type.
        content_type: &'static str,
        /// Body.
        body: Vec<u8>,
    },
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Gate {
    /// Registers the functions' session keys and policies, and the stack's secret ARNs (a
    /// function may name a secret by name; IAM authorises its ARN).
    pub fn install(&self, functions: &[Function], secret_arns: Vec<String>) {
        let mut callers = lock(&self.callers);
        for f in functions {
            callers.insert(
                f.credentials.access_key_id.clone(),
                Caller {
                    function: f.spec.binary.clone(),
                    principal: f.credentials.principal.clone(),
                    policy: f.spec.policy.clone(),
                },
            );
        }
        *lock(&self.secret_arns) = secret_arns;
    }

    /// Remembers which state machine a task token belongs to, from an invocation payload that
    /// carries both (`task_token` and an execution ARN): IAM authorises `SendTaskSuccess`
    /// against the state machine.
    pub fn note_invocation(&self, payload: &Value) {
        let mut token = None;
        let mut execution = None;
        scan(payload, &mut token, &mut execution, 0);
        if let (Some(t), Some(e)) = (token, execution) {
            if let Some(machine) = machine_of_execution(&e) {
                lock(&self.tokens).insert(t, machine);
            }
        }
    }

    /// Every decision so far (function, action, resource, allowed).
    pub fn decisions(&self) -> Vec<Decision> {
        lock(&self.decisions).iter().cloned().collect()
    }

    /// The denials so far, one line each (`function: action on resource`).
    pub fn denials(&self) -> Vec<String> {
        lock(&self.decisions)
            .iter()
            .filter(|d| !d.allowed)
            .map(|d| format!("{}: {} on {}", d.function, d.action, d.resource))
            .collect()
    }

    /// Checks one request.
    pub fn check(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Verdict {
        let request = local_iam::Request {
            method,
            path_and_query,
            headers,
            body,
        };
        let Some(key) = local_iam::access_key_id(&request) else {
            return Verdict::Unchecked;
        };
        let Some(caller) = lock(&self.callers).get(key).cloned() else {
            return Verdict::Unchecked;
        };
        // Held only while classifying (no await): nothing is copied per request.
        let secrets = lock(&self.secret_arns);
        let tokens = lock(&self.tokens);
        let secret_arn = |name: &str| {
            secrets
                .iter()
                .find(|arn| {
                    arn.split(":secret:").nth(1).is_some_and(|rest| {
                        rest.strip_prefix(name)
                            .is_some_and(|suffix| suffix.len() == 7 && suffix.starts_with('-'))
                    })
                })
                .cloned()
        };
        let token_machine = |token: &str| tokens.get(token).cloned();
        let env = local_iam::Env {
            region: REGION,
            account: ACCOUNT,
            partition: "aws",
            secret_arn: &secret_arn,
            token_state_machine: &token_machine,
        };
        let (protocol, auth) = match local_iam::classify(&request, &env) {
            Ok(x) => x,
            Err(e) => {
                let auth = local_iam::Authorization {
                    action: format!("unclassified ({e})"),
                    resources: vec!["*".into()],
                    context: BTreeMap::new(),
                };
                self.record(&caller, &auth, "*", false);
                let protocol = local_iam::protocol_of(&request);
                let (status, content_type, body) = local_iam::denial(
                    &protocol,
                    &caller.principal,
                    &auth,
                    "*",
                    &local_iam::Decision::ImplicitDeny,
                );
                return Verdict::Denied {
                    status,
                    content_type,
                    body,
                };
            }
        };
        drop((tokens, secrets));
        let decision = if auth.action == "sts:GetCallerIdentity" {
            local_iam::Decision::Allowed
        } else {
            local_iam::evaluate(&caller.policy, &auth)
        };
        // Dependent action: S3 replication rules name a role, which the caller must be
        // allowed to pass to S3 (`iam:PassRole`, `iam:PassedToService`).
        let (auth, decision) = match (passed_role(&auth, body), &decision) {
            (Some(pass), local_iam::Decision::Allowed) => {
                self.record(&caller, &auth, &auth.resources.join(","), true);
                let d = local_iam::evaluate(&caller.policy, &pass);
                (pass, d)
            }
            _ => (auth, decision),
        };
        let resource = auth.resources.join(",");
        let allowed = matches!(decision, local_iam::Decision::Allowed);
        self.record(&caller, &auth, &resource, allowed);
        if !allowed {
            let (status, content_type, body) =
                local_iam::denial(&protocol, &caller.principal, &auth, &resource, &decision);
            return Verdict::Denied {
                status,
                content_type,
                body,
            };
        }
        let missing_key_is_403 = local_iam::list_bucket_for_missing_key(&auth).and_then(|list| {
            if matches!(
                local_iam::evaluate(&caller.policy, &list),
                local_iam::Decision::Allowed
            ) {
                return None;
            }
            let (status, content_type, body) = local_iam::denial(
                &protocol,
                &caller.principal,
                &auth,
                &resource,
                &local_iam::Decision::ImplicitDeny,
            );
            let decision = Decision {
                function: caller.function.clone(),
                action: format!(
                    "{} of a missing key (403, not 404: no s3:ListBucket on {} for that prefix)",
                    auth.action,
                    list.resources.join(",")
                ),
                resource: resource.clone(),
                allowed: false,
            };
            Some((status, content_type, body, decision))
        });
        Verdict::Allowed {
            missing_key_is_403,
            function: caller.function.clone(),
            action: auth.action.clone(),
            protocol,
        }
    }

    /// Records the denial behind a 403 answered for a missing key.
    pub fn note_hidden_missing_key(&self, decision: Decision) {
        tracing::warn!(function = %decision.function, action = %decision.action, resource = %decision.resource, "IAM denied");
        Self::log_call(&decision);
        lock(&self.decisions).insert(decision);
    }

    /// Appends a new decision to `$LIFEBOAT_IAM_CALLS` when set (one JSON line each): the
    /// calls a whole test run made, for reviewing and narrowing the template's grants.
    fn log_call(decision: &Decision) {
        let Some(path) = std::env::var_os("LIFEBOAT_IAM_CALLS") else {
            return;
        };
        let Ok(line) = serde_json::to_string(decision) else {
            return;
        };
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    fn record(
        &self,
        caller: &Caller,
        auth: &local_iam::Authorization,
        resource: &str,
        allowed: bool,
    ) {
        if !allowed {
            tracing::warn!(function = %caller.function, action = %auth.action, resource, "IAM denied");
        }
        let decision = Decision {
            function: caller.function.clone(),
            action: auth.action.clone(),
            resource: resource.to_string(),
            allowed,
        };
        if lock(&self.decisions).insert(decision.clone()) {
            Self::log_call(&decision);
        }
    }
}

/// An AWS service error in `protocol`'s shape (what the SDK parses into a service error with
/// this code; 5xx, throttling codes and `RequestTimeout` are retried by the SDK).
pub fn aws_error(
    protocol: local_iam::Protocol,
    status: u16,
    code: &str,
    message: &str,
) -> (u16, &'static str, Vec<u8>) {
    use local_iam::Protocol;
    let escape = lifeboat_core::html::escape;
    let (code, message) = (escape(code), escape(message));
    match protocol {
        Protocol::S3 => (
            status,
            "application/xml",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message><RequestId>local</RequestId></Error>").into_bytes(),
        ),
        Protocol::Json | Protocol::Cbor => (
            status,
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message}).to_string().into_bytes(),
        ),
        Protocol::Query => (
            status,
            "text/xml",
            format!("<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>local</RequestId></ErrorResponse>", if status >= 500 { "Receiver" } else { "Sender" }).into_bytes(),
        ),
        Protocol::RestXml => (
            status,
            "text/xml",
            format!("<?xml version=\"1.0\"?><ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>local</RequestId></ErrorResponse>", if status >= 500 { "Receiver" } else { "Sender" }).into_bytes(),
        ),
    }
}

/// The `iam:PassRole` a `PutBucketReplication` needs: the `<Role>` its configuration names,
/// passed to S3.
fn passed_role(auth: &local_iam::Authorization, body: &[u8]) -> Option<local_iam::Authorization> {
    if auth.action != "s3:PutReplicationConfiguration" {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Role>")? + "<Role>".len();
    let end = start + text[start..].find("</Role>")?;
    Some(
        local_iam::Authorization::new("iam:PassRole", vec![text[start..end].trim().to_string()])
            .with("iam:PassedToService", vec!["s3.amazonaws.com".into()]),
    )
}

fn scan(v: &Value, token: &mut Option<String>, execution: &mut Option<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, item) in m {
                match (k.as_str(), item) {
                    ("task_token", Value::String(s)) => *token = Some(s.clone()),
                    (_, Value::String(s)) if s.contains(":execution:") && execution.is_none() => {
                        *execution = Some(s.clone())
                    }
                    _ => scan(item, token, execution, depth + 1),
                }
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|i| scan(i, token, execution, depth + 1)),
        _ => {}
    }
}

/// `arn:aws:states:r:a:execution:MACHINE:NAME` → `arn:aws:states:r:a:stateMachine:MACHINE`.
fn machine_of_execution(arn: &str) -> Option<String> {
    let (head, rest) = arn.split_once(":execution:")?;
    let machine = rest.split(':').next()?;
    Some(format!("{head}:stateMachine:{machine}"))
}

/// Creates the function's role in moto with exactly the template's inline policies, assumes it
/// and returns the session (what Lambda hands the function).
pub async fn function_role(
    admin: &aws_config::SdkConfig,
    spec: &FunctionSpec,
) -> Result<RoleCredentials> {
    let iam = aws_sdk_iam::Client::new(admin);
    let sts = aws_sdk_sts::Client::new(admin);
    let role = format!("lifeboat-{}", spec.binary);
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let created = iam
        .create_role()
        .role_name(&role)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .with_context(|| format!("creating the role {role}"))?;
    let role_arn = created
        .role()
        .map(|r| r.arn().to_string())
        .context("role without ARN")?;
    for (i, document) in spec.policy.as_array().into_iter().flatten().enumerate() {
        iam.put_role_policy()
            .role_name(&role)
            .policy_name(format!("{}Policy{i}", spec.logical_id))
            .policy_document(document.to_string())
            .send()
            .await
            .with_context(|| format!("putting the template's policy {i} on {role}"))?;
    }
    let session = sts
        .assume_role()
        .role_arn(&role_arn)
        .role_session_name(format!("lifeboat-{}", spec.binary))
        .send()
        .await
        .with_context(|| format!("assuming {role}"))?;
    let creds = session.credentials().context("no credentials")?;
    let principal = session
        .assumed_role_user()
        .map(|u| u.arn().to_string())
        .unwrap_or_else(|| role_arn.clone());
    Ok(RoleCredentials {
        access_key_id: creds.access_key_id().to_string(),
        secret_access_key: creds.secret_access_key().to_string(),
        session_token: creds.session_token().to_string(),
        principal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replication_rules_need_the_role_passed_to_s3() {
        let put = local_iam::Authorization::new(
            "s3:PutReplicationConfiguration",
            vec!["arn:aws:s3:::src".into()],
        );
        let body = b"<ReplicationConfiguration><Role>arn:aws:iam::1:role/rep</Role><Rule/></ReplicationConfiguration>";
        let pass = passed_role(&put, body).expect("a role is passed");
        assert_eq!(pass.action, "iam:PassRole");
        assert_eq!(pass.resources, vec!["arn:aws:iam::1:role/rep".to_string()]);
        let granted = serde_json::json!([{"Statement": [{"Effect": "Allow", "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::1:role/rep",
            "Condition": {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}}]}]);
        assert!(matches!(
            local_iam::evaluate(&granted, &pass),
            local_iam::Decision::Allowed
        ));
        let other = serde_json::json!([{"Statement": [{"Effect": "Allow", "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::1:role/other"}]}]);
        assert!(!matches!(
            local_iam::evaluate(&other, &pass),
            local_iam::Decision::Allowed
        ));
        let get = local_iam::Authorization::new("s3:GetReplicationConfiguration", vec![]);
        assert!(passed_role(&get, body).is_none());
        assert!(passed_role(&put, b"<ReplicationConfiguration/>").is_none());
    }

    #[test]
    fn task_tokens_are_tied_to_their_state_machine() {
        let gate = Gate::default();
        gate.note_invocation(&serde_json::json!({
            "stage": "failover",
            "task_token": "tok-1",
            "state": {"run": {"execution": "arn:aws:states:us-west-2:1:execution:lifeboat-failover:run-1"}},
        }));
        assert_eq!(
            lock(&gate.tokens).get("tok-1").map(String::as_str),
            Some("arn:aws:states:us-west-2:1:stateMachine:lifeboat-failover")
        );
        gate.note_invocation(&serde_json::json!({"task_token": "tok-2"}));
        assert!(
            !lock(&gate.tokens).contains_key("tok-2"),
            "no execution, no mapping"
        );
        assert_eq!(
            machine_of_execution("arn:aws:states:r:a:stateMachine:x"),
            None
        );
    }
}
