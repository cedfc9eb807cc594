//! End to end: the real `statemachine/failover.asl.json` executed by moto, invoking our real
//! handlers through the local Lambda host, against two emulated workspaces. Each test asserts
//! on the workspaces' state, the ledger and AWS resources — not only on the execution status.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use lifeboat::{
    drill::{self, health_event, Answer, DrillResult},
    local::LocalEnv,
};
use lifeboat_core::{
    approval::{approval_key, ApprovalRecord, ApprovalStage, Decision},
    fence::{FenceRecord, FenceStatus},
    incident::IngestOutput,
    plan::{Plan, SiteRole},
    report::Outcome,
};
use serde_json::Value;

mod common;
use common::{setup, wait_end};
use lifeboat_core::ledger::keys;

/// Makes the replica's canary two hours old: replication is behind.
async fn drive(env: &LocalEnv, plan: &Plan, answer: Answer) -> DrillResult {
    drill::drive(
        env,
        plan,
        &common::options(drill::DrillKind::Failover, answer),
    )
    .await
    .unwrap()
}

async fn cname(env: &LocalEnv, plan: &Plan) -> String {
    common::cname(env, plan, &plan.dns.as_ref().unwrap().record_name)
        .await
        .unwrap()
}

async fn wait_for_end(env: &LocalEnv, arn: &str) -> (ExecutionStatus, Option<String>) {
    let (status, error, _) = wait_end(env, arn).await;
    (status, error)
}

/// Activation status of every job at a site: name → (schedule, continuous, trigger).
async fn activations(env: &LocalEnv, site: SiteRole) -> Vec<(String, Value, Value, Value)> {
    let state = env.admin_get(site, "state").await.unwrap();
    let mut jobs: Vec<_> = state["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_string(),
                j["schedule_pause_status"].clone(),
                j["continuous_pause_status"].clone(),
                j["trigger_pause_status"].clone(),
            )
        })
        .collect();
    jobs.sort_by(|a, b| a.0.cmp(&b.0));
    jobs
}

fn unpaused(jobs: &[(String, Value, Value, Value)]) -> Vec<String> {
    jobs.iter()
        .filter(|(_, s, c, t)| [s, c, t].iter().any(|v| v.as_str() == Some("UNPAUSED")))
        .map(|j| j.0.clone())
        .collect()
}

/// What a fence or start-up would change: schedules, compute states, pools, warehouses.
async fn footprint(env: &LocalEnv, site: SiteRole) -> Value {
    let s = env.admin_get(site, "state").await.unwrap();
    let pick = |key: &str, fields: &[&str]| -> Value {
        let mut v: Vec<Value> = s[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|o| {
                        fields
                            .iter()
                            .map(|f| (f.to_string(), o[*f].clone()))
                            .collect::<serde_json::Map<_, _>>()
                            .into()
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|o| o.to_string());
        Value::Array(v)
    };
    serde_json::json!({
        "jobs": pick("jobs", &["name", "schedule_pause_status", "continuous_pause_status", "trigger_pause_status", "max_concurrent_runs"]),
        "clusters": pick("clusters", &["cluster_name", "state"]),
        "pools": pick("pools", &["instance_pool_name", "min_idle_instances"]),
        "warehouses": pick("warehouses", &["name", "state"]),
        "pipelines": pick("pipelines", &["name", "state"]),
    })
}

async fn lock_released(env: &LocalEnv, plan: &Plan) -> bool {
    env.deps
        .ledger
        .get_raw(&keys::lock(&plan.name))
        .await
        .unwrap()
        .is_none()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_happy_path_moves_production_and_never_both_active() {
    let (env, plan) = setup(|_| {}).await;
    let primary_before = activations(&env, SiteRole::Primary).await;
    let active_before = unpaused(&primary_before);
    assert!(
        active_before.len() >= 5,
        "the demo primary has live schedules: {active_before:?}"
    );
    let r = drive(&env, &plan, Answer::Approve).await;
    assert_eq!(r.outcome, Outcome::Succeeded, "{:#?}", r.report);
    assert_eq!(r.execution_status, "SUCCEEDED");
    assert!(r.verdict.never_both_active, "{:?}", r.verdict.overlaps);

    // The primary is fenced, except what the plan excludes (tag lifeboat=exclude).
    let primary_after = unpaused(&activations(&env, SiteRole::Primary).await);
    assert_eq!(primary_after, vec!["DR Canary Monitor".to_string()]);
    let state = env.admin_get(SiteRole::Primary, "state").await.unwrap();
    for c in state["clusters"].as_array().unwrap() {
        let all_purpose = matches!(c["cluster_source"].as_str(), Some("UI") | Some("API"));
        if all_purpose && c["cluster_name"] != "Ops Break-Glass" {
            assert!(
                matches!(
                    c["state"].as_str(),
                    Some("TERMINATED") | Some("TERMINATING")
                ),
                "{c}"
            );
        }
        if c["cluster_name"] == "Ops Break-Glass" {
            assert_eq!(c["state"], "RUNNING", "excluded cluster left alone");
        }
    }
    for p in state["pools"].as_array().unwrap() {
        assert_eq!(p["min_idle_instances"], 0, "{p}");
    }
    // DR runs exactly what ran at the primary (minus exclusions), and what the plan starts.
    let dr_after = unpaused(&activations(&env, SiteRole::Dr).await);
    let expected: Vec<String> = active_before
        .into_iter()
        .filter(|n| n != "DR Canary Monitor")
        .collect();
    assert_eq!(dr_after, expected);
    let dr = env.admin_get(SiteRole::Dr, "state").await.unwrap();
    let wh = dr["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "Shared BI")
        .unwrap();
    assert_eq!(wh["state"], "RUNNING");
    let pool = dr["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["instance_pool_name"] == "General Purpose Pool")
        .unwrap();
    assert_eq!(pool["min_idle_instances"], 2);

    // Clients moved: DNS and the SSM parameter point at DR; the old values are in the report.
    assert_eq!(cname(&env, &plan).await, "dr.workspace.example.internal");
    let param = env
        .aws
        .ssm
        .get_parameter()
        .name("/lifeboat/sales-platform/workspace-url")
        .send()
        .await
        .unwrap();
    assert_eq!(param.parameter().unwrap().value(), Some(env.dr.url()));
    let dns = r.report.dns.as_ref().unwrap();
    assert_eq!(
        dns.previous.as_deref(),
        Some("primary.workspace.example.internal")
    );

    // Ledger: fence confirmed with prior states, lock released, audit of who approved.
    let fence: FenceRecord = env
        .deps
        .ledger
        .get(&keys::fence(
            &lifeboat_core::run::RunId(r.run_id.clone()),
            SiteRole::Primary,
        ))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(fence.status, FenceStatus::Confirmed);
    assert!(fence.resources.values().all(|x| x.confirmed));
    assert!(fence.resources.values().any(|x| x.prior == "UNPAUSED"));
    assert!(lock_released(&env, &plan).await);
    let approval = r.report.approval.as_ref().unwrap();
    assert_eq!(
        (approval.decision.as_str(), approval.channel.as_str()),
        ("approve", "cli")
    );
    assert!(r.report.rto.from_declaration_seconds.unwrap() > 0.0);
    assert_eq!(r.report.rto.met, Some(true));
    // Every step recorded its outcome in the ledger.
    let steps: Vec<&str> = r.report.steps.iter().map(|s| s.step.as_str()).collect();
    for s in [
        "request-approval",
        "shutdown-sweep",
        "dr-config-check",
        "replication-check",
        "dr-startup",
        "activate-schedules",
        "validate-workspace",
        "dns-switch",
    ] {
        assert!(steps.contains(&s), "{s} missing from {steps:?}");
    }
    // Secrets stay secret: no token in the report, the ledger's run record or the step records.
    let report_text = serde_json::to_string(&r.report).unwrap();
    assert!(
        !report_text.contains(&env.primary_token) && !report_text.contains(&env.dr_oauth_secret)
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_approval_touches_neither_site() {
    let (env, plan) = setup(|_| {}).await;
    let primary = footprint(&env, SiteRole::Primary).await;
    let dr = footprint(&env, SiteRole::Dr).await;
    let r = drive(&env, &plan, Answer::Reject).await;
    assert_eq!(r.outcome, Outcome::Rejected);
    assert_eq!(r.execution_status, "FAILED");
    assert_eq!(footprint(&env, SiteRole::Primary).await, primary);
    assert_eq!(footprint(&env, SiteRole::Dr).await, dr);
    assert_eq!(
        cname(&env, &plan).await,
        "primary.workspace.example.internal"
    );
    assert!(lock_released(&env, &plan).await);
    // No write request reached either workspace.
    for site in [SiteRole::Primary, SiteRole::Dr] {
        let log = env.admin_get(site, "requests").await.unwrap();
        let writes: Vec<&Value> = log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == "POST" && !r["path"].as_str().unwrap_or("").contains("/oidc/")
            })
            .collect();
        assert!(writes.is_empty(), "{site:?} got writes: {writes:?}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_timeout_ends_cleanly_and_releases_the_lock() {
    let (env, plan) = setup(|p| p.approval.timeout_seconds = 3).await;
    let primary = footprint(&env, SiteRole::Primary).await;
    let r = drive(&env, &plan, Answer::Ignore).await;
    assert_eq!(r.outcome, Outcome::ApprovalTimedOut);
    assert_eq!(footprint(&env, SiteRole::Primary).await, primary);
    assert!(lock_released(&env, &plan).await);
    let steps: Vec<&str> = r.report.steps.iter().map(|s| s.step.as_str()).collect();
    assert!(steps.contains(&"notify"), "escalation notified: {steps:?}");
    env.stop().await;
}

/// A run's report from the ledger.
/// Waits for a ledger document to satisfy `ok`.
async fn ledger_until<T: serde::de::DeserializeOwned>(
    env: &LocalEnv,
    key: &str,
    secs: u64,
    ok: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = env.deps.ledger.get::<T>(key).await.unwrap() {
            if ok(&v.value) {
                return v.value;
            }
        }
        assert!(Instant::now() < deadline, "{key} never got there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn timeline(env: &LocalEnv, site: SiteRole) -> Vec<lifeboat::verdict::TimelineEvent> {
    let v = env.admin_get(site, "timeline").await.unwrap();
    serde_json::from_value(v["events"].clone()).unwrap()
}

async fn replica_policy(env: &LocalEnv, plan: &Plan) -> Option<String> {
    env.aws
        .s3
        .get_bucket_policy()
        .bucket(&plan.replication.buckets[0].replica)
        .send()
        .await
        .ok()
        .and_then(|p| p.policy().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_down_from_the_start_fails_over_by_override_and_the_fence_watch_fences_its_return()
{
    use lifeboat_core::fence::{
        data::DataFenceRecord,
        gate::{open_gate, OverrideError, OverrideRefused},
        watch::FenceWatchRecord,
    };
    let (env, plan) = setup(|p| p.shutdown.max_attempts = 3).await;
    let live_before = unpaused(&activations(&env, SiteRole::Primary).await);
    // A drift check while the primary answered left its configuration snapshot in the ledger.
    let earlier = lifeboat_core::incident::run_context(
        &plan,
        lifeboat_core::run::RunKind::Readiness,
        lifeboat_core::plan::Direction::Failover,
        lifeboat_core::run::Trigger {
            source: lifeboat_core::run::TriggerSource::Schedule,
            summary: "earlier snapshot".into(),
            declared_at: chrono::Utc::now(),
            event_arn: None,
            incident_started_at: None,
        },
        None,
    );
    env.invoke("dr-config-check", &serde_json::json!({ "run": earlier }))
        .await
        .unwrap();
    // The whole primary region goes down: API and scheduler.
    env.region_outage(SiteRole::Primary, true).await.unwrap();
    let region = plan.sites.primary.region.clone();
    let (arn, run_id) = started(
        env.invoke("health-ingest", &health_event(&region, "REGION-DOWN"))
            .await
            .unwrap(),
    );
    let run = lifeboat_core::run::RunId(run_id.clone());
    let approval = wait_for_approval(&env, &run_id).await;
    assert!(
        !approval.evidence.source_reachable,
        "the evidence says the primary is down"
    );
    // Before any write there is no data fence: an override is refused (and audited).
    let early = open_gate(&env.deps, &run, "region down", "alice@example.com", "cli").await;
    assert!(
        matches!(
            early,
            Err(OverrideError::Refused(OverrideRefused::NoDataFence(_)))
        ),
        "{early:?}"
    );
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &run,
            stage: ApprovalStage::Failover,
            decision: Decision::Approve,
            who: "oncall-dr@example.com",
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap();
    // The data fence is confirmed at once, whatever the primary's state.
    let fence: DataFenceRecord =
        ledger_until(&env, &keys::data_fence(&run), 30, |d: &DataFenceRecord| {
            d.confirmed()
        })
        .await;
    assert!(fence.confirmed_at.is_some());
    let policy = replica_policy(&env, &plan).await.expect("a replica policy");
    assert!(policy.contains("LifeboatDataFence") && policy.contains("s3:ReplicateObject"));
    // The run's fence loop gives up; the fence watch takes over; the gate stays closed.
    ledger_until(
        &env,
        &keys::fence_watch(&run),
        60,
        |_: &FenceWatchRecord| true,
    )
    .await;
    assert!(
        unpaused(&activations(&env, SiteRole::Dr).await).is_empty(),
        "gate closed"
    );
    // A blank reason keeps it closed; a reason with an identity opens it.
    let blank = open_gate(&env.deps, &run, "  ", "alice@example.com", "cli").await;
    assert!(matches!(
        blank,
        Err(OverrideError::Refused(OverrideRefused::BlankReason))
    ));
    let o = open_gate(
        &env.deps,
        &run,
        "us-east-1 down per AWS Health; data fence confirmed",
        "alice@example.com",
        "cli",
    )
    .await
    .unwrap();
    assert_eq!(o.who, "alice@example.com");
    let (status, _) = wait_for_end(&env, &arn).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    let report = common::report_of(&env, &run_id).await;
    assert_eq!(report.outcome, Outcome::SucceededWithWarnings);
    assert_eq!(
        report.gate_override.as_ref().unwrap().who,
        "alice@example.com"
    );
    let audit = env
        .deps
        .ledger
        .list(&keys::gate_audit_prefix(&lifeboat_core::run::RunId(
            run_id.clone(),
        )))
        .await
        .unwrap();
    assert_eq!(
        audit.len(),
        3,
        "two refusals and the opening are audited: {audit:?}"
    );
    // DR runs what was live at the primary (from the snapshot), minus the plan's exclusions.
    let expected: Vec<String> = live_before
        .iter()
        .filter(|n| n.as_str() != "DR Canary Monitor")
        .cloned()
        .collect();
    assert_eq!(unpaused(&activations(&env, SiteRole::Dr).await), expected);
    assert_eq!(cname(&env, &plan).await, "dr.workspace.example.internal");
    assert!(lock_released(&env, &plan).await);

    // Hours later (here: now) the primary comes back with its schedules live: a zombie.
    env.region_outage(SiteRole::Primary, false).await.unwrap();
    let returned_ms = chrono::Utc::now().timestamp_millis();
    let watch: FenceWatchRecord = ledger_until(
        &env,
        &keys::fence_watch(&run),
        60,
        |w: &FenceWatchRecord| w.confirmed_at.is_some(),
    )
    .await;
    assert!(watch.confirmed_at.unwrap().timestamp_millis() >= returned_ms);
    assert_eq!(
        unpaused(&activations(&env, SiteRole::Primary).await),
        vec!["DR Canary Monitor".to_string()],
        "the returning primary is fenced, exclusions aside"
    );
    // Never both active while the run ran and while the region was down; after its return the
    // zombie window is bounded by the watch's interval plus one sweep.
    let (p, d) = (
        timeline(&env, SiteRole::Primary).await,
        timeline(&env, SiteRole::Dr).await,
    );
    let v = lifeboat::verdict::never_both_active(&p, &d);
    for o in &v.overlaps {
        assert!(
            o.from_ms >= returned_ms - 1000,
            "overlap before the return: {o:?}"
        );
        assert!(
            o.to_ms - o.from_ms < 15_000,
            "zombie window too long: {o:?}"
        );
    }
    // None left behind: every activation live before is live at exactly one site.
    let (left, primary_now, dr_now) =
        drill::left_behind_now(&env, &p, report.trigger.declared_at.timestamp_millis())
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(primary_now.is_disjoint(&dr_now), "live at exactly one site");
    env.stop().await;
}

/// Waits until a site's jobs look as `before` (transitional states settle).
async fn settled(env: &LocalEnv, site: SiteRole, before: &Value) {
    for _ in 0..50 {
        if pause_states(&footprint(env, site).await) == pause_states(before) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every job's activation states (without the start-up's concurrency overrides).
fn pause_states(footprint: &Value) -> Vec<String> {
    let mut v: Vec<String> = footprint["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            serde_json::json!([
                j["name"],
                j["schedule_pause_status"],
                j["continuous_pause_status"],
                j["trigger_pause_status"]
            ])
            .to_string()
        })
        .collect();
    v.sort();
    v
}

/// Starts a failover by a Health event and approves it; returns (execution arn, run id).
async fn approved_failover(env: &LocalEnv, plan: &Plan, id: &str) -> (String, String) {
    let (arn, run_id) = started(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, id),
        )
        .await
        .unwrap(),
    );
    wait_for_approval(env, &run_id).await;
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &lifeboat_core::run::RunId(run_id.clone()),
            stage: ApprovalStage::Failover,
            decision: Decision::Approve,
            who: "oncall-dr@example.com",
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap();
    (arn, run_id)
}

async fn wait_paused(
    env: &LocalEnv,
    run_id: &str,
) -> lifeboat_core::intervention::InterventionRecord {
    ledger_until(
        env,
        &keys::intervention(&lifeboat_core::run::RunId(run_id.into())),
        60,
        |r: &lifeboat_core::intervention::InterventionRecord| r.task_token.is_some(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primary_lost_mid_sweep_and_back_mid_activation_still_hands_over_everything() {
    use lifeboat_core::fence::FenceRecord;
    // Slow limits (a fifth of the real ones) so the fence takes long enough to be cut.
    let (env, plan) = common::setup_with(
        lifeboat::local::LocalOptions {
            rate_limit_scale: 0.2,
            lifecycle_delay: Duration::from_millis(200),
            ..Default::default()
        },
        |p| {
            p.shutdown.retry_interval_seconds = 1;
            p.shutdown.max_attempts = 30;
            p.startup.poll_seconds = 1;
        },
    )
    .await;
    let live_before = lifeboat::verdict::live_activations(
        &env.admin_get(SiteRole::Primary, "state").await.unwrap(),
    );
    let (arn, run_id) = approved_failover(&env, &plan, "MID-SWEEP").await;
    let run = lifeboat_core::run::RunId(run_id.clone());
    // The sweep has begun (prior states recorded, the first pauses handed off, not done): cut it.
    let prefix = keys::handoff_prefix(&run, SiteRole::Primary);
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.deps.ledger.list(&prefix).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no handoff");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fence: FenceRecord = env
        .deps
        .ledger
        .get(&keys::fence(&run, SiteRole::Primary))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_ne!(
        fence.status,
        lifeboat_core::fence::FenceStatus::Confirmed,
        "cut mid-sweep"
    );
    env.outage(SiteRole::Primary, true).await.unwrap();
    // Activation goes on for what was confirmed; the rest waits. Then the primary returns.
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.outage(SiteRole::Primary, false).await.unwrap();
    let (status, _) = wait_for_end(&env, &arn).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    let report = common::report_of(&env, &run_id).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.error);
    assert!(
        report.fence.as_ref().unwrap().attempt > 1,
        "the outage cost attempts"
    );
    assert!(
        report.verdict.never_both_active && report.verdict.none_left_behind,
        "{:?}",
        report.verdict
    );
    let (p, d) = (
        timeline(&env, SiteRole::Primary).await,
        timeline(&env, SiteRole::Dr).await,
    );
    let v = lifeboat::verdict::never_both_active(&p, &d);
    assert!(v.never_both_active, "{:?}", v.overlaps);
    let (left, primary_now, dr_now) =
        drill::left_behind_now(&env, &p, report.trigger.declared_at.timestamp_millis())
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        primary_now.len() + dr_now.len(),
        live_before.len(),
        "each live at exactly one site"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_after_the_first_write_pauses_and_abort_restores_both_sites() {
    use lifeboat_core::intervention::{decide, InterventionAction};
    // Validation fails at DR (a query expects the wrong count): after the fence and start-up.
    let (env, plan) = setup(|p| {
        p.validation.queries[0].expect_rows = Some(vec![vec!["51".into()]]);
    })
    .await;
    let primary_before = footprint(&env, SiteRole::Primary).await;
    let dr_before = footprint(&env, SiteRole::Dr).await;
    let (arn, run_id) = approved_failover(&env, &plan, "PAUSE-ABORT").await;
    let paused = wait_paused(&env, &run_id).await;
    assert_eq!(paused.failed_state, "ValidateWorkspace");
    assert!(
        paused.error.contains("ValidationFailed"),
        "{}",
        paused.error
    );
    // Both sites' state is in the request: the primary fenced, DR started.
    let sites: Vec<&str> = paused.sites.iter().map(|s| s.site.as_str()).collect();
    assert_eq!(sites, vec!["primary", "dr"]);
    assert!(
        paused.sites[0].summary.contains("fence"),
        "{:?}",
        paused.sites[0]
    );
    // Nothing moves on without a human: the run waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let d = env
        .aws
        .sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), &ExecutionStatus::Running);
    assert_eq!(
        cname(&env, &plan).await,
        "primary.workspace.example.internal"
    );
    // A blank identity cannot decide; an operator aborts.
    let run = lifeboat_core::run::RunId(run_id.clone());
    assert!(
        decide(&env.deps, &run, InterventionAction::Abort, " ", "cli", None)
            .await
            .is_err()
    );
    decide(
        &env.deps,
        &run,
        InterventionAction::Abort,
        "alice@example.com",
        "cli",
        Some("validation data wrong".into()),
    )
    .await
    .unwrap();
    // Single use: a second decision on the same pause is refused.
    assert!(decide(
        &env.deps,
        &run,
        InterventionAction::Retry,
        "bob@example.com",
        "cli",
        None
    )
    .await
    .is_err());
    let (status, _) = wait_for_end(&env, &arn).await;
    assert_eq!(status, ExecutionStatus::Failed);
    let report = common::report_of(&env, &run_id).await;
    assert_eq!(report.outcome, Outcome::Aborted, "{:#?}", report.error);
    let i = report.intervention.as_ref().unwrap();
    assert_eq!(i.history.len(), 1);
    assert_eq!(i.history[0].who, "alice@example.com");
    assert!(!i.pending);
    // Both sites as they were: the primary's schedules live again, DR dormant again; DNS never
    // moved; the data fence lifted; the lock released.
    settled(&env, SiteRole::Primary, &primary_before).await;
    assert_eq!(
        footprint(&env, SiteRole::Primary).await["jobs"],
        primary_before["jobs"]
    );
    // DR: every activation dormant again (the start-up's concurrency override stays, as after a
    // failback's reset; see docs/operating.md).
    settled(&env, SiteRole::Dr, &dr_before).await;
    assert_eq!(
        pause_states(&footprint(&env, SiteRole::Dr).await),
        pause_states(&dr_before)
    );
    assert_eq!(
        cname(&env, &plan).await,
        "primary.workspace.example.internal"
    );
    assert!(report.data_fence.as_ref().unwrap().removed_at.is_some());
    assert!(replica_policy(&env, &plan)
        .await
        .is_none_or(|p| !p.contains("LifeboatDataFence")));
    assert!(lock_released(&env, &plan).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_run_continues_past_a_failed_step_on_a_decision() {
    use lifeboat_core::intervention::{decide, InterventionAction};
    let (env, plan) = setup(|p| {
        p.validation.queries[0].expect_rows = Some(vec![vec!["51".into()]]);
    })
    .await;
    let (arn, run_id) = approved_failover(&env, &plan, "PAUSE-CONTINUE").await;
    let run = lifeboat_core::run::RunId(run_id.clone());
    wait_paused(&env, &run_id).await;
    // Retry first: it fails the same way and pauses again (a second request, same record).
    decide(
        &env.deps,
        &run,
        InterventionAction::Retry,
        "alice@example.com",
        "cli",
        None,
    )
    .await
    .unwrap();
    let again = ledger_until(
        &env,
        &keys::intervention(&run),
        60,
        |r: &lifeboat_core::intervention::InterventionRecord| {
            r.task_token.is_some() && r.history.len() == 1
        },
    )
    .await;
    assert_eq!(again.failed_state, "ValidateWorkspace");
    decide(
        &env.deps,
        &run,
        InterventionAction::Continue,
        "alice@example.com",
        "cli",
        Some("known test data drift".into()),
    )
    .await
    .unwrap();
    let (status, _) = wait_for_end(&env, &arn).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    let report = common::report_of(&env, &run_id).await;
    assert_eq!(
        report.outcome,
        Outcome::SucceededWithWarnings,
        "validation failed: a warning"
    );
    assert_eq!(report.intervention.as_ref().unwrap().history.len(), 2);
    assert_eq!(cname(&env, &plan).await, "dr.workspace.example.internal");
    // The client path is proven without asking again about the rows the operator accepted.
    let clients = report.client_check.as_ref().unwrap();
    assert!(clients.passed, "{clients:#?}");
    assert!(
        clients
            .checks
            .iter()
            .any(|c| c.name.ends_with(": orders replicated")
                && c.detail.starts_with("executed; expected")),
        "{clients:#?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_decision_that_is_not_an_approval_touches_nothing() {
    let (env, plan) = setup(|_| {}).await;
    let (arn, run_id) = started(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, "CONSOLE-NO"),
        )
        .await
        .unwrap(),
    );
    let record = wait_for_approval(&env, &run_id).await;
    // SendTaskSuccess — the console's button — with a decision that is not an approval.
    env.aws
        .sfn
        .send_task_success()
        .task_token(&record.task_token)
        .output(r#"{"approved": false, "approver": "someone@example.com", "channel": "console"}"#)
        .send()
        .await
        .unwrap();
    let (status, _) = wait_for_end(&env, &arn).await;
    assert_eq!(status, ExecutionStatus::Failed);
    for site in [SiteRole::Primary, SiteRole::Dr] {
        let log = env.admin_get(site, "requests").await.unwrap();
        assert!(
            !log["requests"].as_array().unwrap().iter().any(
                |r| r["method"] == "POST" && !r["path"].as_str().unwrap_or("").contains("oidc")
            ),
            "{site:?} was written to"
        );
    }
    let report = common::report_of(&env, &run_id).await;
    assert_eq!(report.outcome, Outcome::Rejected);
    assert!(lock_released(&env, &plan).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_check_before_approval_touches_neither_site() {
    // The plan starts a warehouse the DR site does not have: drift that blocks.
    let (env, plan) = setup(|p| p.startup.warehouses.push("No Such Warehouse".into())).await;
    let before = (
        footprint(&env, SiteRole::Primary).await,
        footprint(&env, SiteRole::Dr).await,
    );
    let (arn, run_id) = started(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, "DRIFT"),
        )
        .await
        .unwrap(),
    );
    let (status, _) = wait_for_end(&env, &arn).await;
    assert_eq!(status, ExecutionStatus::Failed);
    // Refused before anyone was asked: no approval request, no write at either site.
    assert!(env
        .deps
        .ledger
        .get_raw(&approval_key(
            &lifeboat_core::run::RunId(run_id.clone()),
            ApprovalStage::Failover
        ))
        .await
        .unwrap()
        .is_none());
    for site in [SiteRole::Primary, SiteRole::Dr] {
        let log = env.admin_get(site, "requests").await.unwrap();
        let writes: Vec<&Value> = log["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "POST" && !r["path"].as_str().unwrap_or("").contains("oidc"))
            .collect();
        assert!(writes.is_empty(), "{site:?} got writes: {writes:?}");
    }
    assert_eq!(
        (
            footprint(&env, SiteRole::Primary).await,
            footprint(&env, SiteRole::Dr).await
        ),
        before
    );
    let report = common::report_of(&env, &run_id).await;
    assert_eq!(report.outcome, Outcome::Refused);
    assert!(lock_released(&env, &plan).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_breach_stops_before_the_target_is_activated() {
    let (env, plan) = setup(|_| {}).await;
    // The replica's canary is two hours old: replication is behind.
    common::replica_two_hours_behind(&env, &plan).await;
    let r = drive(&env, &plan, Answer::Approve).await;
    assert_eq!(r.outcome, Outcome::StoppedRpoBreach);
    assert!(unpaused(&activations(&env, SiteRole::Dr).await).is_empty());
    assert_eq!(
        cname(&env, &plan).await,
        "primary.workspace.example.internal"
    );
    assert!(lock_released(&env, &plan).await);
    env.stop().await;
}

async fn wait_for_approval(env: &LocalEnv, run_id: &str) -> ApprovalRecord {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = env
            .deps
            .ledger
            .get::<ApprovalRecord>(&approval_key(
                &lifeboat_core::run::RunId(run_id.into()),
                ApprovalStage::Failover,
            ))
            .await
            .unwrap()
        {
            return r.value;
        }
        assert!(Instant::now() < deadline, "no approval request");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn started(v: Value) -> (String, String) {
    match serde_json::from_value(v).unwrap() {
        IngestOutput::Started {
            execution_arn,
            run_id,
        } => (execution_arn, run_id),
        other => panic!("not started: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_alarm_while_a_run_holds_the_lock_is_already_handled_and_an_operator_start_is_refused(
) {
    let (env, plan) = setup(|_| {}).await;
    let region = &plan.sites.primary.region;
    let (first_arn, first_run) = started(
        env.invoke("health-ingest", &health_event(region, "FIRST"))
            .await
            .unwrap(),
    );
    wait_for_approval(&env, &first_run).await;
    // Another alarm (a second Health event, a probe) while the first run holds the lock: the
    // execution ends as already handled — no Fail state, so no page — naming the first run.
    let (second_arn, second_run) = started(
        env.invoke("health-ingest", &health_event(region, "SECOND"))
            .await
            .unwrap(),
    );
    let (status, error) = wait_for_end(&env, &second_arn).await;
    assert_eq!(status, ExecutionStatus::Succeeded, "{error:?}");
    let d = env
        .aws
        .sfn
        .describe_execution()
        .execution_arn(&second_arn)
        .send()
        .await
        .unwrap();
    let out: Value = serde_json::from_str(d.output().unwrap()).unwrap();
    assert_eq!(out["already_handled"], first_run.as_str(), "{out}");
    // The event says which run handles it (notify records what it told people).
    let told = lifeboat_core::run::RunId(second_run.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut handled = false;
        for key in env
            .deps
            .ledger
            .list(&keys::announcements_prefix(&told))
            .await
            .unwrap()
        {
            let a: lifeboat_core::announce::AnnouncementRecord =
                env.deps.ledger.get(&key).await.unwrap().unwrap().value;
            handled |= a.milestone == "Lifeboat Trigger Already Handled";
        }
        if handled {
            break;
        }
        assert!(Instant::now() < deadline, "no Already Handled event told");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Nothing of the second run was recorded beyond its announcement: no run record, no lock.
    assert!(env
        .deps
        .ledger
        .get_raw(&keys::run_record(&told))
        .await
        .unwrap()
        .is_none());
    // An operator's own start while the lock is held is refused, clearly.
    let (operator_arn, _) = drill::start_run(
        &env,
        &plan,
        lifeboat::local::FAILOVER_MACHINE,
        lifeboat_core::run::RunKind::Failover,
        lifeboat_core::plan::Direction::Failover,
        None,
    )
    .await
    .unwrap();
    let (status, error) = wait_for_end(&env, &operator_arn).await;
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("LockHeld"));
    // The first is untouched and still waiting; rejecting it releases the lock.
    let d = env
        .aws
        .sfn
        .describe_execution()
        .execution_arn(&first_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), &ExecutionStatus::Running);
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &lifeboat_core::run::RunId(first_run.clone()),
            stage: ApprovalStage::Failover,
            decision: Decision::Reject,
            who: "oncall-dr@example.com",
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap();
    wait_for_end(&env, &first_arn).await;
    assert!(lock_released(&env, &plan).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_left_by_a_stopped_execution_is_released_with_an_audit_entry() {
    let (env, plan) = setup(|_| {}).await;
    let region = &plan.sites.primary.region;
    let (first_arn, first_run) = started(
        env.invoke("health-ingest", &health_event(region, "STOPPED"))
            .await
            .unwrap(),
    );
    wait_for_approval(&env, &first_run).await;
    // The first run ends (rejected). Then its lock is put back as a run stopped from the
    // console leaves it — no `finish` ran (moto cannot stop an execution that waits for a task
    // token, so the stop is simulated by the lock it leaves; Step Functions reports the holder
    // ended either way, which is all the release relies on).
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &lifeboat_core::run::RunId(first_run.clone()),
            stage: ApprovalStage::Failover,
            decision: Decision::Reject,
            who: "oncall-dr@example.com",
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap();
    wait_for_end(&env, &first_arn).await;
    env.deps
        .ledger
        .put(
            &keys::lock(&plan.name),
            &lifeboat_core::steps::run_ledger::Lock {
                run_id: first_run.clone(),
                acquired_at: chrono::Utc::now(),
                execution_arn: Some(first_arn.clone()),
            },
        )
        .await
        .unwrap();
    assert!(
        !lock_released(&env, &plan).await,
        "a stopped run leaves its lock"
    );
    // The next incident is not refused forever: the lock's holder is no longer running.
    let (second_arn, second_run) = started(
        env.invoke("health-ingest", &health_event(region, "AFTER-STOP"))
            .await
            .unwrap(),
    );
    wait_for_approval(&env, &second_run).await;
    let lock: lifeboat_core::steps::run_ledger::Lock = env
        .deps
        .ledger
        .get(&keys::lock(&plan.name))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(lock.run_id, second_run);
    assert_eq!(lock.execution_arn.as_deref(), Some(second_arn.as_str()));
    let audit = env
        .deps
        .ledger
        .list(&keys::lock_audit_prefix(&plan.name))
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    let entry: Value = env.deps.ledger.get(&audit[0]).await.unwrap().unwrap().value;
    assert_eq!(entry["holder"]["run_id"], first_run.as_str());
    assert_eq!(entry["released_by"], second_run.as_str());
    assert!(
        entry["holder_status"].as_str().unwrap().contains("Ended"),
        "{entry}"
    );
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &lifeboat_core::run::RunId(second_run.clone()),
            stage: ApprovalStage::Failover,
            decision: Decision::Reject,
            who: "oncall-dr@example.com",
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap();
    wait_for_end(&env, &second_arn).await;
    assert!(lock_released(&env, &plan).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_health_events_start_one_execution() {
    let (env, plan) = setup(|_| {}).await;
    let region = plan.sites.primary.region.clone();
    let event = health_event(&region, "DUP");
    let (arn, run_id) = started(env.invoke("health-ingest", &event).await.unwrap());
    // The same event again (e.g. via the backup region's bus).
    let mut again = event.clone();
    again["region"] = Value::String("us-west-2".into());
    let second: IngestOutput =
        serde_json::from_value(env.invoke("health-ingest", &again).await.unwrap()).unwrap();
    assert_eq!(second, IngestOutput::Duplicate);
    // An update of the same incident (new communicationId).
    let mut update = event.clone();
    update["detail"]["communicationId"] = Value::String("DUP-2".into());
    let third: IngestOutput =
        serde_json::from_value(env.invoke("health-ingest", &update).await.unwrap()).unwrap();
    assert_eq!(
        third,
        IngestOutput::AlreadyStarted {
            run_id: run_id.clone()
        }
    );
    // Not about the primary region, or not an open issue: ignored.
    let mut elsewhere = event.clone();
    elsewhere["detail"]["eventRegion"] = Value::String("eu-west-1".into());
    elsewhere["detail"]["eventArn"] =
        Value::String("arn:aws:health:eu-west-1::event/EC2/X/Y".into());
    assert!(matches!(
        serde_json::from_value(env.invoke("health-ingest", &elsewhere).await.unwrap()).unwrap(),
        IngestOutput::Ignored { .. }
    ));
    let list = env
        .aws
        .sfn
        .list_executions()
        .state_machine_arn(env.deps.config.failover_state_machine_arn.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(list.executions().len(), 1);
    // Malformed events are refused with a clear error.
    let err = env
        .invoke(
            "health-ingest",
            &serde_json::json!({"source": "aws.health"}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("InvalidInput") && err.contains("detail"),
        "{err}"
    );
    wait_for_approval(&env, &run_id).await;
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &lifeboat_core::run::RunId(run_id),
            stage: ApprovalStage::Failover,
            decision: Decision::Reject,
            who: "oncall-dr@example.com",
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap();
    wait_for_end(&env, &arn).await;
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpo_breach_with_ask_policy_needs_a_second_approval() {
    let (env, plan) =
        setup(|p| p.replication.on_breach = lifeboat_core::plan::RpoBreachPolicy::Ask).await;
    common::replica_two_hours_behind(&env, &plan).await;
    let r = drive(&env, &plan, Answer::Approve).await;
    assert!(r.outcome.is_success(), "{:#?}", r.report);
    assert!(
        !r.report.rpo.as_ref().unwrap().acceptable,
        "the breach is reported"
    );
    let second: ApprovalRecord = env
        .deps
        .ledger
        .get(&approval_key(
            &lifeboat_core::run::RunId(r.run_id.clone()),
            ApprovalStage::RpoBreach,
        ))
        .await
        .unwrap()
        .expect("a second approval was requested")
        .value;
    assert!(second.decision.is_some());
    assert!(r.report.lessons_learned.iter().any(|l| l.contains("RPO")));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_survives_a_killed_lambda_5xx_and_a_429_storm() {
    let (env, plan) = setup(|_| {}).await;
    // The sweep's first invocation dies like a Lambda killed mid-step; the state machine's
    // Retry runs it again.
    env.host
        .faults
        .lock()
        .unwrap()
        .crash_next
        .insert("shutdown-sweep".into(), 1);
    // 5% of the primary's API answers are 503; the DR site allows only 3 requests a second on
    // every family (a 429 storm for a client that expects 10–20).
    env.admin_post(
        SiteRole::Primary,
        "faults",
        serde_json::json!({"status": 503, "probability": 0.05, "body": {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "injected"}}),
    )
    .await
    .unwrap();
    common::rate_limit_storm(&env, SiteRole::Dr, 3).await;

    let r = drive(&env, &plan, Answer::Approve).await;
    assert_eq!(r.outcome, Outcome::Succeeded, "{:#?}", r.report);
    assert!(r.verdict.never_both_active);
    let log = env.host.log.lock().unwrap().clone();
    assert!(
        log.iter()
            .any(|i| i.step == "shutdown-sweep" && i.error.as_deref() == Some("Runtime.ExitError")),
        "the crash happened"
    );
    // Each resource at the primary got exactly one successful write, despite the crash and the 5xx.
    let requests = env.admin_get(SiteRole::Primary, "requests").await.unwrap();
    let mut writes: std::collections::BTreeMap<String, usize> = Default::default();
    for q in requests["requests"].as_array().unwrap() {
        if q["method"] == "POST" && q["status"] == 200 {
            let target = q["body"]
                .get("job_id")
                .or_else(|| q["body"].get("cluster_id"))
                .or_else(|| q["body"].get("instance_pool_id"))
                .or_else(|| q["body"].get("run_id"))
                .map(|v| v.to_string())
                .unwrap_or_else(|| q["path"].to_string());
            *writes.entry(format!("{} {target}", q["path"])).or_default() += 1;
        }
    }
    assert!(!writes.is_empty());
    assert!(
        writes.values().all(|n| *n == 1),
        "repeated effective writes: {writes:?}"
    );
    let dr_stats = env.admin_get(SiteRole::Dr, "stats").await.unwrap();
    assert!(
        dr_stats["rate_limited_total"].as_u64().unwrap() > 0,
        "the storm was real: {dr_stats}"
    );
    env.stop().await;
}

// --- Databricks Managed DR: the failover group -------------------------------------------------

/// Arms a one-shot behaviour of the plan's group in the account emulator (`fail-next`,
/// `stale-next`, `lose-answer-next`).
async fn arm_group(env: &LocalEnv, plan: &Plan, what: &str) {
    let group = &plan.managed_dr.as_ref().unwrap().failover_group;
    env.account_admin(
        &format!("failover-groups/{group}/{what}"),
        serde_json::json!({}),
    )
    .await
    .unwrap();
}

/// The failover requests the account API received: (target region, failover type, etag sent,
/// status).
async fn group_failovers(env: &LocalEnv) -> Vec<(String, String, bool, u64)> {
    env.account_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r["method"] == "POST" && r["path"].as_str().unwrap().ends_with("/failover"))
        .map(|r| {
            (
                r["body"]["target_primary_region"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r["body"]["failover_type"].as_str().unwrap().to_string(),
                r["body"]["etag"].is_string(),
                r["status"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn failover_run(plan: &Plan) -> lifeboat_core::run::RunContext {
    lifeboat_core::incident::run_context(
        plan,
        lifeboat_core::run::RunKind::Failover,
        lifeboat_core::plan::Direction::Failover,
        lifeboat_core::run::Trigger {
            source: lifeboat_core::run::TriggerSource::Operator,
            summary: "managed DR step".into(),
            declared_at: chrono::Utc::now(),
            event_arn: None,
            incident_started_at: None,
        },
        None,
    )
}

/// Invokes `managed-failover` (the real binary under its policy) until it reports done.
async fn managed_failover_until_done(env: &LocalEnv, input: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = env.invoke("managed-failover", input).await.unwrap();
        if out["done"] == true {
            return out;
        }
        assert!(Instant::now() < deadline, "never done: {out}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_primary_gets_a_forced_group_failover_and_a_changed_group_is_read_again() {
    let (env, plan) = setup(common::with_managed_dr).await;
    let m = plan.managed_dr.clone().unwrap();
    let before = common::group_of(&env, &plan).await;
    assert_eq!(
        before.effective_primary_region.as_deref(),
        Some("us-east-1")
    );
    // The primary's region goes down: its workspace stops answering and replication stops.
    env.region_outage(SiteRole::Primary, true).await.unwrap();
    // Someone changes the group between Lifeboat's read and its request.
    arm_group(&env, &plan, "stale-next").await;
    let run = failover_run(&plan);
    let input = serde_json::json!({ "run": run });
    // The group's replication point is an RPO source; it stopped with the region.
    let rpo = env.invoke("replication-check", &input).await.unwrap();
    assert_eq!(rpo["managed_dr"]["kind"], "managed_dr", "{rpo}");
    assert_eq!(rpo["managed_dr"]["name"], m.group_name());
    assert!(
        rpo["managed_dr"]["finding"]
            .as_str()
            .is_some_and(|f| f.contains("not advancing")),
        "{rpo}"
    );
    let done = managed_failover_until_done(&env, &input).await;
    assert_eq!(done["status"], "active", "{done}");
    assert_eq!(done["region_before"], "us-east-1");
    assert_eq!(done["region_now"], "us-west-2");
    assert_eq!(done["failover_type"], "forced", "{done}");
    assert_eq!(done["stale_etag_retries"], 1, "{done}");
    assert_eq!(
        done["attempts"], 1,
        "one failover asked, however often it was looked at"
    );
    assert_eq!(
        done["stable_url"]["routes_to"],
        lifeboat::local::DR_WORKSPACE_ID
    );
    // The first request carried the etag it had read and was refused; the second went through.
    assert_eq!(
        group_failovers(&env).await,
        vec![
            ("us-west-2".into(), "FORCED".into(), true, 409),
            ("us-west-2".into(), "FORCED".into(), true, 200),
        ]
    );
    // The replication point stopped with the region: the RPO source says so.
    let group = common::group_of(&env, &plan).await;
    assert_eq!(group.has_replication_point_blocking_errors, Some(true));
    // Asked again (a retried Lambda), it does nothing more.
    let again = env.invoke("managed-failover", &input).await.unwrap();
    assert_eq!(again["done"], true);
    assert_eq!(group_failovers(&env).await.len(), 2);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_failover_pauses_for_a_human_and_a_retry_moves_it() {
    use lifeboat_core::intervention::{decide, InterventionAction};
    let (env, plan) = setup(common::with_managed_dr).await;
    arm_group(&env, &plan, "fail-next").await;
    let (arn, run_id) = approved_failover(&env, &plan, "GROUP-FAILS").await;
    // The approver saw the group's replication point beside the buckets and tables.
    let approval = wait_for_approval(&env, &run_id).await;
    assert!(
        approval.evidence.rpo.iter().any(|l| l
            .starts_with("Managed DR group accounts/local-account/failover-groups/sales: ")
            && l.ends_with("ok")),
        "{:?}",
        approval.evidence.rpo
    );
    let paused = wait_paused(&env, &run_id).await;
    assert_eq!(paused.failed_state, "ManagedFailover");
    // Nothing was started at DR while the group had not moved.
    let failed = common::group_of(&env, &plan).await;
    assert_eq!(
        failed.state,
        Some(lifeboat_core::databricks::disaster_recovery::FailoverGroupState::FailoverFailed)
    );
    assert_eq!(
        failed.effective_primary_region.as_deref(),
        Some("us-east-1")
    );
    assert!(
        env.deps
            .ledger
            .get::<Value>(&keys::startup(&lifeboat_core::run::RunId(run_id.clone())))
            .await
            .unwrap()
            .is_none(),
        "start-up did not run"
    );
    decide(
        &env.deps,
        &lifeboat_core::run::RunId(run_id.clone()),
        InterventionAction::Retry,
        "alice@example.com",
        "cli",
        None,
    )
    .await
    .unwrap();
    let (status, _) = wait_for_end(&env, &arn).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    let group = common::group_of(&env, &plan).await;
    assert_eq!(group.effective_primary_region.as_deref(), Some("us-west-2"));
    assert_eq!(
        common::stable_url_routes_to(&env, &plan).await,
        lifeboat::local::DR_WORKSPACE_ID
    );
    // Planned both times: the primary answered.
    assert_eq!(
        group_failovers(&env).await,
        vec![
            (
                "us-west-2".into(),
                "FAILOVER_TYPE_UNSPECIFIED".into(),
                true,
                200
            ),
            (
                "us-west-2".into(),
                "FAILOVER_TYPE_UNSPECIFIED".into(),
                true,
                200
            ),
        ]
    );
    let report = common::report_of(&env, &run_id).await;
    let managed = report.managed_dr.as_ref().expect("a Managed DR section");
    assert_eq!(managed.region_now.as_deref(), Some("us-west-2"));
    assert_eq!(managed.attempts, 2);
    let rpo = report.rpo.as_ref().unwrap().managed_dr.as_ref().unwrap();
    assert!(rpo.ok && rpo.rpo_seconds.is_some(), "{rpo:?}");
    let markdown = lifeboat_core::report::markdown::render_markdown(&report);
    assert!(
        markdown.contains("## Managed DR failover group")
            && markdown.contains("us-east-1 → us-west-2")
            && markdown.contains("| managed_dr |"),
        "{markdown}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_after_the_group_moved_puts_it_back_and_restores_the_primary() {
    use lifeboat_core::intervention::{decide, InterventionAction};
    let (env, plan) = setup(|p| {
        common::with_managed_dr(p);
        // Validation fails after the group moved: the run pauses there.
        p.validation.queries[0].expect_rows = Some(vec![vec!["51".into()]]);
    })
    .await;
    let live_before = unpaused(&activations(&env, SiteRole::Primary).await);
    let (arn, run_id) = approved_failover(&env, &plan, "GROUP-ABORT").await;
    let paused = wait_paused(&env, &run_id).await;
    assert_eq!(paused.failed_state, "ValidateWorkspace");
    assert_eq!(
        common::group_of(&env, &plan)
            .await
            .effective_primary_region
            .as_deref(),
        Some("us-west-2")
    );
    decide(
        &env.deps,
        &lifeboat_core::run::RunId(run_id.clone()),
        InterventionAction::Abort,
        "alice@example.com",
        "cli",
        Some("validation says the data is wrong".into()),
    )
    .await
    .unwrap();
    wait_for_end(&env, &arn).await;
    let report = common::report_of(&env, &run_id).await;
    assert_eq!(report.outcome, Outcome::Aborted, "{report:#?}");
    // The group is back at the primary, and so is the stable URL.
    assert_eq!(
        common::group_of(&env, &plan)
            .await
            .effective_primary_region
            .as_deref(),
        Some("us-east-1")
    );
    assert_eq!(
        common::stable_url_routes_to(&env, &plan).await,
        lifeboat::local::PRIMARY_WORKSPACE_ID
    );
    assert_eq!(
        group_failovers(&env)
            .await
            .into_iter()
            .map(|(region, _, _, status)| (region, status))
            .collect::<Vec<_>>(),
        vec![("us-west-2".into(), 200), ("us-east-1".into(), 200)]
    );
    assert_eq!(
        unpaused(&activations(&env, SiteRole::Primary).await),
        live_before
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_schedule_keeps_each_sites_configuration_recent() {
    use lifeboat_core::drift::snapshot::ConfigSnapshot;
    let (env, plan) = setup(|_| {}).await;
    let tick = serde_json::json!({ "scheduled_snapshot": true });
    let first = env.invoke("dr-config-check", &tick).await.unwrap();
    assert_eq!(first["primary"]["result"], "taken", "{first}");
    assert_eq!(first["dr"]["result"], "taken", "{first}");
    let key = keys::snapshot(&plan.name, SiteRole::Primary);
    let stored: ConfigSnapshot = env.deps.ledger.get(&key).await.unwrap().unwrap().value;
    assert_eq!(
        first["primary"]["jobs"].as_u64(),
        Some(stored.jobs.len() as u64)
    );
    // Within the plan's interval nothing is read again.
    let second = env.invoke("dr-config-check", &tick).await.unwrap();
    assert_eq!(second["primary"]["result"], "fresh", "{second}");
    // An hour later, with the primary's region down: the old snapshot is kept, its age named.
    let mut old = stored.clone();
    old.taken_at = Some(chrono::Utc::now() - chrono::Duration::hours(1));
    env.deps.ledger.put(&key, &old).await.unwrap();
    env.region_outage(SiteRole::Primary, true).await.unwrap();
    let down = env.invoke("dr-config-check", &tick).await.unwrap();
    assert_eq!(down["primary"]["result"], "unreachable", "{down}");
    let kept = down["primary"]["kept_age_seconds"].as_i64().unwrap();
    assert!((3590..3700).contains(&kept), "{down}");
    assert_eq!(down["dr"]["result"], "fresh");
    let still: ConfigSnapshot = env.deps.ledger.get(&key).await.unwrap().unwrap().value;
    assert_eq!(still.taken_at, old.taken_at, "kept, not overwritten");
    // Back: the next tick takes it again.
    env.region_outage(SiteRole::Primary, false).await.unwrap();
    let back = env.invoke("dr-config-check", &tick).await.unwrap();
    assert_eq!(back["primary"]["result"], "taken", "{back}");
    // Production at DR: the fenced primary keeps its snapshot from before (what a failback
    // restores), however old.
    env.deps.ledger.put(&key, &old).await.unwrap();
    env.deps
        .ledger
        .put(
            &keys::active_site(&plan.name),
            &lifeboat_core::run::ActiveSite {
                active: SiteRole::Dr,
                since: chrono::Utc::now(),
                run_id: "earlier-failover".into(),
            },
        )
        .await
        .unwrap();
    let fenced = env.invoke("dr-config-check", &tick).await.unwrap();
    assert_eq!(fenced["primary"]["result"], "kept", "{fenced}");
    assert!(
        fenced["primary"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fenced since run earlier-failover")),
        "{fenced}"
    );
    // A run in progress: neither site is read.
    env.deps
        .ledger
        .put(
            &keys::lock(&plan.name),
            &serde_json::json!({"run_id": "running-now", "acquired_at": chrono::Utc::now()}),
        )
        .await
        .unwrap();
    let locked = env.invoke("dr-config-check", &tick).await.unwrap();
    assert_eq!(locked["primary"]["result"], "kept", "{locked}");
    assert_eq!(locked["dr"]["result"], "kept", "{locked}");
    let still: ConfigSnapshot = env.deps.ledger.get(&key).await.unwrap().unwrap().value;
    assert_eq!(still.taken_at, old.taken_at);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_failover_answer_is_not_asked_again_and_an_abort_still_puts_the_group_back() {
    let (env, plan) = setup(common::with_managed_dr).await;
    // The request is carried out, but its answer never arrives.
    arm_group(&env, &plan, "lose-answer-next").await;
    let run = failover_run(&plan);
    let input = serde_json::json!({ "run": run });
    let done = managed_failover_until_done(&env, &input).await;
    assert_eq!(done["region_now"], "us-west-2", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    // One request, its answer lost (status 0): never sent a second time.
    assert_eq!(
        group_failovers(&env).await,
        vec![(
            "us-west-2".into(),
            "FAILOVER_TYPE_UNSPECIFIED".into(),
            true,
            0
        )]
    );
    // The ask was recorded before it was sent, so an abort knows the group moved.
    let restore = serde_json::json!({ "run": run, "restore_source": true });
    let back = managed_failover_until_done(&env, &restore).await;
    assert_eq!(back["status"], "active", "{back}");
    assert_eq!(
        common::group_of(&env, &plan)
            .await
            .effective_primary_region
            .as_deref(),
        Some("us-east-1")
    );
    assert_eq!(group_failovers(&env).await.len(), 2);
    env.stop().await;
}
