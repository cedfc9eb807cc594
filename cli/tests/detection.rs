//! Detection end to end: the AWS Health event corpus through `health-ingest` on the local stack
//! (the real handler, moto's Step Functions), a failed start that stays retryable, and one
//! incident delivered by all three paths — the forwarder from the primary region, the
//! backup-region copy, and the Health API poll — starting one execution.

use std::sync::Arc;

use aws_sdk_sfn::types::ExecutionStatus;
use lifeboat::local::{machine_arn, FAILOVER_MACHINE};
use lifeboat_core::ledger::keys;
use lifeboat_core::{
    health_api::{HealthApiError, HealthEventRecord},
    incident::{run_id_for, IngestOutput},
    steps::health_ingest,
};
use serde_json::Value;

mod common;

fn corpus() -> Vec<(String, Value)> {
    let dir = lifeboat::local::moto::repo_root()
        .unwrap()
        .join("tests/fixtures/health-events");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (name, v)
        })
        .collect()
}

async fn executions_named(env: &lifeboat::local::LocalEnv, name: &str) -> usize {
    env.aws
        .sfn
        .list_executions()
        .state_machine_arn(machine_arn(FAILOVER_MACHINE))
        .send()
        .await
        .unwrap()
        .executions()
        .iter()
        .filter(|e| e.name() == name)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_corpus_through_health_ingest() {
    let (env, _plan) = common::setup(|_| {}).await;
    let mut started = Vec::new();
    for (name, event) in corpus() {
        let out: IngestOutput =
            serde_json::from_value(env.invoke("health-ingest", &event).await.unwrap()).unwrap();
        let expect = event["_lifeboat_expect"].as_str().unwrap();
        let arn = event["detail"]["eventArn"].as_str().unwrap();
        match (&out, expect.strip_prefix("ignored: ")) {
            (IngestOutput::Ignored { reason }, Some(words)) => {
                assert!(reason.contains(words), "{name}: {reason}")
            }
            (IngestOutput::Started { run_id, .. }, None) => {
                assert_eq!(run_id, &run_id_for(arn).0, "{name}");
                started.push(run_id.clone());
            }
            // The backup-region copy of an event already handled, and an update of it.
            (IngestOutput::Duplicate, None) => assert!(name.contains("backup-copy"), "{name}"),
            (IngestOutput::AlreadyStarted { run_id }, None) => {
                assert!(name.contains("update"), "{name}");
                assert_eq!(run_id, &run_id_for(arn).0);
            }
            _ => panic!("{name}: expected {expect}, got {out:?}"),
        }
    }
    // The EC2 incident, the broad one, the account-specific one: three runs, one each.
    assert_eq!(started.len(), 3, "{started:?}");
    for run in &started {
        assert_eq!(executions_named(&env, run).await, 1);
    }
    // Malformed input: a clear error naming what is wrong, nothing started.
    let err = env
        .invoke(
            "health-ingest",
            &serde_json::json!({"source": "aws.health"}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an AWS Health event"), "{err}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_start_leaves_the_event_retryable() {
    let (env, plan) = common::setup(|_| {}).await;
    let event = corpus().remove(0).1;
    let parsed: lifeboat_core::incident::HealthEvent =
        serde_json::from_value(event.clone()).unwrap();
    // A start that fails (here: the state machine is being replaced and cannot be found).
    let mut broken = env.deps.clone();
    broken.config.failover_state_machine_arn = Some(machine_arn("lifeboat-being-deployed"));
    let err = lifeboat_core::incident::ingest(&broken, &plan, &parsed)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("states"), "{err}");
    let key = keys::health_delivery(&parsed.detail.event_arn, &parsed.detail.communication_id);
    assert!(
        env.deps.ledger.get_raw(&key).await.unwrap().is_none(),
        "a failed start is not recorded as seen"
    );
    // EventBridge's retry of the same delivery starts the run; a third delivery is a duplicate.
    let out: IngestOutput =
        serde_json::from_value(env.invoke("health-ingest", &event).await.unwrap()).unwrap();
    let IngestOutput::Started { run_id, .. } = out else {
        panic!("{out:?}")
    };
    let again: IngestOutput =
        serde_json::from_value(env.invoke("health-ingest", &event).await.unwrap()).unwrap();
    assert_eq!(again, IngestOutput::Duplicate);
    assert_eq!(executions_named(&env, &run_id).await, 1);
    env.stop().await;
}

/// EventBridge does not order deliveries: the `closed` update of an issue can arrive before
/// an `open` one. The older open update starts nothing; one AWS sent after the closure (the
/// issue reopened) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_update_delivered_after_the_closed_one_starts_nothing() {
    let (env, _plan) = common::setup(|_| {}).await;
    let events: std::collections::BTreeMap<String, Value> = corpus().into_iter().collect();
    let open = events["01-ec2-issue-open"].clone();
    let closed = events["05-ec2-issue-closed"].clone();
    let arn = open["detail"]["eventArn"].as_str().unwrap().to_string();
    assert_eq!(closed["detail"]["eventArn"], open["detail"]["eventArn"]);
    let ingest = |event: Value| {
        let env = &env;
        async move {
            serde_json::from_value::<IngestOutput>(
                env.invoke("health-ingest", &event).await.unwrap(),
            )
            .unwrap()
        }
    };
    let out = ingest(closed).await;
    assert!(
        matches!(out, IngestOutput::Ignored { ref reason } if reason.contains("closed")),
        "{out:?}"
    );
    let out = ingest(open.clone()).await;
    let IngestOutput::Ignored { reason } = out else {
        panic!("an older open update started something: {out:?}")
    };
    assert!(reason.contains("out of order"), "{reason}");
    let run = run_id_for(&arn).0;
    assert_eq!(executions_named(&env, &run).await, 0);
    // AWS updated the event after it closed it: a new communication, newer than the closure.
    let mut reopened = open;
    reopened["detail"]["communicationId"] = "A1B2C-4".into();
    reopened["detail"]["lastUpdatedTime"] = "Fri, 20 Nov 2026 07:00:00 GMT".into();
    let out = ingest(reopened).await;
    assert!(matches!(out, IngestOutput::Started { .. }), "{out:?}");
    assert_eq!(executions_named(&env, &run).await, 1);
    env.stop().await;
}

use common::CannedHealthApi;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_incident_through_three_paths_is_one_execution() {
    let (env, plan) = common::setup(|_| {}).await;
    let event = corpus().remove(0).1;
    let arn = event["detail"]["eventArn"].as_str().unwrap().to_string();
    // 1. Forwarded from the primary region's bus by infra/forwarder.yaml (envelope region is
    //    the primary's).
    let forwarded: IngestOutput =
        serde_json::from_value(env.invoke("health-ingest", &event).await.unwrap()).unwrap();
    let IngestOutput::Started { run_id, .. } = forwarded else {
        panic!("{forwarded:?}")
    };
    // 2. The backup-region copy AWS sends to us-west-2.
    let mut backup = event.clone();
    backup["region"] = "us-west-2".into();
    backup["detail"]["backupEvent"] = true.into();
    let copy: IngestOutput =
        serde_json::from_value(env.invoke("health-ingest", &backup).await.unwrap()).unwrap();
    assert_eq!(copy, IngestOutput::Duplicate);
    // 3. The Health API poll finds the same open issue.
    let record = HealthEventRecord {
        event_arn: arn.clone(),
        service: "EC2".into(),
        event_type_code: "AWS_EC2_OPERATIONAL_ISSUE".into(),
        event_type_category: "issue".into(),
        status_code: "open".into(),
        region: plan.sites.primary.region.clone(),
        start_time: Some(chrono::Utc::now()),
        last_updated_time: Some(chrono::Utc::now()),
        event_scope_code: Some("PUBLIC".into()),
        latest_description: "Increased API error rates.".into(),
    };
    let mut deps = env.deps.clone();
    deps.health = Some(lifeboat_core::kernel::HealthPort(Arc::new(
        CannedHealthApi(Ok(vec![record])),
    )));
    let polled = health_ingest::handle(&deps, serde_json::json!({"lifeboat_health_poll": {}}))
        .await
        .unwrap();
    assert_eq!(
        polled,
        IngestOutput::Polled {
            results: vec![IngestOutput::AlreadyStarted {
                run_id: run_id.clone()
            }]
        }
    );
    assert_eq!(executions_named(&env, &run_id).await, 1);
    let status = env
        .aws
        .sfn
        .describe_execution()
        .execution_arn(format!(
            "arn:aws:states:{}:{}:execution:{FAILOVER_MACHINE}:{run_id}",
            lifeboat::local::REGION,
            lifeboat::local::ACCOUNT
        ))
        .send()
        .await
        .unwrap()
        .status()
        .clone();
    assert_eq!(status, ExecutionStatus::Running, "waiting for a human");
    // An account without the Health API: reported, not fatal.
    deps.health = Some(lifeboat_core::kernel::HealthPort(Arc::new(
        CannedHealthApi(Err(HealthApiError::NotSubscribed)),
    )));
    let out = health_ingest::handle(&deps, serde_json::json!({"lifeboat_health_poll": {}}))
        .await
        .unwrap();
    assert!(
        matches!(&out, IngestOutput::Ignored { reason } if reason.contains("Health API unavailable")),
        "{out:?}"
    );
    env.stop().await;
}
