//! Scheduled health probes through `health-ingest` (`{"lifeboat_probe": {}}`): the Databricks
//! status page (a local Status.io stand-in) and deep probes of the primary workspace.

use lifeboat::local::LocalEnv;
use lifeboat_core::{
    plan::{Plan, SiteRole},
    steps::health_ingest::IngestOutput,
};

async fn status_page(code_east: u32) -> String {
    let doc = serde_json::json!({"result": {
        "status_overall": {"status": "x", "status_code": code_east, "updated": "2026-11-26T06:00:00Z"},
        "status": [{"id": "c1", "name": "Compute", "status": "x", "status_code": code_east, "containers": [
            {"id": "k1", "name": "AWS us-east-1", "status": if code_east >= 400 { "Partial Service Disruption" } else { "Operational" }, "status_code": code_east},
            {"id": "k2", "name": "AWS us-west-2", "status": "Operational", "status_code": 100}]}],
        "incidents": [], "maintenance": {"active": [], "upcoming": []}}});
    let app = axum::Router::new().route(
        "/1.0/status/{page}",
        axum::routing::get(move || async move { axum::Json(doc) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/1.0/status/databricks-aws",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    url
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
