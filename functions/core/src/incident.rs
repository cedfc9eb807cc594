//! Incidents: AWS Health events → a failover execution waiting for approval, or nothing (with
//! the reason). The `health-ingest` step hands every event here (the deep probe in
//! [`crate::probe`] starts its runs here too). Three delivery paths feed it — the DR region's own rule (including the
//! copies AWS sends to a backup region, `detail.backupEvent`), the primary region's forwarder
//! (`infra/forwarder.yaml`), and a scheduled poll of the Health API — and all three go through
//! the same [`classify`] table and the same deduplication: the execution name derives from the
//! eventArn, so one incident is one run however many times and ways it arrives, and a delivery
//! is recorded as seen only once its execution exists (a failed start stays retryable).

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
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

/// `detail-type` of AWS Health events (abuse reports use another and never qualify).
pub const DETAIL_TYPE: &str = "AWS Health Event";

/// The service code AWS uses for an incident it announces across services rather than per
/// service: the us-east-1 outage of 20 Oct 2025 was
/// `arn:aws:health:us-east-1::event/MULTIPLE_SERVICES/AWS_MULTIPLE_SERVICES_OPERATIONAL_ISSUE/…`
/// (https://aws.amazon.com/message/101925/). It qualifies whatever services the plan watches.
pub const MULTIPLE_SERVICES: &str = "MULTIPLE_SERVICES";

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
    /// `PUBLIC`, `ACCOUNT_SPECIFIC` or `NONE`.
    #[serde(default)]
    pub event_scope_code: Option<String>,
    /// Set on the copy AWS delivers to the backup region (public events only).
    #[serde(default)]
    pub backup_event: Option<bool>,
    /// Set by Lifeboat's Health API poll (`health-api-poll`).
    #[serde(default)]
    pub delivered_by: Option<String>,
    /// When the issue began (RFC 1123, e.g. `Fri, 20 Nov 2026 06:00:00 GMT`).
    #[serde(default)]
    pub start_time: Option<String>,
    /// When AWS last updated the event (RFC 1123): orders updates that arrive out of order.
    #[serde(default)]
    pub last_updated_time: Option<String>,
}

/// Pure: an RFC 1123 time of a Health event, if it is one (anything else is no start time,
/// never an error: the run's RTO then counts from declaration only).
pub fn parse_health_time(s: &str) -> Option<chrono::DateTime<Utc>> {
    chrono::DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
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
    /// A Health API poll: what each open issue it found led to.
    Polled {
        /// One result per event.
        results: Vec<IngestOutput>,
    },
}

/// Why an event qualifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifies {
    /// A service the plan watches has an open issue in the primary region.
    WatchedService(String),
    /// AWS announced the incident across services (`MULTIPLE_SERVICES`).
    BroadIncident,
}

/// Pure: does the event qualify under the plan? Every ignored event carries its reason. The
/// rows, in order: source, detail-type, category (only `issue`: `investigation` is not yet
/// confirmed, scheduled changes and notifications are not incidents), status (only `open`),
/// scope (`NONE` is not about a service or account), region (`eventRegion`, not the envelope;
/// `global` events are not escaped by a regional failover), service (watched, or
/// `MULTIPLE_SERVICES`). Copies via a backup region qualify like the original.
pub fn classify(event: &HealthEvent, plan: &Plan) -> Result<Qualifies, String> {
    if event.source != "aws.health" {
        return Err(format!("source is {}, not aws.health", event.source));
    }
    if event.detail_type != DETAIL_TYPE {
        return Err(format!(
            "detail-type is {:?}, not {DETAIL_TYPE:?}",
            event.detail_type
        ));
    }
    let d = &event.detail;
    match d.event_type_category.as_str() {
        "issue" => {}
        "investigation" => {
            return Err("category investigation: AWS has not confirmed an issue yet".into())
        }
        other => return Err(format!("category {other} is not an issue")),
    }
    match d.status_code.as_str() {
        "open" => {}
        "upcoming" => return Err("status upcoming: the issue has not started".into()),
        "closed" => return Err("status closed: the issue is over".into()),
        other => return Err(format!("status {other:?} is not open")),
    }
    if d.event_scope_code.as_deref() == Some("NONE") {
        return Err("scope NONE: not about a service or an account".into());
    }
    let region = d.event_region.as_deref().unwrap_or(&event.region);
    if region.eq_ignore_ascii_case("global") {
        return Err(format!(
            "event is about a global service ({}): failing over to another region does not avoid it",
            d.service
        ));
    }
    if region != plan.sites.primary.region {
        return Err(format!(
            "event is about {region}, the primary is {}",
            plan.sites.primary.region
        ));
    }
    if d.service.eq_ignore_ascii_case(MULTIPLE_SERVICES) {
        return Ok(Qualifies::BroadIncident);
    }
    if !plan
        .monitoring
        .services
        .iter()
        .any(|s| s.eq_ignore_ascii_case(&d.service))
    {
        return Err(format!("service {} is not watched by the plan", d.service));
    }
    Ok(Qualifies::WatchedService(d.service.clone()))
}

/// Whether a `closed` event is about an issue this plan would fail over for (the same event
/// with status `open` would qualify): only those are remembered as closed.
fn would_qualify_if_open(event: &HealthEvent, plan: &Plan) -> bool {
    let mut open = event.clone();
    open.detail.status_code = "open".into();
    classify(&open, plan).is_ok()
}

/// Pure: whether an `open` update is older news than the `closed` one already received for
/// the same event. Without both times it is taken as stale: a closed issue is not reopened
/// by an update that cannot show it is newer.
pub fn stale_open_update(
    open_updated: Option<chrono::DateTime<Utc>>,
    closed_updated: Option<chrono::DateTime<Utc>>,
) -> bool {
    match (open_updated, closed_updated) {
        (Some(open), Some(closed)) => open <= closed,
        _ => true,
    }
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
        accept_drift: None,
    }
}

/// Starts a drill execution for a plan (scheduled through `health-ingest`, or by an operator
/// with `lifeboat drill --aws`).
pub async fn start_drill(
    sfn: &aws_sdk_sfn::Client,
    config: &crate::kernel::DeployConfig,
    plan: &Plan,
    drill: ScheduledDrill,
    source: TriggerSource,
) -> Result<IngestOutput, StepError> {
    let trigger = |what: &str| Trigger {
        source: source.clone(),
        summary: format!("{what} drill ({source:?})"),
        declared_at: Utc::now(),
        event_arn: None,
        incident_started_at: None,
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

/// One event through the classifier, the dedup and the start. The delivery is recorded as seen
/// only after its execution exists (started now, or already): a start that fails (throttling,
/// a deployment in progress) leaves the event retryable — EventBridge and the next poll retry.
pub async fn ingest(
    deps: &Deps,
    plan: &Plan,
    event: &HealthEvent,
) -> Result<IngestOutput, StepError> {
    let d = &event.detail;
    let why = match classify(event, plan) {
        Ok(why) => why,
        Err(reason) => {
            if d.status_code == "closed" && would_qualify_if_open(event, plan) {
                let closed = serde_json::json!({
                    "event_arn": d.event_arn,
                    "communication_id": d.communication_id,
                    "last_updated_time": d.last_updated_time,
                    "received_at": Utc::now(),
                });
                deps.ledger
                    .put(&keys::health_closed(&d.event_arn), &closed)
                    .await?;
            }
            info!(%reason, arn = %d.event_arn, "event ignored");
            return Ok(IngestOutput::Ignored { reason });
        }
    };
    if let Some(closed) = deps
        .ledger
        .get::<serde_json::Value>(&keys::health_closed(&d.event_arn))
        .await?
    {
        let closed_updated = closed
            .value
            .get("last_updated_time")
            .and_then(serde_json::Value::as_str)
            .and_then(parse_health_time);
        let open_updated = d.last_updated_time.as_deref().and_then(parse_health_time);
        if stale_open_update(open_updated, closed_updated) {
            let reason = format!(
                "out of order: AWS already reported this issue closed (last updated {}); this \
                 open update (last updated {}) is older news",
                closed_updated.map_or("unknown".into(), |t| t.to_rfc3339()),
                open_updated.map_or("unknown".into(), |t| t.to_rfc3339()),
            );
            info!(%reason, arn = %d.event_arn, "event ignored");
            return Ok(IngestOutput::Ignored { reason });
        }
    }
    let dedup_key = keys::health_delivery(&d.event_arn, &d.communication_id);
    if deps
        .ledger
        .get::<serde_json::Value>(&dedup_key)
        .await?
        .is_some()
    {
        info!(arn = %d.event_arn, "duplicate delivery");
        return Ok(IngestOutput::Duplicate);
    }
    let run_id = run_id_for(&d.event_arn);
    let summary = format!(
        "AWS Health {} {} in {}{}: {}",
        d.service,
        d.event_type_code,
        d.event_region.as_deref().unwrap_or(&event.region),
        match why {
            Qualifies::BroadIncident => " (announced across services)",
            Qualifies::WatchedService(_) => "",
        },
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
        incident_started_at: d
            .start_time
            .as_deref()
            .and_then(parse_health_time)
            .filter(|t| *t <= Utc::now()),
    };
    let mut run = run_context(plan, RunKind::Failover, Direction::Failover, trigger, None);
    run.run_id = run_id;
    let out = start_failover(deps, &run).await?;
    let seen = serde_json::json!({
        "event_arn": d.event_arn,
        "communication_id": d.communication_id,
        "received_at": Utc::now(),
        "bus_region": event.region,
        "backup_event": d.backup_event.unwrap_or(false),
        "delivered_by": d.delivered_by.as_deref().unwrap_or("eventbridge"),
        "run_id": run.run_id.0,
    });
    // A concurrent delivery of the same update may have recorded it first: either way it is seen.
    let _ = deps.ledger.create(&dedup_key, &seen).await?;
    Ok(out)
}

/// The Health API poll (EventBridge Scheduler: `{"lifeboat_health_poll": {}}`): open issues in
/// the primary region for the watched services (and `MULTIPLE_SERVICES`), each through
/// [`ingest`]. An account without the Health API (no Business support) is reported, not fatal.
pub async fn poll_health_api(deps: &Deps, plan: &Plan) -> Result<IngestOutput, StepError> {
    let Some(api) = &deps.health else {
        return Ok(IngestOutput::Ignored {
            reason: "the Health API poll is not configured in this deployment".into(),
        });
    };
    let filter = crate::health_api::HealthFilter {
        region: plan.sites.primary.region.clone(),
        services: plan.monitoring.services.clone(),
    };
    let polled = api.open_issues(&filter).await;
    // The readiness evaluation reads whether this path is alive.
    let record = crate::readiness::HealthPollRecord {
        checked_at: chrono::Utc::now(),
        result: match &polled {
            Ok(_) => crate::readiness::HealthPollResult::Ok,
            Err(crate::health_api::HealthApiError::NotSubscribed) => {
                crate::readiness::HealthPollResult::NotSubscribed
            }
            Err(_) => crate::readiness::HealthPollResult::Error,
        },
        error: polled.as_ref().err().map(ToString::to_string),
    };
    // Best effort: the record tells the readiness evaluation this path is alive; failing to
    // write it must not stop the poll's own work.
    if let Err(e) = deps
        .ledger
        .put(&keys::health_poll(&plan.name), &record)
        .await
    {
        warn!(error = %e, "the Health API poll's record was not written");
    }
    let records = match polled {
        Ok(r) => r,
        Err(e) => {
            crate::metrics::emit("HealthApiUnavailable", 1.0, &plan.name);
            warn!(error = %e, "Health API poll failed");
            return Ok(IngestOutput::Ignored {
                reason: format!("Health API unavailable: {e}"),
            });
        }
    };
    let mut results = Vec::new();
    for record in &records {
        let shape = crate::health_api::to_eventbridge_shape(record);
        let event: HealthEvent = serde_json::from_value(shape).map_err(|e| {
            StepError::InvalidInput(format!("Health API event {}: {e}", record.event_arn))
        })?;
        results.push(ingest(deps, plan, &event).await?);
    }
    Ok(IngestOutput::Polled { results })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::from_toml(include_str!("../../../lifeboat.toml"), "lifeboat.toml")
            .expect("the example plan")
    }

    #[test]
    fn an_open_update_older_than_the_closed_one_is_stale() {
        let t = |s: &str| parse_health_time(s);
        let table = [
            // (open last updated, closed last updated, stale)
            (
                t("Fri, 20 Nov 2026 06:10:00 GMT"),
                t("Fri, 20 Nov 2026 06:27:00 GMT"),
                true,
            ),
            (
                t("Fri, 20 Nov 2026 06:27:00 GMT"),
                t("Fri, 20 Nov 2026 06:27:00 GMT"),
                true,
            ),
            // Reopened: AWS updated the event after it closed it.
            (
                t("Fri, 20 Nov 2026 07:00:00 GMT"),
                t("Fri, 20 Nov 2026 06:27:00 GMT"),
                false,
            ),
            (None, t("Fri, 20 Nov 2026 06:27:00 GMT"), true),
            (t("Fri, 20 Nov 2026 07:00:00 GMT"), None, true),
            (None, None, true),
        ];
        for (open, closed, stale) in table {
            assert_eq!(
                stale_open_update(open, closed),
                stale,
                "{open:?} vs {closed:?}"
            );
        }
    }

    /// Every event of the corpus (`tests/fixtures/health-events/`) is classified as its file
    /// says, and every ignored one carries a reason with the documented words.
    #[test]
    fn corpus_is_classified_as_documented() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/health-events");
        let plan = plan();
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus") {
            let path = entry.expect("entry").path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let raw: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
            let expect = raw["_lifeboat_expect"].as_str().expect("_lifeboat_expect");
            assert!(
                raw["_source"].as_str().is_some_and(|s| !s.is_empty()),
                "{path:?}: cite a source"
            );
            let event: HealthEvent = serde_json::from_value(raw.clone()).expect("parses");
            match (classify(&event, &plan), expect.strip_prefix("ignored: ")) {
                (Ok(_), None) => assert_eq!(expect, "qualifies", "{path:?}"),
                (Err(reason), Some(words)) => {
                    assert!(
                        reason.contains(words),
                        "{path:?}: {reason:?} lacks {words:?}"
                    )
                }
                (got, _) => panic!("{path:?}: expected {expect}, got {got:?}"),
            }
            seen += 1;
        }
        assert!(seen >= 15, "corpus too small: {seen}");
    }

    #[test]
    fn broad_incidents_qualify_whatever_the_watch_list() {
        let mut plan = plan();
        plan.monitoring.services = vec!["S3".into()];
        let raw = include_str!(
            "../../../tests/fixtures/health-events/02-multiple-services-us-east-1.json"
        );
        let event: HealthEvent = serde_json::from_str(raw).expect("parses");
        assert_eq!(classify(&event, &plan), Ok(Qualifies::BroadIncident));
        let raw = include_str!("../../../tests/fixtures/health-events/01-ec2-issue-open.json");
        let event: HealthEvent = serde_json::from_str(raw).expect("parses");
        assert!(classify(&event, &plan).unwrap_err().contains("not watched"));
    }

    #[test]
    fn health_times_parse_or_are_absent() {
        let t = parse_health_time("Fri, 20 Nov 2026 06:00:00 GMT").expect("rfc 1123");
        assert_eq!(t.to_rfc3339(), "2026-11-20T06:00:00+00:00");
        assert!(parse_health_time("2026-11-20T06:00:00Z").is_none());
        assert!(parse_health_time("").is_none());
    }

    #[test]
    fn one_incident_one_run_id_and_deliveries_keyed_by_update() {
        let a = run_id_for("arn:aws:health:us-east-1::event/EC2/X/X_1");
        assert_eq!(a, run_id_for("arn:aws:health:us-east-1::event/EC2/X/X_1"));
        assert_ne!(a, run_id_for("arn:aws:health:us-east-1::event/EC2/X/X_2"));
        assert_ne!(
            keys::health_delivery("arn", "1"),
            keys::health_delivery("arn", "2")
        );
        // No separator ambiguity between the two parts.
        assert_ne!(
            keys::health_delivery("a|b", "c"),
            keys::health_delivery("a", "b|c")
        );
    }

    /// Parsers never panic on what EventBridge or the Health API could deliver: arbitrary
    /// JSON under the event's own field names, corpus events with one field replaced by
    /// anything (wrong types, huge numbers, deep nesting), and corpus texts cut anywhere. What
    /// parses is classified, its start time read, its keys derived — none of which may panic.
    /// Longer: `PROPTEST_CASES=150000 cargo test -p lifeboat-core --lib never_panic` (RELIABILITY.md).
    mod never_panic {
        use super::*;
        use proptest::prelude::*;
        use serde_json::Value;

        const FIELDS: &[&str] = &[
            "source",
            "detail-type",
            "region",
            "detail",
            "eventArn",
            "service",
            "eventTypeCode",
            "eventTypeCategory",
            "statusCode",
            "communicationId",
            "eventRegion",
            "eventDescription",
            "eventScopeCode",
            "backupEvent",
            "deliveredBy",
            "startTime",
            "lastUpdatedTime",
            "language",
            "latestDescription",
        ];

        fn json() -> impl Strategy<Value = Value> {
            crate::test_support::json_under(
                FIELDS,
                vec![
                    "aws.health",
                    "AWS Health Event",
                    "issue",
                    "open",
                    "PUBLIC",
                    "us-east-1",
                    "MULTIPLE_SERVICES",
                    "EC2",
                    "Fri, 20 Nov 2026 06:00:00 GMT",
                ],
            )
        }

        fn corpus() -> Vec<String> {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/fixtures/health-events");
            let mut texts: Vec<String> = std::fs::read_dir(dir)
                .map(|d| {
                    d.filter_map(Result::ok)
                        .map(|e| e.path())
                        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
                        .filter_map(|p| std::fs::read_to_string(p).ok())
                        .collect()
                })
                .unwrap_or_default();
            texts.sort();
            texts
        }

        /// Everything downstream of parsing, as `handle` runs it.
        fn exercise(event: &HealthEvent, plan: &Plan) {
            let _ = classify(event, plan);
            if let Some(t) = event.detail.start_time.as_deref() {
                let _ = parse_health_time(t);
            }
            let _ = keys::health_delivery(&event.detail.event_arn, &event.detail.communication_id);
            let _ = run_id_for(&event.detail.event_arn);
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(
                std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
            ))]

            #[test]
            fn arbitrary_json_never_panics(value in json()) {
                let plan = plan();
                if let Ok(event) = serde_json::from_value::<HealthEvent>(value) {
                    exercise(&event, &plan);
                }
            }

            #[test]
            fn a_corpus_event_with_any_field_replaced_never_panics(
                pick in any::<prop::sample::Index>(),
                field in prop::sample::select(FIELDS),
                value in json(),
            ) {
                let texts = corpus();
                prop_assume!(!texts.is_empty());
                let text = pick.get(&texts);
                let mut doc: Value = serde_json::from_str(text).expect("the corpus is JSON");
                if doc.get(field).is_some() {
                    doc[field] = value;
                } else if let Some(detail) = doc.get_mut("detail").and_then(Value::as_object_mut) {
                    detail.insert(field.to_string(), value);
                }
                let plan = plan();
                if let Ok(event) = serde_json::from_value::<HealthEvent>(doc) {
                    exercise(&event, &plan);
                }
            }

            #[test]
            fn a_corpus_text_cut_anywhere_never_panics(pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>()) {
                let texts = corpus();
                prop_assume!(!texts.is_empty());
                let text = pick.get(&texts);
                let cut: String = text.chars().take(at.index(text.chars().count() + 1)).collect();
                let plan = plan();
                if let Ok(event) = serde_json::from_str::<HealthEvent>(&cut) {
                    exercise(&event, &plan);
                }
            }
        }
    }
}
