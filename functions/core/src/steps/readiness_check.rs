//! `readiness-check` (EventBridge Scheduler, every 30 minutes by default): the continuous
//! readiness evaluation ([`crate::readiness`]). Reads only — both sites' credentials and what
//! the target has of what the plan starts, the stored configuration snapshots, RPO, the
//! detection paths' last records, the forwarder rule, the lock — and records the evaluation in
//! the ledger (latest and history) with a metric an alarm watches.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Deserialize;
use tracing::{info, instrument};

use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    databricks::{ApiError, ErrorKind, WorkspaceClient},
    drift::{sites, snapshot::ConfigSnapshot},
    plan::{Direction, Plan, SiteRole},
    readiness::{self, Check, CredentialProbe, Evaluation, Finding, ForwarderState},
    run::{ActiveSite, RunContext, RunId, RunKind, Trigger, TriggerSource},
};

/// The forwarder rule's name unless the deployment says otherwise (`FORWARDER_RULE_NAME`; the
/// name `infra/forwarder.yaml` gives it).
pub const DEFAULT_FORWARDER_RULE: &str = "lifeboat-forward-health-events";

/// A detection path's record older than this (the evaluation's own interval) means it stopped.
const STALE_SECONDS: i64 = 1800;

/// A lock held longer than this is not a run in progress but a stale lock.
const STALE_LOCK_SECONDS: i64 = 6 * 3600;

fn probe_of(r: Result<(), ApiError>) -> CredentialProbe {
    match r {
        Ok(()) => CredentialProbe::Answered,
        Err(e)
            if matches!(
                e.kind,
                ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
            ) =>
        {
            CredentialProbe::Refused(e.to_string())
        }
        Err(e) => CredentialProbe::Unreachable(e.to_string()),
    }
}

async fn credentials(
    deps: &Deps,
    plan: &Plan,
    role: SiteRole,
) -> (CredentialProbe, Option<WorkspaceClient>) {
    match deps.workspaces.client(plan.site(role)).await {
        Ok(c) => {
            let c = c.with_deadline(Instant::now() + Duration::from_secs(10));
            (probe_of(c.me().await.map(|_| ())), Some(c))
        }
        Err(e) => (CredentialProbe::Refused(e.to_string()), None),
    }
}

async fn capacity(client: &WorkspaceClient) -> Result<readiness::TargetCapacity, ApiError> {
    let filter = crate::databricks::clusters::ClusterFilter {
        sources: vec![
            crate::databricks::clusters::ClusterSource::Ui,
            crate::databricks::clusters::ClusterSource::Api,
        ],
        ..Default::default()
    };
    let (pools, warehouses, clusters) = futures::try_join!(
        client.list_pools(),
        client.all_warehouses(),
        client.all_clusters(filter)
    )?;
    Ok(readiness::TargetCapacity {
        pools: pools
            .into_iter()
            .map(|p| (p.instance_pool_name, p.max_capacity))
            .collect(),
        warehouses: warehouses
            .into_iter()
            .map(|w| {
                let max = w
                    .extra
                    .get("max_num_clusters")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|m| u32::try_from(m).ok());
                (w.name, max)
            })
            .collect(),
        clusters: clusters.into_iter().map(|c| c.cluster_name).collect(),
    })
}

async fn forwarder(deps: &Deps, rule: &str, region: &str, dr_region: &str) -> ForwarderState {
    let events = deps.aws.events_in(region);
    match events.describe_rule().name(rule).send().await {
        Ok(r) => {
            let enabled = r.state().is_some_and(|s| s.as_str() == "ENABLED");
            let targets = match events.list_targets_by_rule().rule(rule).send().await {
                Ok(t) => t.targets().to_vec(),
                Err(e) => return ForwarderState::Unknown(crate::aws::sdk_error_message(&e)),
            };
            let bus = format!(":events:{dr_region}:");
            let targets_dr_bus = targets
                .iter()
                .any(|t| t.arn().contains(&bus) && t.arn().ends_with(":event-bus/default"));
            ForwarderState::Present {
                enabled,
                targets_dr_bus,
            }
        }
        Err(e) => {
            let message = crate::aws::sdk_error_message(&e);
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception())
            {
                ForwarderState::Missing
            } else {
                ForwarderState::Unknown(message)
            }
        }
    }
}

#[derive(Deserialize)]
struct LockView {
    run_id: String,
    #[serde(default)]
    acquired_at: Option<chrono::DateTime<Utc>>,
}

/// The fence watch of the run that made the current site active, and what Step Functions says
/// of its current execution.
async fn fence_watch(deps: &Deps, run_id: Option<&str>) -> Result<Finding, StepError> {
    let Some(run_id) = run_id else {
        return Ok(readiness::fence_watch_finding(None, None, None));
    };
    let watch = deps
        .ledger
        .get::<crate::fence::watch::FenceWatchRecord>(&keys::fence_watch(&RunId(
            run_id.to_string(),
        )))
        .await?
        .map(|w| w.value);
    let unconfirmed = watch
        .as_ref()
        .filter(|w| w.confirmed_at.is_none() && w.stopped.is_none());
    let status = match unconfirmed.and_then(|w| w.execution_arn.as_deref()) {
        Some(arn) => match deps
            .aws
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
        {
            Ok(d) => Some(d.status().as_str().to_string()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                None
            }
            // Not readable now (throttled, denied): judged again at the next evaluation.
            Err(e) => Some(format!("UNKNOWN ({})", crate::aws::sdk_error_message(&e))),
        },
        None => None,
    };
    Ok(readiness::fence_watch_finding(
        Some(run_id),
        watch.as_ref(),
        status.as_deref(),
    ))
}

/// Evaluates readiness now and records it.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps) -> Result<Evaluation, StepError> {
    let plan = crate::kernel::load_plan(deps).await?;
    let now = Utc::now();
    let active_site = deps
        .ledger
        .get::<ActiveSite>(&keys::active_site(&plan.name))
        .await?
        .map(|a| a.value);
    let active = active_site.as_ref().map(|a| a.active);
    // While production runs at DR the move to be ready for is the failback.
    let direction = if active == Some(SiteRole::Dr) {
        Direction::Failback
    } else {
        Direction::Failover
    };
    let (source_role, target_role) = direction.roles();
    let run = RunContext {
        run_id: RunId::generate(RunKind::Readiness, now),
        kind: RunKind::Readiness,
        direction,
        plan: plan.clone(),
        trigger: Trigger {
            source: TriggerSource::Schedule,
            summary: "readiness evaluation".into(),
            declared_at: now,
            event_arn: None,
            incident_started_at: None,
        },
        override_reason: None,
        poll_seconds: plan.startup.poll_seconds,
        restore_from: None,
        accept_drift: None,
    };
    let rule = std::env::var("FORWARDER_RULE_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_FORWARDER_RULE.to_string());
    let primary_region = plan.sites.primary.region.clone();
    let dr_region = plan.sites.dr.region.clone();
    let ((target_probe, target_client), (source_probe, _), rpo, forwarder_state) = futures::join!(
        credentials(deps, &plan, target_role),
        credentials(deps, &plan, source_role),
        crate::replication::measure(deps, &run),
        forwarder(deps, &rule, &primary_region, &dr_region)
    );
    let target_name = format!("the target ({target_role:?})");
    let source_name = format!("the source ({source_role:?})");
    let mut findings = vec![
        readiness::credentials_finding(Check::TargetCredentials, &target_name, &target_probe),
        readiness::credentials_finding(Check::SourceCredentials, &source_name, &source_probe),
    ];

    // Drift between the stored snapshots (the snapshot schedule keeps them recent).
    let snapshot = |role| {
        let key = keys::snapshot(&plan.name, role);
        async move { deps.ledger.get::<ConfigSnapshot>(&key).await }
    };
    let (source_snap, target_snap) =
        futures::try_join!(snapshot(source_role), snapshot(target_role))?;
    let age = |s: &Option<crate::ledger::Versioned<ConfigSnapshot>>| {
        s.as_ref()
            .and_then(|s| s.value.taken_at)
            .map(|t| (now - t).num_seconds().max(0))
    };
    // While production runs at DR the primary's snapshot is kept from before its fence on
    // purpose (it is what the failback restores): only DR's must be recent then.
    let ages: Vec<(String, Option<i64>)> = [
        (source_role, age(&source_snap)),
        (target_role, age(&target_snap)),
    ]
    .into_iter()
    .filter(|(role, _)| !(direction == Direction::Failback && *role == SiteRole::Primary))
    .map(|(role, a)| (format!("{role:?}"), a))
    .collect();
    let compared = source_snap.is_some() && target_snap.is_some();
    findings.push(match (&source_snap, &target_snap) {
        (Some(s), Some(t)) => {
            let (items, plan_blocking) = sites::compare(&plan, direction, Some(&s.value), &t.value);
            let mut not_compared: Vec<String> = [(source_role, &s.value), (target_role, &t.value)]
                .iter()
                .flat_map(|(role, snap)| {
                    snap.not_compared
                        .iter()
                        .map(move |(k, e)| format!("{} at {role:?}: {e}", k.name()))
                })
                .collect();
            if [&s.value, &t.value]
                .iter()
                .any(|snap| snap.objects.is_empty() && !snap.jobs.is_empty())
            {
                not_compared.push("a snapshot predates the per-object comparison".into());
            }
            readiness::drift_finding(&items, &plan_blocking, &not_compared)
        }
        _ => Finding {
            check: Check::Drift,
            status: readiness::Status::ActionRequired,
            detail: "no configuration snapshot of both sites to compare (is the snapshot schedule running?)".into(),
        },
    });
    let ages_ref: Vec<(&str, Option<i64>)> = ages.iter().map(|(s, a)| (s.as_str(), *a)).collect();
    findings.push(readiness::snapshots_finding(
        &ages_ref,
        plan.monitoring.snapshot_minutes,
        compared,
    ));

    match &rpo {
        Ok(out) => {
            findings.push(readiness::rpo_finding(out));
            findings.push(readiness::canary_finding(out));
        }
        Err(e) => {
            for check in [Check::Rpo, Check::Canary] {
                findings.push(Finding {
                    check,
                    status: readiness::Status::ActionRequired,
                    detail: format!("could not be measured: {e}"),
                });
            }
        }
    }

    findings.push(match &target_client {
        Some(c) => match capacity(c).await {
            Ok(t) => readiness::capacity_finding(&plan, &t),
            Err(e) => Finding {
                check: Check::Capacity,
                status: readiness::Status::ActionRequired,
                detail: format!(
                    "the target's pools, warehouses and clusters could not be listed: {e}"
                ),
            },
        },
        None => Finding {
            check: Check::Capacity,
            status: readiness::Status::ActionRequired,
            detail: "no client for the target".into(),
        },
    });

    let probe = deps
        .ledger
        .get::<readiness::ProbeRecord>(&keys::probe(&plan.name))
        .await?
        .map(|v| v.value);
    findings.push(readiness::status_page_finding(
        plan.monitoring.status_url().is_some(),
        probe.as_ref(),
        now,
        STALE_SECONDS,
    ));
    let poll = deps
        .ledger
        .get::<readiness::HealthPollRecord>(&keys::health_poll(&plan.name))
        .await?
        .map(|v| v.value);
    findings.push(readiness::health_poll_finding(
        std::env::var("HEALTH_API_POLL").as_deref() == Ok("true"),
        poll.as_ref(),
        now,
        STALE_SECONDS,
    ));
    findings.push(readiness::forwarder_finding(
        &rule,
        &primary_region,
        &forwarder_state,
    ));
    let lock = deps
        .ledger
        .get::<LockView>(&keys::lock(&plan.name))
        .await?
        .map(|l| l.value);
    findings.push(readiness::lock_finding(
        lock.as_ref().map(|l| (l.run_id.as_str(), l.acquired_at)),
        now,
        STALE_LOCK_SECONDS,
    ));
    findings.push(fence_watch(deps, active_site.as_ref().map(|a| a.run_id.as_str())).await?);

    let evaluation = Evaluation {
        plan: plan.name.clone(),
        evaluated_at: now,
        direction,
        outcome: readiness::outcome(&findings),
        findings,
    };
    deps.ledger
        .put(&keys::readiness_history(&plan.name, now), &evaluation)
        .await?;
    deps.ledger
        .put(&keys::readiness_latest(&plan.name), &evaluation)
        .await?;
    // The recent list: damaged or from another version, it starts again (the history holds
    // every evaluation anyway).
    let recent = match deps
        .ledger
        .get::<Vec<readiness::Recent>>(&keys::readiness_recent(&plan.name))
        .await
    {
        Ok(r) => r.map(|r| r.value).unwrap_or_default(),
        Err(crate::ledger::LedgerError::Corrupt { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    deps.ledger
        .put(
            &keys::readiness_recent(&plan.name),
            &readiness::append_recent(recent, &evaluation),
        )
        .await?;
    let required = evaluation.action_required().count();
    crate::metrics::emit(
        readiness::METRIC,
        if required > 0 { 1.0 } else { 0.0 },
        &plan.name,
    );
    info!(outcome = ?evaluation.outcome, action_required = required, "readiness evaluated");
    Ok(evaluation)
}
