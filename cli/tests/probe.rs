//! Scheduled health probes through `health-ingest` (`{"lifeboat_probe": {}}`): the Databricks
//! status page (a local Status.io stand-in) and deep probes of the primary workspace, with
//! faults injected at its emulator.

use lifeboat::local::LocalEnv;
use lifeboat_core::{
    incident::IngestOutput,
    plan::{Plan, SiteRole},
    probe::{Baseline, ProbeState, StatusVerdict, STATUS_PAGE_UNKNOWN},
};
use serde_json::json;

/// A Status.io `/1.0/status/{page}` document with the two AWS containers of the demo.
fn status_doc(code_east: u32) -> serde_json::Value {
    json!({"result": {
        "status_overall": {"status": "x", "status_code": code_east, "updated": "2026-11-26T06:00:00Z"},
        "status": [{"id": "c1", "name": "Compute", "status": "x", "status_code": code_east, "containers": [
            {"id": "k1", "name": "AWS us-east-1", "status": if code_east >= 400 { "Partial Service Disruption" } else { "Operational" }, "status_code": code_east},
            {"id": "k2", "name": "AWS us-west-2", "status": "Operational", "status_code": 100}]}],
        "incidents": [], "maintenance": {"active": [], "upcoming": []}}})
}

/// Serves a status document locally; its URL.
async fn serve_status(doc: serde_json::Value) -> String {
    common::serve_status(std::sync::Arc::new(std::sync::Mutex::new(doc))).await
}

async fn status_page(code_east: u32) -> String {
    serve_status(status_doc(code_east)).await
}

mod common;

async fn setup(edit: impl FnOnce(&mut Plan)) -> (LocalEnv, Plan) {
    common::setup(edit).await
}

async fn probe(env: &LocalEnv) -> IngestOutput {
    serde_json::from_value(
        env.invoke("health-ingest", &serde_json::json!({"lifeboat_probe": {}}))
            .await
            .unwrap(),
    )
    .unwrap()
}

async fn executions(env: &LocalEnv) -> usize {
    env.aws
        .sfn
        .list_executions()
        .state_machine_arn(env.deps.config.failover_state_machine_arn.clone().unwrap())
        .send()
        .await
        .unwrap()
        .executions()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_disruption_declares_an_incident_once() {
    let url = status_page(400).await;
    let (env, _plan) = setup(|p| p.monitoring.status_page_url = Some(url)).await;
    let first = probe(&env).await;
    let IngestOutput::Started { run_id, .. } = &first else {
        panic!("{first:?}")
    };
    assert!(run_id.starts_with("probe-sales-platform-"));
    // The next probe of the same incident does not start a second run.
    assert_eq!(
        probe(&env).await,
        IngestOutput::AlreadyStarted {
            run_id: run_id.clone()
        }
    );
    assert_eq!(executions(&env).await, 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_status_page_and_primary_start_nothing() {
    let url = status_page(100).await;
    let (env, _plan) = setup(|p| p.monitoring.status_page_url = Some(url)).await;
    assert!(matches!(probe(&env).await, IngestOutput::Ignored { .. }));
    assert_eq!(executions(&env).await, 0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consecutive_failed_deep_probes_declare_an_incident() {
    let (env, _plan) = setup(|p| p.monitoring.probe_failures_to_declare = 2).await;
    env.outage(SiteRole::Primary, true).await.unwrap();
    let first = probe(&env).await;
    assert!(
        matches!(&first, IngestOutput::Ignored { reason } if reason.contains("1 consecutive")),
        "{first:?}"
    );
    assert_eq!(
        executions(&env).await,
        0,
        "one failed probe is not an incident"
    );
    assert!(matches!(probe(&env).await, IngestOutput::Started { .. }));
    env.stop().await;
}

/// The probe state in the ledger.
async fn probe_state(env: &LocalEnv) -> ProbeState {
    env.deps
        .ledger
        .get("monitor/sales-platform/probe.json")
        .await
        .unwrap()
        .expect("probe state")
        .value
}

async fn baseline(env: &LocalEnv) -> Baseline {
    env.deps
        .ledger
        .get("monitor/sales-platform/baseline.json")
        .await
        .unwrap()
        .expect("baselines")
        .value
}

/// Probes expecting no incident; the reason.
async fn ignored(env: &LocalEnv) -> String {
    match probe(env).await {
        IngestOutput::Ignored { reason } => reason,
        other => panic!("{other:?}"),
    }
}

/// The trigger summary of a started execution.
async fn trigger_summary(env: &LocalEnv, execution_arn: &str) -> String {
    let d = env
        .aws
        .sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .unwrap();
    let input: serde_json::Value = serde_json::from_str(d.input().unwrap()).unwrap();
    input["run"]["trigger"]["summary"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Latency on the primary's clusters list (`count`: that many requests; `None`: all).
async fn slow_clusters_list(env: &LocalEnv, count: Option<u64>) {
    env.admin_post(
        SiteRole::Primary,
        "faults",
        json!({"method": "GET", "path_prefix": "/api/2.1/clusters/list", "latency_ms": 700,
               "count": count}),
    )
    .await
    .unwrap();
}

/// Baselines from three healthy intervals; deviations count over `consecutive`.
async fn with_baselines(consecutive: u32) -> LocalEnv {
    let (env, _plan) = setup(|p| {
        p.monitoring.deep_probes.min_baseline_samples = 3;
        p.monitoring.deep_probes.consecutive_intervals = consecutive;
    })
    .await;
    for _ in 0..3 {
        let reason = ignored(&env).await;
        assert!(reason.contains("no deep-probe deviation"), "{reason}");
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_latency_deviation_declares_an_incident() {
    let env = with_baselines(3).await;
    slow_clusters_list(&env, None).await;
    for i in 1..=2 {
        let reason = ignored(&env).await;
        assert!(
            reason.contains("clusters list") && reason.contains(&format!("for {i} of 3 intervals")),
            "{reason}"
        );
    }
    let third = probe(&env).await;
    let IngestOutput::Started { execution_arn, .. } = &third else {
        panic!("{third:?}")
    };
    let summary = trigger_summary(&env, execution_arn).await;
    assert!(
        summary.contains("clusters list")
            && summary.contains("ms vs baseline")
            && summary.contains("for 3 intervals"),
        "{summary}"
    );
    assert_eq!(executions(&env).await, 1);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_slow_interval_declares_nothing() {
    let env = with_baselines(2).await;
    slow_clusters_list(&env, Some(1)).await;
    let reason = ignored(&env).await;
    assert!(reason.contains("for 1 of 2 intervals"), "{reason}");
    for _ in 0..2 {
        let reason = ignored(&env).await;
        assert!(reason.contains("no deep-probe deviation"), "{reason}");
    }
    assert_eq!(executions(&env).await, 0);
    // The slow sample did not become part of the baseline; the healthy ones after it did.
    let b = baseline(&env).await;
    let list = &b.probes["clusters_list"];
    assert_eq!(list.len(), 5, "{list:?}");
    assert!(list.iter().all(|ms| *ms < 700.0), "{list:?}");
    assert!(probe_state(&env).await.streaks.is_empty());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_job_failure_rate_declares_an_incident() {
    let (env, plan) = setup(|p| {
        let d = &mut p.monitoring.deep_probes;
        d.min_runs = 4;
        d.failure_window_minutes = 5;
        d.consecutive_intervals = 2;
    })
    .await;
    env.admin_post(
        SiteRole::Primary,
        "config",
        json!({"fail_runs": true, "run_duration_ms": 100}),
    )
    .await
    .unwrap();
    let client = env
        .deps
        .workspaces
        .client(&plan.sites.primary)
        .await
        .unwrap();
    for job in client.all_jobs().await.unwrap() {
        client
            .run_now(
                job.job_id.clone(),
                &format!("probe-test-{}", job.job_id),
                None,
            )
            .await
            .unwrap();
    }
    // Wait for the runs to end (FAILED).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let runs = client.all_runs(Default::default()).await.unwrap();
        let failed = runs
            .iter()
            .filter(|r| r.state.result_state.as_deref() == Some("FAILED") && r.end_time > 0)
            .filter(|r| r.start_time > chrono::Utc::now().timestamp_millis() - 60_000)
            .count();
        if failed >= 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{failed} failed runs");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let reason = ignored(&env).await;
    assert!(
        reason.contains("job failure rate 1.00") && reason.contains("for 1 of 2 intervals"),
        "{reason}"
    );
    let second = probe(&env).await;
    let IngestOutput::Started { execution_arn, .. } = &second else {
        panic!("{second:?}")
    };
    let summary = trigger_summary(&env, execution_arn).await;
    assert!(
        summary.contains("job failure rate 1.00 (")
            && summary.contains("runs started in the last 5 min")
            && summary.contains("for 2 intervals"),
        "{summary}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_without_the_configured_container_is_unknown() {
    let url = status_page(100).await;
    let (env, _plan) = setup(|p| {
        p.monitoring.status_page_url = Some(url);
        p.monitoring.status_containers = vec!["AWS eu-west-9".into()];
    })
    .await;
    let reason = ignored(&env).await;
    assert!(
        reason.contains("status page unknown") && reason.contains("`AWS eu-west-9`"),
        "{reason}"
    );
    let state = probe_state(&env).await;
    assert!(
        matches!(&state.status_page, Some(StatusVerdict::Unknown { reason }) if reason.contains("AWS eu-west-9")),
        "{state:?}"
    );
    assert_eq!(state.metrics.get(STATUS_PAGE_UNKNOWN), Some(&1.0));
    // Unknown twice is still no incident.
    ignored(&env).await;
    assert_eq!(executions(&env).await, 0);
    env.stop().await;
}
