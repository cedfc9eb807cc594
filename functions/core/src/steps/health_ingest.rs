//! `health-ingest`: AWS Health events from EventBridge → a failover execution waiting for
//! approval, or nothing. Qualifies: `source` `aws.health`, category `issue`, status `open`,
//! about the primary region (`eventRegion`, not the envelope's `region`), for a service the
//! plan watches. Deduplicated on eventArn + communicationId (public events arrive twice, via a
//! backup region); the execution name derives from the eventArn, so updates of the same
//! incident never start a second run.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, instrument};

use super::{Deps, StepError};
use crate::{
    ledger::Written,
    plan::{Direction, Plan},
    run::{RunContext, RunId, RunKind, Trigger, TriggerSource},
};

/// The EventBridge envelope (fields used).
#[derive(Debug, Clone, Deserialize)]
pub struct HealthEvent {
    /// Must be `aws.health`.
    pub source: String,
    /// `AWS Health Event`.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// The region of the bus that delivered it.
    #[serde(default)]
    pub region: String,
    /// The event.
    pub detail: HealthDetail,
}

/// `detail` of an AWS Health event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetail {
    pub event_arn: String,
    pub service: String,
    pub event_type_code: String,
    pub event_type_category: String,
    #[serde(default)]
    pub status_code: String,
    #[serde(default)]
    pub communication_id: String,
    #[serde(default)]
    pub event_region: Option<String>,
    #[serde(default)]
    pub event_description: Vec<EventDescription>,
}

/// One description.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDescription {
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub latest_description: String,
}

/// What ingest did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum IngestOutput {
    /// A failover execution was started (it waits for approval).
    Started {
        /// Execution ARN.
        execution_arn: String,
        /// Run id.
        run_id: String,
    },
    /// This exact event (arn + communication) was seen before.
    Duplicate,
    /// An execution for this incident exists already.
    AlreadyStarted {
        /// Run id.
        run_id: String,
    },
    /// Not a reason to fail over.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// Pure: does the event qualify under the plan?
pub fn classify(event: &HealthEvent, plan: &Plan) -> Result<(), String> {
    if event.source != "aws.health" {
        return Err(format!("source is {}, not aws.health", event.source));
    }
    let d = &event.detail;
    if d.event_type_category != "issue" {
        return Err(format!(
            "category {} is not an issue",
            d.event_type_category
        ));
    }
    if d.status_code != "open" {
        return Err(format!("status is {}, not open", d.status_code));
    }
    let region = d.event_region.as_deref().unwrap_or(&event.region);
    if region != plan.sites.primary.region {
        return Err(format!(
            "event is about {region}, the primary is {}",
            plan.sites.primary.region
        ));
    }
    if !plan
        .monitoring
        .services
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&d.service))
    {
        return Err(format!("service {} is not watched by the plan", d.service));
    }
    Ok(())
}

/// The execution name of an incident: stable across updates and redeliveries.
pub fn run_id_for(event_arn: &str) -> RunId {
    RunId(format!(
        "health-{}",
        &hex::encode(Sha256::digest(event_arn.as_bytes()))[..32]
    ))
}

/// Scheduled drills (EventBridge Scheduler): `{"lifeboat_drill": "readiness" | "full"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduledDrill {
    /// The weekly non-disruptive drill.
    Readiness,
    /// The quarterly failover-then-failback drill.
    Full,
}

async fn load_plan(deps: &Deps) -> Result<Plan, StepError> {
    let text = deps
        .ledger
        .get_raw(&deps.config.plan_key)
        .await?
        .ok_or_else(|| {
            StepError::Refused(format!(
                "no plan at s3://{}/{}",
                deps.ledger.bucket(),
                deps.config.plan_key
            ))
        })?;
    let text = String::from_utf8(text)
        .map_err(|e| StepError::InvalidInput(format!("plan is not UTF-8: {e}")))?;
    Plan::from_toml(&text, &deps.config.plan_key)
        .map_err(|e| StepError::InvalidInput(e.to_string()))
}

/// Builds a run context for a trigger.
pub fn run_context(
    plan: &Plan,
    kind: RunKind,
    direction: Direction,
    trigger: Trigger,
    restore_from: Option<RunId>,
) -> RunContext {
    RunContext {
        run_id: RunId::generate(kind, trigger.declared_at),
        kind,
        direction,
        plan: plan.clone(),
        trigger,
        override_reason: None,
        poll_seconds: plan.startup.poll_seconds,
        restore_from,
    }
}

/// Starts a drill execution for a plan (scheduled through `health-ingest`, or by an operator
/// with `lifeboat drill --aws`).
pub async fn start_drill(
    sfn: &aws_sdk_sfn::Client,
    config: &super::DeployConfig,
    plan: &Plan,
    drill: ScheduledDrill,
    source: TriggerSource,
) -> Result<IngestOutput, StepError> {
    let trigger = |what: &str| Trigger {
        source: source.clone(),
        summary: format!("{what} drill ({source:?})"),
        declared_at: Utc::now(),
        event_arn: None,
    };
    let (arn, run_id, input) = match drill {
        ScheduledDrill::Readiness => {
            let run = run_context(
                plan,
                RunKind::Readiness,
                Direction::Failover,
                trigger("readiness"),
                None,
            );
            let arn = config.readiness_state_machine_arn.clone();
            (arn, run.run_id.clone(), serde_json::json!({ "run": run }))
        }
        ScheduledDrill::Full => {
            let failover = run_context(
                plan,
                RunKind::Drill,
                Direction::Failover,
                trigger("full"),
                None,
            );
            let mut failback = run_context(
                plan,
                RunKind::Drill,
                Direction::Failback,
                trigger("full"),
                Some(failover.run_id.clone()),
            );
            failback.run_id = RunId(format!("{}-back", failover.run_id));
            let arn = config.full_drill_state_machine_arn.clone();
            (
                arn,
                failover.run_id.clone(),
                serde_json::json!({"failover": {"run": failover}, "failback": {"run": failback}}),
            )
        }
    };
    let arn = arn.ok_or_else(|| {
        StepError::InvalidInput(format!(
            "no state machine configured for the {drill:?} drill"
        ))
    })?;
    let out = sfn
        .start_execution()
        .state_machine_arn(arn)
        .name(&run_id.0)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| StepError::aws("states", &e))?;
    Ok(IngestOutput::Started {
        execution_arn: out.execution_arn().to_string(),
        run_id: run_id.0,
    })
}

/// Parses, classifies, deduplicates and starts; or starts a scheduled drill.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps, event: serde_json::Value) -> Result<IngestOutput, StepError> {
    if event.get("lifeboat_probe").is_some() {
        let plan = load_plan(deps).await?;
        return super::health_probe::handle(deps, plan).await;
    }
    if let Some(drill) = event.get("lifeboat_drill") {
        let drill: ScheduledDrill = serde_json::from_value(drill.clone())
            .map_err(|e| StepError::InvalidInput(format!("field `lifeboat_drill`: {e}")))?;
        let plan = load_plan(deps).await?;
        return start_drill(
            &deps.aws.sfn,
            &deps.config,
            &plan,
            drill,
            TriggerSource::Schedule,
        )
        .await;
    }
    let event: HealthEvent = serde_json::from_value(event)
        .map_err(|e| StepError::InvalidInput(format!("not an AWS Health event: {e}")))?;
    let plan = load_plan(deps).await?;
    if let Err(reason) = classify(&event, &plan) {
        info!(%reason, arn = %event.detail.event_arn, "event ignored");
        return Ok(IngestOutput::Ignored { reason });
    }
    let d = &event.detail;
    let dedup_key = format!(
        "events/{}.json",
        hex::encode(Sha256::digest(
            format!("{}|{}", d.event_arn, d.communication_id).as_bytes()
        ))
    );
    let seen = serde_json::json!({"event_arn": d.event_arn, "communication_id": d.communication_id, "received_at": Utc::now(), "bus_region": event.region});
    if deps.ledger.create(&dedup_key, &seen).await? == Written::Conflict {
        info!(arn = %d.event_arn, "duplicate event");
        return Ok(IngestOutput::Duplicate);
    }
    let run_id = run_id_for(&d.event_arn);
    let summary = format!(
        "AWS Health {} {} in {}: {}",
        d.service,
        d.event_type_code,
        d.event_region.as_deref().unwrap_or(&event.region),
        d.event_description
            .first()
            .map(|e| e.latest_description.as_str())
            .unwrap_or("")
    );
    let trigger = Trigger {
        source: TriggerSource::HealthEvent,
        summary,
        declared_at: Utc::now(),
        event_arn: Some(d.event_arn.clone()),
    };
    let mut run = run_context(&plan, RunKind::Failover, Direction::Failover, trigger, None);
    run.run_id = run_id;
    start_failover(deps, &run).await
}

/// Starts the failover execution of a run; the run id is the execution name, so a second
/// start for the same incident answers `AlreadyStarted` instead of starting another run.
pub async fn start_failover(deps: &Deps, run: &RunContext) -> Result<IngestOutput, StepError> {
    let Some(arn) = &deps.config.failover_state_machine_arn else {
        return Err(StepError::InvalidInput(
            "FAILOVER_STATE_MACHINE_ARN is not set".into(),
        ));
    };
    match deps
        .aws
        .sfn
        .start_execution()
        .state_machine_arn(arn)
        .name(&run.run_id.0)
        .input(serde_json::json!({ "run": run }).to_string())
        .send()
        .await
    {
        Ok(out) => Ok(IngestOutput::Started {
            execution_arn: out.execution_arn().to_string(),
            run_id: run.run_id.0.clone(),
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_execution_already_exists()) =>
        {
            Ok(IngestOutput::AlreadyStarted {
                run_id: run.run_id.0.clone(),
            })
        }
        Err(e) => Err(StepError::aws("states", &e)),
    }
}
