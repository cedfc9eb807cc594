//! The statically stable client switch: Route 53 failover records whose PRIMARY is guarded by a
//! health check on a Route 53 ARC routing control. Moving clients is then one
//! `UpdateRoutingControlState` on the ARC cluster's data plane — five regional endpoints, any
//! one of which answers — instead of a `ChangeResourceRecordSets`, whose control plane lives in
//! us-east-1 (the region most often failed away from). The cluster, the routing control, the
//! health check and the records are created ahead of time (the template's `SwitchMode =
//! routing_control` resources, or the local stack); a run only flips.
//!
//! Wire facts relied on: a `RECOVERY_CONTROL` health check is healthy while its routing control
//! is `On`; Route 53 answers the PRIMARY record while its health check is healthy and the
//! SECONDARY otherwise. ARC's guidance is to try the cluster's endpoints in turn until one
//! answers: `EndpointTemporarilyUnavailableException`, throttling, 5xx and network errors move
//! to the next; `ResourceNotFound`, `AccessDenied`, `Validation` and `Conflict` do not (they would
//! answer the same everywhere).

use aws_sdk_route53recoverycluster::{
    config::http::HttpResponse,
    error::{DisplayErrorContext, SdkError},
    types::RoutingControlState,
};
use serde::{Deserialize, Serialize};

use crate::{aws::AwsClients, plan::RoutingControlPlan};

/// Which site a record sends clients to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Serving {
    /// The PRIMARY record (routing control `On`).
    Primary,
    /// The SECONDARY record (routing control `Off`).
    Dr,
}

impl Serving {
    /// The routing control state that makes Route 53 answer this site.
    pub fn control_state(self) -> RoutingControlState {
        match self {
            Serving::Primary => RoutingControlState::On,
            Serving::Dr => RoutingControlState::Off,
        }
    }

    /// Pure: the site a routing control state sends clients to.
    pub fn of_control(state: &RoutingControlState) -> Option<Serving> {
        match state {
            RoutingControlState::On => Some(Serving::Primary),
            RoutingControlState::Off => Some(Serving::Dr),
            _ => None,
        }
    }
}

/// Why the switch could not be read or flipped.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// Every endpoint failed with an error another endpoint might not have.
    #[error("no ARC cluster endpoint answered: {0}")]
    NoEndpoint(String),
    /// An answer that every endpoint would give (the control is missing, access is denied).
    #[error("ARC refused ({endpoint}): {message}")]
    Refused {
        /// The endpoint that answered.
        endpoint: String,
        /// Its message.
        message: String,
    },
    /// The state read back is not the one set.
    #[error("routing control is {state} after the update, not {wanted}")]
    NotFlipped {
        /// State read.
        state: String,
        /// State wanted.
        wanted: String,
    },
}

/// Pure: whether an error is the endpoint's (try the next) rather than the request's.
pub fn try_next_endpoint(code: Option<&str>, status: Option<u16>) -> bool {
    match code {
        Some(
            "ResourceNotFoundException"
            | "AccessDeniedException"
            | "ValidationException"
            | "ConflictException",
        ) => false,
        Some("EndpointTemporarilyUnavailableException" | "ThrottlingException") => true,
        _ => status.is_none_or(|s| s == 429 || s >= 500),
    }
}

/// An endpoint's failure: `Ok(message)` when the next endpoint may answer, the refusal when
/// every endpoint would give the same answer.
fn endpoint_failure<E>(endpoint: &str, e: &SdkError<E, HttpResponse>) -> Result<String, SwitchError>
where
    E: aws_sdk_route53recoverycluster::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e.as_service_error().and_then(|s| s.code());
    let message = format!("{endpoint}: {}", DisplayErrorContext(e));
    if try_next_endpoint(code, status) {
        Ok(message)
    } else {
        Err(SwitchError::Refused {
            endpoint: endpoint.to_string(),
            message,
        })
    }
}

/// The state of `control_arn`, from the first endpoint that answers (two rounds).
pub async fn serving(
    aws: &AwsClients,
    plan: &RoutingControlPlan,
    control_arn: &str,
) -> Result<Option<Serving>, SwitchError> {
    serving_in_rounds(aws, plan, control_arn, 2).await
}

async fn serving_in_rounds(
    aws: &AwsClients,
    plan: &RoutingControlPlan,
    control_arn: &str,
    rounds: usize,
) -> Result<Option<Serving>, SwitchError> {
    let mut failures = Vec::new();
    let endpoints = std::iter::repeat_n(&plan.cluster_endpoints, rounds).flatten();
    for e in endpoints {
        let client = aws.recovery_cluster(&e.url, &e.region);
        match client
            .get_routing_control_state()
            .routing_control_arn(control_arn)
            .send()
            .await
        {
            Ok(out) => return Ok(Serving::of_control(out.routing_control_state())),
            Err(err) => failures.push(endpoint_failure(&e.url, &err)?),
        }
    }
    Err(SwitchError::NoEndpoint(failures.join("; ")))
}

/// What a flip did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flipped {
    /// Serving before (`None`: not readable).
    pub before: Option<Serving>,
    /// Serving now.
    pub now: Serving,
    /// The endpoint that took the update.
    pub endpoint: String,
    /// Endpoints that did not answer first.
    pub skipped: Vec<String>,
}

/// Sends clients of `control_arn`'s record to `to`: `UpdateRoutingControlState` on the first
/// endpoint that answers, then the state read back. Idempotent: a control already in that
/// state is not written (`endpoint` is then empty).
pub async fn flip(
    aws: &AwsClients,
    plan: &RoutingControlPlan,
    control_arn: &str,
    to: Serving,
    budget: std::time::Instant,
) -> Result<Flipped, SwitchError> {
    // One round to learn the state: an unanswered read is not worth the step's time.
    let before = serving_in_rounds(aws, plan, control_arn, 1)
        .await
        .ok()
        .flatten();
    if before == Some(to) {
        // Already so (a retry, or an abort where nothing had moved): no write to send.
        return Ok(Flipped {
            before,
            now: to,
            endpoint: String::new(),
            skipped: Vec::new(),
        });
    }
    let mut skipped = Vec::new();
    // Two rounds over the endpoints: a blip on each is not an outage of all.
    let rounds = plan.cluster_endpoints.iter().chain(&plan.cluster_endpoints);
    for e in rounds {
        if std::time::Instant::now() >= budget {
            // Fail inside the step's time, so the state machine's Retry (not a timeout) runs.
            skipped.push("the step's time ran out".into());
            break;
        }
        let client = aws.recovery_cluster(&e.url, &e.region);
        match client
            .update_routing_control_state()
            .routing_control_arn(control_arn)
            .routing_control_state(to.control_state())
            .send()
            .await
        {
            Ok(_) => {
                let now = client
                    .get_routing_control_state()
                    .routing_control_arn(control_arn)
                    .send()
                    .await
                    .map_err(|err| match endpoint_failure(&e.url, &err) {
                        Ok(message) => SwitchError::NoEndpoint(message),
                        Err(refused) => refused,
                    })?;
                let state = now.routing_control_state();
                if Serving::of_control(state) != Some(to) {
                    return Err(SwitchError::NotFlipped {
                        state: state.as_str().to_string(),
                        wanted: to.control_state().as_str().to_string(),
                    });
                }
                return Ok(Flipped {
                    before,
                    now: to,
                    endpoint: e.url.clone(),
                    skipped,
                });
            }
            Err(err) => skipped.push(endpoint_failure(&e.url, &err)?),
        }
    }
    Err(SwitchError::NoEndpoint(skipped.join("; ")))
}

/// Set-up, not a run (control-plane calls): the `RECOVERY_CONTROL` health check that follows
/// `control_arn`. Returns its id.
pub async fn create_health_check(
    route53: &aws_sdk_route53::Client,
    control_arn: &str,
) -> Result<String, String> {
    use aws_sdk_route53::types::{HealthCheckConfig, HealthCheckType};
    let reference: String = control_arn
        .rsplit('/')
        .next()
        .unwrap_or("lifeboat")
        .chars()
        .take(64)
        .collect();
    let out = route53
        .create_health_check()
        .caller_reference(reference)
        .health_check_config(
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::RecoveryControl)
                .routing_control_arn(control_arn)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map_err(|e| aws_sdk_route53::error::DisplayErrorContext(&e).to_string())?;
    out.health_check()
        .map(|h| h.id().to_string())
        .ok_or_else(|| "CreateHealthCheck answered no id".to_string())
}

/// Set-up, not a run: replaces a plain CNAME `record` by the failover pair in one atomic
/// change — PRIMARY (`primary_target`, guarded by `health_check_id`) and SECONDARY
/// (`dr_target`). Turn the routing control `On` first: a new control is `Off`, and the pair
/// would send clients to the DR site at once.
pub async fn install_failover_records(
    route53: &aws_sdk_route53::Client,
    hosted_zone_id: &str,
    record: &str,
    targets: (&str, &str),
    health_check_id: &str,
    ttl: i64,
) -> Result<(), String> {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet,
        ResourceRecordSetFailover, RrType,
    };
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let fqdn = format!("{}.", record.trim_end_matches('.'));
    let existing = route53
        .list_resource_record_sets()
        .hosted_zone_id(hosted_zone_id)
        .start_record_name(&fqdn)
        .start_record_type(RrType::Cname)
        .send()
        .await
        .map_err(|e| aws_sdk_route53::error::DisplayErrorContext(&e).to_string())?;
    let mut changes = Vec::new();
    for r in existing.resource_record_sets() {
        if r.name() == fqdn && r.r#type() == &RrType::Cname && r.failover().is_none() {
            changes.push(
                Change::builder()
                    .action(ChangeAction::Delete)
                    .resource_record_set(r.clone())
                    .build()
                    .map_err(|e| err(&e))?,
            );
        }
    }
    for (id, failover, target, check) in [
        (
            "primary",
            ResourceRecordSetFailover::Primary,
            targets.0,
            Some(health_check_id.to_string()),
        ),
        ("dr", ResourceRecordSetFailover::Secondary, targets.1, None),
    ] {
        let set = ResourceRecordSet::builder()
            .name(&fqdn)
            .r#type(RrType::Cname)
            .set_identifier(id)
            .failover(failover)
            .ttl(ttl)
            .set_health_check_id(check)
            .resource_records(
                ResourceRecord::builder()
                    .value(target)
                    .build()
                    .map_err(|e| err(&e))?,
            )
            .build()
            .map_err(|e| err(&e))?;
        changes.push(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(set)
                .build()
                .map_err(|e| err(&e))?,
        );
    }
    route53
        .change_resource_record_sets()
        .hosted_zone_id(hosted_zone_id)
        .change_batch(
            ChangeBatch::builder()
                .comment("lifeboat: failover records of the statically stable switch")
                .set_changes(Some(changes))
                .build()
                .map_err(|e| err(&e))?,
        )
        .send()
        .await
        .map_err(|e| aws_sdk_route53::error::DisplayErrorContext(&e).to_string())?;
    Ok(())
}

/// One SSM parameter's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterChange {
    /// Name.
    pub name: String,
    /// What it holds (`workspace_url`, `jdbc_url of Shared BI`, ...).
    #[serde(default)]
    pub describes: String,
    /// Its kind (absent in records written before client settings had kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<crate::plan::ClientSettingKind>,
    /// The warehouse it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warehouse: Option<String>,
    /// Value before.
    pub previous: Option<String>,
    /// Value now.
    pub current: String,
}

/// Output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsSwitchOutput {
    /// The alias.
    pub record_name: String,
    /// CNAME target before.
    pub previous: Option<String>,
    /// CNAME target now.
    pub current: String,
    /// Route 53 change status reached (`INSYNC`).
    pub change_status: String,
    /// SSM parameters rewritten.
    pub parameters: Vec<ParameterChange>,
    /// An abort's restore (clients pointed back at the source), not a switch.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_retry_classes() {
        let states = [
            (RoutingControlState::On, Some(Serving::Primary)),
            (RoutingControlState::Off, Some(Serving::Dr)),
        ];
        for (state, want) in states {
            assert_eq!(Serving::of_control(&state), want, "{state:?}");
            if let Some(s) = want {
                assert_eq!(s.control_state(), state);
            }
        }
        let rows: [(Option<&str>, Option<u16>, bool); 9] = [
            (
                Some("EndpointTemporarilyUnavailableException"),
                Some(503),
                true,
            ),
            (Some("ThrottlingException"), Some(429), true),
            (Some("InternalServerException"), Some(500), true),
            (None, None, true), // connection refused, timeout
            (Some("ResourceNotFoundException"), Some(404), false),
            (Some("AccessDeniedException"), Some(403), false),
            (Some("ValidationException"), Some(400), false),
            (Some("ConflictException"), Some(409), false),
            (Some("SomethingElse"), Some(400), false),
        ];
        for (code, status, want) in rows {
            assert_eq!(try_next_endpoint(code, status), want, "{code:?} {status:?}");
        }
    }
}
