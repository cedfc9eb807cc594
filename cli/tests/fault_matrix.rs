//! The fault matrix: one failover per scenario, on the shipped binaries (template environment,
//! IAM enforced), each with one kind of fault injected — at a Databricks site (the emulators'
//! fault rules and rate limits), at AWS (errors the host answers to the binaries' calls instead
//! of moto), or to the functions themselves (killed mid-invocation, timed out). Every row then
//! checks the same invariants:
//!
//! - a clear outcome: the one the row expects, the execution ended, the report in the ledger;
//! - never both active (both sites' activity timelines);
//! - none left behind: after a move every activation live before is live at exactly one site;
//!   without a move the primary runs exactly what it ran before and DR runs nothing;
//! - the lock released;
//! - nothing lost in the ledger: no object deleted except a released lock;
//! - no IAM denial.
//!
//! The table and its results are published in RELIABILITY.md. One row alone:
//! `FAULT_MATRIX_ROW=route53_down cargo test -p lifeboat --test fault_matrix -- --nocapture`.

mod common;

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use lifeboat::{
    drill::{self, Answer, DrillKind},
    local::{
        host::{AwsFault, HostFaults},
        LocalEnv, LocalOptions,
    },
    verdict::live_activations,
};
use lifeboat_core::ledger::keys;
use lifeboat_core::{plan::SiteRole, report::Outcome};
use serde_json::{json, Value};
use yaml_serde::Value as Yaml;

/// One injected fault.
#[derive(Clone)]
enum Fault {
    /// A fault rule at a site's emulator (`POST /__emulator/faults`).
    Databricks(SiteRole, Value),
    /// Every API family of a site limited to this many requests a second (a 429 storm).
    RateLimits(SiteRole, u32),
    /// AWS answers these calls of the binaries with an error (or a canned answer).
    Aws(AwsFault),
    /// The function's process is killed once, while it holds an invocation.
    Killed(&'static str),
    /// The function's `Timeout` in the template (seconds).
    Timeout(&'static str, u64),
    /// The replica's canary is two hours old (replication behind).
    ReplicaBehind,
    /// Realistic lifecycles (cluster start 180–300 s, warehouse start 60–180 s, emulated)
    /// at this clock speed-up, and the plan's `startup.ready_timeout_seconds`.
    SlowStartup {
        clock_speed: f64,
        ready_timeout_seconds: u32,
    },
    /// The plan moves clients with the statically stable switch (ARC routing control).
    RoutingControlSwitch,
}

struct Scenario {
    faults: Vec<Fault>,
    expect: Outcome,
}

fn aws(action: &str, status: u16, code: &str, times: u32) -> Fault {
    Fault::Aws(AwsFault::error(action, status, code, times))
}

fn aws_for(function: &str, action: &str, status: u16, code: &str, times: u32) -> Fault {
    let mut f = AwsFault::error(action, status, code, times);
    f.function = Some(function.into());
    Fault::Aws(f)
}

const ALWAYS: u32 = u32::MAX;

/// `dns-switch`'s second `PutParameter` fails all three SDK attempts; the first went through.
fn ssm_fails_after_one_write() -> Fault {
    let mut f = AwsFault::error("ssm:PutParameter", 500, "InternalServerError", 3);
    f.function = Some("dns-switch".into());
    f.after = 1;
    Fault::Aws(f)
}

/// Route 53 applies `dns-switch`'s change but answers it PENDING, not INSYNC.
fn dns_change_answered_pending() -> Fault {
    let mut accepted = AwsFault::error("route53:ChangeResourceRecordSets", 200, "", ALWAYS);
    accepted.function = Some("dns-switch".into());
    accepted.rewrite = Some(("INSYNC".into(), "PENDING".into()));
    Fault::Aws(accepted)
}

/// Every `GetChange` of `dns-switch` answers PENDING.
fn dns_change_stays_pending() -> Fault {
    let mut pending = AwsFault::error("route53:GetChange", 200, "", ALWAYS);
    pending.function = Some("dns-switch".into());
    pending.body = Some(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<GetChangeResponse \
         xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><ChangeInfo>\
         <Id>/change/C0LIFEBOAT</Id><Status>PENDING</Status>\
         <SubmittedAt>2026-11-30T17:00:00.000Z</SubmittedAt></ChangeInfo></GetChangeResponse>"
            .into(),
    );
    Fault::Aws(pending)
}

fn template_with_timeouts(faults: &[Fault]) -> Option<PathBuf> {
    let timeouts: Vec<(&str, u64)> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Timeout(logical, secs) => Some((*logical, *secs)),
            _ => None,
        })
        .collect();
    if timeouts.is_empty() {
        return None;
    }
    let root = lifeboat::local::moto::repo_root().unwrap();
    let text = std::fs::read_to_string(root.join("infra/template.yaml")).unwrap();
    let mut doc: Yaml = yaml_serde::from_str(&text).unwrap();
    for (logical, secs) in timeouts {
        doc["Resources"][logical]["Properties"]["Timeout"] = Yaml::from(secs);
    }
    let path = std::env::temp_dir().join(format!(
        "lifeboat-matrix-{}.yaml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, yaml_serde::to_string(&doc).unwrap()).unwrap();
    Some(path)
}

async fn inject(env: &LocalEnv, plan: &lifeboat_core::plan::Plan, fault: &Fault) {
    match fault {
        Fault::Databricks(site, rule) => {
            env.admin_post(*site, "faults", rule.clone()).await.unwrap();
        }
        Fault::RateLimits(site, per_second) => {
            common::rate_limit_storm(env, *site, *per_second).await
        }
        Fault::Aws(f) => lock_faults(env).aws.push(f.clone()),
        Fault::Killed(function) => {
            lock_faults(env).crash_next.insert(function.to_string(), 1);
        }
        Fault::Timeout(..) | Fault::SlowStartup { .. } | Fault::RoutingControlSwitch => {}
        Fault::ReplicaBehind => common::replica_two_hours_behind(env, plan).await,
    }
}

fn lock_faults(env: &LocalEnv) -> std::sync::MutexGuard<'_, HostFaults> {
    env.host
        .faults
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where clients are sent: the alias's CNAME and the plan's client parameters.
#[derive(Debug, PartialEq)]
struct Clients {
    cname: Option<String>,
    parameters: Vec<Option<String>>,
}

async fn clients(env: &LocalEnv, plan: &lifeboat_core::plan::Plan) -> Clients {
    let dns = plan.dns.as_ref().expect("the matrix plan moves clients");
    let fqdn = format!("{}.", dns.record_name.trim_end_matches('.'));
    let sets = env
        .aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&dns.hosted_zone_id)
        .start_record_name(&fqdn)
        .send()
        .await
        .unwrap();
    // What the name answers: the plain CNAME, or of a failover pair the record the routing
    // control selects (On: PRIMARY).
    let serving_primary = dns.routing_control.as_ref().map(|rc| {
        env.host
            .arc
            .lock()
            .unwrap()
            .get(&rc.control_arn)
            .is_some_and(|(_, state)| state == "On")
    });
    let cname = sets
        .resource_record_sets()
        .iter()
        .filter(|r| r.name() == fqdn)
        .find(|r| match (r.failover(), serving_primary) {
            (None, _) => true,
            (Some(f), Some(primary)) => {
                primary == (f == &aws_sdk_route53::types::ResourceRecordSetFailover::Primary)
            }
            (Some(_), None) => false,
        })
        .and_then(|r| r.resource_records().first())
        .map(|v| v.value().to_string());
    let mut parameters = Vec::new();
    for setting in dns.all_client_settings() {
        let name = &setting.parameter;
        let value = env.aws.ssm.get_parameter().name(name).send().await.ok();
        parameters
            .push(value.and_then(|v| v.parameter().and_then(|p| p.value().map(str::to_string))));
    }
    Clients { cname, parameters }
}

/// Ledger keys that have a delete marker (a deleted object).
async fn deleted_ledger_keys(env: &LocalEnv) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut marker = None;
    loop {
        let page = env
            .aws
            .s3
            .list_object_versions()
            .bucket(lifeboat::local::LEDGER_BUCKET)
            .set_key_marker(marker.clone())
            .send()
            .await
            .unwrap();
        for d in page.delete_markers() {
            out.insert(d.key().unwrap_or_default().to_string());
        }
        if page.is_truncated() == Some(true) {
            marker = page.next_key_marker().map(str::to_string);
        } else {
            return out;
        }
    }
}

async fn run(name: &str, scenario: Scenario) {
    let template = template_with_timeouts(&scenario.faults);
    let mut options = LocalOptions {
        lifecycle_delay: Duration::from_millis(200),
        binaries: true,
        template: template.clone(),
        ..LocalOptions::default()
    };
    let mut ready_timeout = None;
    for f in &scenario.faults {
        if let Fault::SlowStartup {
            clock_speed,
            ready_timeout_seconds,
        } = f
        {
            options.lifecycle_profile = databricks_emulator::LifecycleProfile::Realistic;
            options.clock_speed = *clock_speed;
            ready_timeout = Some(*ready_timeout_seconds);
        }
    }
    let routing_control = scenario
        .faults
        .iter()
        .any(|f| matches!(f, Fault::RoutingControlSwitch));
    let (env, plan) = common::setup_with(options, |plan| {
        if let Some(t) = ready_timeout {
            plan.startup.ready_timeout_seconds = t;
        }
        if routing_control {
            if let Some(dns) = plan.dns.as_mut() {
                dns.switch = lifeboat_core::plan::SwitchMode::RoutingControl;
            }
        }
    })
    .await;
    let live_primary_before =
        live_activations(&env.admin_get(SiteRole::Primary, "state").await.unwrap());
    let live_dr_before = live_activations(&env.admin_get(SiteRole::Dr, "state").await.unwrap());
    let clients_before = clients(&env, &plan).await;
    for f in &scenario.faults {
        inject(&env, &plan, f).await;
    }
    let result = drill::drive(
        &env,
        &plan,
        &common::options(DrillKind::Failover, Answer::Approve),
    )
    .await
    .unwrap_or_else(|e| panic!("{name}: the drill did not reach an end: {e:#}"));
    // Faults off: the checks below read both sites and the ledger as an operator would.
    let http = lifeboat_core::http::client();
    for site in [SiteRole::Primary, SiteRole::Dr] {
        let url = format!("{}/__emulator/faults", env.emulator(site).url());
        http.delete(url).send().await.unwrap();
    }
    // A bounded fault that never hit proves nothing: the row must see it used up.
    let missed: Vec<String> = lock_faults(&env)
        .aws
        .iter()
        .filter(|f| f.remaining != ALWAYS && f.remaining > 0)
        .map(|f| format!("{} by {:?} ({} left)", f.action, f.function, f.remaining))
        .collect();
    lock_faults(&env).aws.clear();
    let artifacts = drill::artifacts(&env);
    let primary_now = live_activations(&env.admin_get(SiteRole::Primary, "state").await.unwrap());
    let dr_now = live_activations(&env.admin_get(SiteRole::Dr, "state").await.unwrap());
    let lock = env
        .deps
        .ledger
        .get_raw(&keys::lock(&plan.name))
        .await
        .unwrap();
    let deleted = deleted_ledger_keys(&env).await;
    let clients_now = clients(&env, &plan).await;
    // What clients must read once production runs at DR (warehouses resolved there).
    let dr = plan.site(SiteRole::Dr);
    let dr_client = env.deps.workspaces.client(dr).await.unwrap();
    let settings_at_dr: Vec<Option<String>> = lifeboat_core::clients::resolve(
        Some(&dr_client),
        &plan.dns.as_ref().unwrap().all_client_settings(),
        dr,
    )
    .await
    .unwrap()
    .into_iter()
    .map(|r| Some(r.value))
    .collect();
    let report_in_ledger = env
        .deps
        .ledger
        .get_raw(&keys::report(
            &lifeboat_core::run::RunId(result.run_id.clone()),
            lifeboat_core::ledger::keys::ReportFormat::Json,
        ))
        .await
        .unwrap()
        .is_some();
    env.stop().await;
    if let Some(t) = template {
        let _ = std::fs::remove_file(t);
    }

    // A clear outcome.
    assert_eq!(
        result.outcome,
        scenario.expect,
        "{name}: outcome (execution {}); report:\n{}",
        result.execution_status,
        serde_json::to_string(&result.report)
            .unwrap_or_default()
            .chars()
            .take(3000)
            .collect::<String>()
    );
    assert!(
        result.execution_status == "SUCCEEDED" || result.execution_status == "FAILED",
        "{name}: execution {}",
        result.execution_status
    );
    assert!(report_in_ledger, "{name}: no report in the ledger");
    assert!(
        missed.is_empty(),
        "{name}: injected faults never hit: {missed:?}"
    );
    // Never both active.
    assert!(
        result.verdict.never_both_active,
        "{name}: both active: {:?}",
        result.verdict.overlaps
    );
    // None left behind.
    if result.outcome.moved_production() {
        assert!(
            result.verdict.none_left_behind,
            "{name}: left behind {:?}",
            result.verdict.left_behind
        );
    } else {
        assert_eq!(
            primary_now, live_primary_before,
            "{name}: without a move the primary runs what it ran"
        );
        assert_eq!(
            dr_now, live_dr_before,
            "{name}: without a move DR runs nothing new"
        );
    }
    // Clients where production runs: at the target after a move, as they were without one
    // (an aborted switch is undone).
    if result.outcome.moved_production() {
        let expected = Clients {
            cname: Some(dr.cname_target()),
            parameters: settings_at_dr,
        };
        // Nothing lost: the values recorded as "before" (what an abort or a failback puts
        // back) are what clients read before the run, even when the switch was retried after
        // some of its writes.
        let recorded: Vec<Option<String>> = result
            .report
            .dns
            .as_ref()
            .map(|d| d.parameters.iter().map(|p| p.previous.clone()).collect())
            .unwrap_or_default();
        assert_eq!(
            recorded, clients_before.parameters,
            "{name}: the switch recorded other values as before"
        );
        assert_eq!(
            clients_now, expected,
            "{name}: clients not at DR after the move"
        );
    } else {
        assert_eq!(
            clients_now, clients_before,
            "{name}: clients moved although production did not"
        );
    }
    // The lock released; nothing lost.
    assert!(lock.is_none(), "{name}: the lock is still held");
    assert!(
        deleted.iter().all(|k| k.starts_with("locks/")),
        "{name}: ledger objects deleted: {deleted:?}"
    );
    assert!(
        artifacts.denied.is_empty(),
        "{name}: IAM denied {:?}",
        artifacts.denied
    );
}

macro_rules! matrix {
    ($($name:ident: [$($fault:expr),* $(,)?] => $expect:expr;)*) => {
        /// Every row: its name and scenario.
        fn rows() -> Vec<(&'static str, Scenario)> {
            vec![$((stringify!($name), Scenario { faults: vec![$($fault),*], expect: $expect })),*]
        }
    };
}

/// Rows run this many at a time: each has its own moto, emulators and host, and mostly waits
/// (retries, back-offs, lifecycles), so a few at once fit on 2 cores.
const AT_ONCE: usize = 5;

/// Runs every row (a few at once) and reports every row that broke an invariant, by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_fault_matrix_keeps_the_invariants() {
    let rows = rows();
    assert!(rows.len() >= 25, "{} rows", rows.len());
    let only = std::env::var("FAULT_MATRIX_ROW").ok();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut running = Vec::new();
    for (name, scenario) in rows {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let slots = slots.clone();
        running.push((
            name,
            tokio::spawn(async move {
                let _slot = slots.acquire_owned().await;
                let started = std::time::Instant::now();
                run(name, scenario).await;
                started.elapsed()
            }),
        ));
    }
    assert!(!running.is_empty(), "no row is named {only:?}");
    let mut failed = Vec::new();
    for (name, handle) in running {
        match handle.await {
            Ok(took) => println!("{name}: ok ({:.1} s)", took.as_secs_f64()),
            Err(e) => {
                let why = e
                    .try_into_panic()
                    .ok()
                    .and_then(|p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    })
                    .unwrap_or_else(|| "cancelled".into());
                println!("{name}: FAILED: {why}");
                failed.push(format!(
                    "{name}: {}",
                    why.chars().take(600).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "rows that broke an invariant:\n{}",
        failed.join("\n")
    );
}

matrix! {
    // Databricks: rate limits, 5xx, slow answers, dropped connections.
    primary_429_storm: [Fault::RateLimits(SiteRole::Primary, 3)] => Outcome::Succeeded;
    dr_429_storm: [Fault::RateLimits(SiteRole::Dr, 3)] => Outcome::Succeeded;
    primary_5xx_burst: [Fault::Databricks(SiteRole::Primary, json!({"status": 503, "count": 15}))] => Outcome::Succeeded;
    dr_5xx_burst: [Fault::Databricks(SiteRole::Dr, json!({"status": 500, "count": 15, "body": {"error_code": "INTERNAL_ERROR", "message": "injected"}}))] => Outcome::Succeeded;
    primary_slow_answers: [Fault::Databricks(SiteRole::Primary, json!({"latency_ms": 1500, "probability": 0.2}))] => Outcome::Succeeded;
    dr_dropped_connections: [Fault::Databricks(SiteRole::Dr, json!({"drop_connection": true, "probability": 0.1}))] => Outcome::Succeeded;
    dr_cannot_start_clusters: [Fault::Databricks(SiteRole::Dr, json!({"method": "POST", "path_prefix": "/api/2.1/clusters/start", "status": 503}))] => Outcome::Aborted;
    dr_sql_down_validation_fails: [Fault::Databricks(SiteRole::Dr, json!({"path_prefix": "/api/2.0/sql/statements", "status": 500}))] => Outcome::Aborted;
    // Functions killed mid-invocation (the state machine's Retry runs them again).
    run_ledger_killed: [Fault::Killed("run-ledger")] => Outcome::Succeeded;
    request_approval_killed: [Fault::Killed("request-approval")] => Outcome::Succeeded;
    shutdown_sweep_killed: [Fault::Killed("shutdown-sweep")] => Outcome::Succeeded;
    dr_startup_killed: [Fault::Killed("dr-startup")] => Outcome::Succeeded;
    activate_schedules_killed: [Fault::Killed("activate-schedules")] => Outcome::Succeeded;
    validate_workspace_killed: [Fault::Killed("validate-workspace")] => Outcome::Succeeded;
    dns_switch_killed: [Fault::Killed("dns-switch")] => Outcome::Succeeded;
    // A function that outlives its Timeout, every time.
    // Start-up slower than the plan allows: realistic cluster and warehouse starts (3–5 min,
    // emulated) at a 30x clock take 6–10 s against a 3 s `ready_timeout_seconds`.
    startup_slower_than_its_timeout: [Fault::SlowStartup { clock_speed: 30.0, ready_timeout_seconds: 3 }] => Outcome::Aborted;
    dr_startup_times_out: [Fault::Timeout("DrStartupFunction", 1), Fault::Databricks(SiteRole::Dr, json!({"path_prefix": "/api/2.1/clusters", "latency_ms": 2500}))] => Outcome::Aborted;
    // AWS: transient errors the SDK retries, and outages that last.
    secrets_throttled: [aws_for("dr-config-check", "secretsmanager:GetSecretValue", 400, "ThrottlingException", 2)] => Outcome::Succeeded;
    // A pre-check that cannot run refuses the run before the first write.
    secrets_down_before_approval: [aws_for("dr-config-check", "secretsmanager:GetSecretValue", 503, "ServiceUnavailable", ALWAYS)] => Outcome::Refused;
    ledger_writes_slow_down: [aws_for("shutdown-sweep", "s3:PutObject", 503, "SlowDown", 2)] => Outcome::Succeeded;
    // Within the SDK's three attempts (a longer outage of the first read fails health-ingest,
    // and EventBridge redelivers the event: tests/detection.rs).
    ledger_reads_fail_briefly: [aws_for("health-ingest", "s3:GetObject", 500, "InternalError", 2)] => Outcome::Succeeded;
    notifications_down: [aws_for("notify", "sns:Publish", 500, "InternalError", ALWAYS)] => Outcome::Succeeded;
    lifecycle_events_down: [aws("events:PutEvents", 500, "InternalException", ALWAYS)] => Outcome::Succeeded;
    route53_throttled: [aws("route53:ChangeResourceRecordSets", 400, "Throttling", 2)] => Outcome::Succeeded;
    // The statically stable switch: two of the three ARC endpoints do not answer, then none.
    arc_endpoints_unavailable: [Fault::RoutingControlSwitch, aws_for("dns-switch", "route53-recovery-cluster:UpdateRoutingControlState", 503, "EndpointTemporarilyUnavailableException", 2)] => Outcome::Succeeded;
    arc_unreachable: [Fault::RoutingControlSwitch, aws("route53-recovery-cluster:UpdateRoutingControlState", 503, "EndpointTemporarilyUnavailableException", ALWAYS)] => Outcome::Aborted;
    route53_down: [aws("route53:ChangeResourceRecordSets", 503, "ServiceUnavailable", ALWAYS)] => Outcome::Aborted;
    // The alias changed but never confirmed: each attempt waits until its deadline, the
    // retries run out, the drill aborts, and the abort points clients back at the primary.
    dns_never_insync: [Fault::Timeout("DnsSwitchFunction", 20), dns_change_answered_pending(), dns_change_stays_pending()] => Outcome::Aborted;
    ssm_down: [aws("ssm:PutParameter", 500, "InternalServerError", ALWAYS)] => Outcome::Aborted;
    // The first client setting written, the second fails all of the SDK's attempts: the
    // state machine's Retry runs the switch again, which must still record the values from
    // before the run (checked for every move), not the one it already wrote.
    ssm_fails_after_the_first_write: [ssm_fails_after_one_write()] => Outcome::Succeeded;
    // Data: replication behind with the plan's `on_breach = "stop"`.
    rpo_breach_stops: [Fault::ReplicaBehind] => Outcome::StoppedRpoBreach;
}
