//! awsJson services: `POST /` with `X-Amz-Target: {Prefix}.{Operation}` and a JSON body
//! (Step Functions `AWSStepFunctions`, SSM `AmazonSSM`, Secrets Manager `secretsmanager`,
//! EventBridge `AWSEvents`). The IAM action is `{service}:{Operation}`; the resources come
//! from the body fields named below. A body that is not JSON, or lacks the field, gives
//! resource `*` (which only a `Resource: "*"` grant allows): fail closed, never a panic.
//! Operations not listed here are [`Unclassified`].

use serde_json::Value;

use crate::request::{header, many, one, star, unclassified, Service};
use crate::{Authorization, Env, Request, Unclassified};

pub(crate) fn classify(
    service: &Service,
    req: &Request,
    env: &Env,
) -> Result<Authorization, Unclassified> {
    let target = header(req, "x-amz-target").unwrap_or("-");
    let (prefix, op) = target.split_once('.').unwrap_or((target, ""));
    if service.target_prefix() != Some(prefix) {
        return Err(unclassified(
            req,
            service.name(),
            target,
            "X-Amz-Target does not belong to the signing service",
        ));
    }
    let body: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
    let auth = match service {
        Service::States => states(op, &body, env),
        Service::Ssm => ssm(op, &body, env),
        Service::SecretsManager => secrets(op, &body, env),
        Service::Events => events(op, &body, env),
        Service::RecoveryCluster => recovery_cluster(op, &body),
        _ => None,
    };
    auth.ok_or_else(|| unclassified(req, service.name(), target, "operation not mapped"))
}

/// Route 53 ARC cluster (`ToggleCustomerAPI`): routing controls by `RoutingControlArn`
/// (`arn:aws:route53-recovery-control::{account}:controlpanel/{id}/routingcontrol/{id}`);
/// `UpdateRoutingControlStates` by each entry's ARN; `ListRoutingControls` has no resource.
fn recovery_cluster(op: &str, body: &Value) -> Option<Authorization> {
    let resources = match op {
        "GetRoutingControlState" | "UpdateRoutingControlState" => {
            one(field(body, "RoutingControlArn").map(str::to_string))
        }
        "UpdateRoutingControlStates" => many(
            body.get("UpdateRoutingControlStateEntries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| field(e, "RoutingControlArn").map(str::to_string))
                .collect(),
        ),
        "ListRoutingControls" => star(),
        _ => return None,
    };
    Some(Authorization::new(
        format!("route53-recovery-cluster:{op}"),
        resources,
    ))
}

fn field<'v>(body: &'v Value, name: &str) -> Option<&'v str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Step Functions: state machine and execution ARNs as given; task tokens through
/// [`Env::token_state_machine`].
fn states(op: &str, body: &Value, env: &Env) -> Option<Authorization> {
    let owned = |name: &str| field(body, name).map(str::to_string);
    let resources = match op {
        "StartExecution"
        | "StartSyncExecution"
        | "DescribeStateMachine"
        | "ListExecutions"
        | "UpdateStateMachine"
        | "DeleteStateMachine"
        | "ListStateMachineVersions" => one(owned("stateMachineArn")),
        "DescribeExecution"
        | "StopExecution"
        | "GetExecutionHistory"
        | "DescribeStateMachineForExecution"
        | "RedriveExecution" => one(owned("executionArn")),
        "SendTaskSuccess" | "SendTaskFailure" | "SendTaskHeartbeat" => {
            one(field(body, "taskToken").and_then(|token| (env.token_state_machine)(token)))
        }
        "CreateStateMachine" => one(field(body, "name").map(|name| {
            let (p, r, a) = (env.partition, env.region, env.account);
            format!("arn:{p}:states:{r}:{a}:stateMachine:{name}")
        })),
        "TagResource" | "UntagResource" | "ListTagsForResource" => one(owned("resourceArn")),
        "ListStateMachines" | "ListActivities" | "ValidateStateMachineDefinition" => star(),
        _ => return None,
    };
    Some(Authorization::new(format!("states:{op}"), resources))
}

/// SSM parameters: `arn:{p}:ssm:{region}:{account}:parameter/{name}` with the name's leading
/// `/` dropped (`/a/b` → `parameter/a/b`, `x` → `parameter/x`); a `:version`/`:label`
/// selector is not part of the resource.
fn ssm(op: &str, body: &Value, env: &Env) -> Option<Authorization> {
    let resources = match op {
        "GetParameter"
        | "PutParameter"
        | "DeleteParameter"
        | "GetParameterHistory"
        | "LabelParameterVersion"
        | "UnlabelParameterVersion" => {
            one(field(body, "Name").map(|name| parameter_arn(name, env)))
        }
        "GetParameters" | "DeleteParameters" => {
            let names = body.get("Names").and_then(Value::as_array);
            many(
                names
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|name| parameter_arn(name, env))
                    .collect(),
            )
        }
        "GetParametersByPath" => one(field(body, "Path").map(|path| parameter_arn(path, env))),
        "DescribeParameters" => star(),
        _ => return None,
    };
    Some(Authorization::new(format!("ssm:{op}"), resources))
}

fn parameter_arn(name: &str, env: &Env) -> String {
    if name.starts_with("arn:") {
        // arn:p:ssm:r:a:parameter/name[:selector]
        let parts: Vec<&str> = name.splitn(6, ':').collect();
        return match parts.as_slice() {
            [head @ .., resource] if head.len() == 5 => {
                let resource = resource.split(':').next().unwrap_or_default();
                format!("{}:{resource}", head.join(":"))
            }
            _ => name.to_string(),
        };
    }
    let bare = name.split(':').next().unwrap_or_default();
    let bare = bare.strip_prefix('/').unwrap_or(bare);
    let (p, r, a) = (env.partition, env.region, env.account);
    format!("arn:{p}:ssm:{r}:{a}:parameter/{bare}")
}

/// Secrets Manager: `SecretId` as given when it is an ARN, else [`Env::secret_arn`], else the
/// ARN built from the name (without the random suffix real secret ARNs end in). Carries the
/// condition key `secretsmanager:SecretId`.
fn secrets(op: &str, body: &Value, env: &Env) -> Option<Authorization> {
    let id_field = match op {
        "GetSecretValue"
        | "DescribeSecret"
        | "PutSecretValue"
        | "UpdateSecret"
        | "DeleteSecret"
        | "RestoreSecret"
        | "RotateSecret"
        | "CancelRotateSecret"
        | "UpdateSecretVersionStage"
        | "ListSecretVersionIds"
        | "GetResourcePolicy"
        | "PutResourcePolicy"
        | "DeleteResourcePolicy"
        | "TagResource"
        | "UntagResource" => "SecretId",
        "CreateSecret" => "Name",
        "ListSecrets" | "GetRandomPassword" | "BatchGetSecretValue" => {
            return Some(Authorization::new(format!("secretsmanager:{op}"), star()))
        }
        _ => return None,
    };
    let id = field(body, id_field);
    let resource = id.map(|id| secret_resource(id, env));
    let mut auth = Authorization::new(format!("secretsmanager:{op}"), one(resource));
    if let (Some(id), "SecretId") = (id, id_field) {
        auth = auth.with("secretsmanager:SecretId", vec![id.to_string()]);
    }
    Some(auth)
}

/// EventBridge: event buses `arn:{p}:events:{region}:{account}:event-bus/{name}` (absent:
/// `default`; an ARN stays), rules `rule/{name}` on the default bus, `rule/{bus}/{name}` on
/// another. `PutEvents` carries `events:source` and `events:detail-type` (all entries' values).
fn secret_resource(id: &str, env: &Env) -> String {
    if id.starts_with("arn:") {
        return id.to_string();
    }
    (env.secret_arn)(id).unwrap_or_else(|| {
        let (p, r, a) = (env.partition, env.region, env.account);
        format!("arn:{p}:secretsmanager:{r}:{a}:secret:{id}")
    })
}

fn events(op: &str, body: &Value, env: &Env) -> Option<Authorization> {
    let bus = field(body, "EventBusName");
    let resources = match op {
        "PutEvents" => return Some(put_events(body, env)),
        "PutRule" | "DescribeRule" | "DeleteRule" | "EnableRule" | "DisableRule" => {
            one(field(body, "Name").map(|name| rule_arn(name, bus, env)))
        }
        "PutTargets" | "RemoveTargets" | "ListTargetsByRule" => {
            one(field(body, "Rule").map(|name| rule_arn(name, bus, env)))
        }
        "DescribeEventBus" => vec![bus_arn(field(body, "Name"), env)],
        "ListRules" | "ListEventBuses" | "ListRuleNamesByTarget" => star(),
        _ => return None,
    };
    Some(Authorization::new(format!("events:{op}"), resources))
}

fn put_events(body: &Value, env: &Env) -> Authorization {
    let entries = body.get("Entries").and_then(Value::as_array);
    let entries: Vec<&Value> = entries.into_iter().flatten().collect();
    let mut buses: Vec<String> = Vec::new();
    let mut sources: Vec<String> = Vec::new();
    let mut detail_types: Vec<String> = Vec::new();
    for entry in entries {
        push_unique(&mut buses, bus_arn(field(entry, "EventBusName"), env));
        if let Some(source) = field(entry, "Source") {
            push_unique(&mut sources, source.to_string());
        }
        if let Some(detail_type) = field(entry, "DetailType") {
            push_unique(&mut detail_types, detail_type.to_string());
        }
    }
    let mut auth = Authorization::new("events:PutEvents", many(buses));
    if !sources.is_empty() {
        auth = auth.with("events:source", sources);
    }
    if !detail_types.is_empty() {
        auth = auth.with("events:detail-type", detail_types);
    }
    auth
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

fn bus_arn(name: Option<&str>, env: &Env) -> String {
    match name {
        Some(arn) if arn.starts_with("arn:") => arn.to_string(),
        other => {
            let name = other.unwrap_or("default");
            let (p, r, a) = (env.partition, env.region, env.account);
            format!("arn:{p}:events:{r}:{a}:event-bus/{name}")
        }
    }
}

fn rule_arn(name: &str, bus: Option<&str>, env: &Env) -> String {
    let bus = bus.map(|b| b.rsplit_once("event-bus/").map_or(b, |(_, name)| name));
    let (p, r, a) = (env.partition, env.region, env.account);
    match bus {
        None | Some("default") => format!("arn:{p}:events:{r}:{a}:rule/{name}"),
        Some(bus) => format!("arn:{p}:events:{r}:{a}:rule/{bus}/{name}"),
    }
}
