//! Outlasting the outage: the fence watch continues as a new execution before Step Functions'
//! history quota and still fences a primary that returns generations later.

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use lifeboat::{
    drill::health_event,
    local::{LocalEnv, LocalOptions},
};
use lifeboat_core::{
    approval::{
        decide::{decide, Ballot},
        ApprovalStage, Decision,
    },
    fence::{data::DataFenceRecord, gate::open_gate, watch::FenceWatchRecord},
    incident::IngestOutput,
    ledger::keys::{self, ReportFormat},
    plan::SiteRole,
    report::Report,
    run::RunId,
    verdict::Basis,
};
use serde::de::DeserializeOwned;

mod common;

async fn ledger_until<T: DeserializeOwned>(
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
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every event of an execution's history.
async fn history(env: &LocalEnv, arn: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
    env.aws
        .sfn
        .get_execution_history()
        .execution_arn(arn)
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// Unpaused activations at a site, by job name.
async fn live(env: &LocalEnv, site: SiteRole) -> Vec<String> {
    let state = env.admin_get(site, "state").await.unwrap();
    let mut names: Vec<String> = state["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            [
                "schedule_pause_status",
                "continuous_pause_status",
                "trigger_pause_status",
            ]
            .iter()
            .any(|k| j[*k] == "UNPAUSED")
        })
        .map(|j| j["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

const SWEEPS_PER_EXECUTION: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fence_watch_continues_as_new_and_fences_a_primary_back_after_its_third_execution() {
    let (env, plan) = common::setup_with(
        LocalOptions {
            binaries: true,
            lifecycle_delay: Duration::from_millis(200),
            fence_watch_max_sweeps: SWEEPS_PER_EXECUTION,
            ..LocalOptions::default()
        },
        |p| p.shutdown.max_attempts = 2,
    )
    .await;
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
    // The primary's region is down from the start: the run's fence loop gives up at once.
    env.region_outage(SiteRole::Primary, true).await.unwrap();
    let out: IngestOutput = serde_json::from_value(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, "LONG-OUTAGE"),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let IngestOutput::Started { run_id, .. } = out else {
        panic!("not started: {out:?}")
    };
    let run = RunId(run_id.clone());
    ledger_until(&env, &keys::approval(&run), 30, |_: &serde_json::Value| {
        true
    })
    .await;
    decide(
        &env.deps,
        Ballot {
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
    ledger_until(&env, &keys::data_fence(&run), 60, |d: &DataFenceRecord| {
        d.confirmed()
    })
    .await;
    ledger_until(
        &env,
        &keys::fence_watch(&run),
        90,
        |_: &FenceWatchRecord| true,
    )
    .await;
    open_gate(
        &env.deps,
        &run,
        "region down; data fence confirmed",
        "alice@example.com",
        "cli",
    )
    .await
    .unwrap();

    // The run ends with the old site unconfirmed; its verdicts compared what was live there
    // from the snapshot — not "held" over nothing.
    let report_key = keys::report(&run, ReportFormat::Json);
    let report: Report = ledger_until(&env, &report_key, 120, |_: &Report| true).await;
    assert!(
        matches!(report.verdict.basis, Basis::Snapshot { .. }),
        "{:?}",
        report.verdict
    );
    assert!(report.verdict.compared > 0, "{:?}", report.verdict);
    assert!(report.verdict.never_both_active && report.verdict.none_left_behind);
    assert!(report.amended_at.is_none());

    // The watch keeps sweeping the silent primary, a new execution every three sweeps.
    let watching = ledger_until(
        &env,
        &keys::fence_watch(&run),
        240,
        |w: &FenceWatchRecord| w.generation >= 2,
    )
    .await;
    assert!(watching.confirmed_at.is_none());
    // The primary comes back with its schedules live; the third execution fences it.
    env.region_outage(SiteRole::Primary, false).await.unwrap();
    let done = ledger_until(
        &env,
        &keys::fence_watch(&run),
        120,
        |w: &FenceWatchRecord| w.confirmed_at.is_some(),
    )
    .await;
    assert!(done.generation >= 2, "{done:?}");
    assert_eq!(
        done.executions.len() as u32,
        done.generation + 1,
        "{done:?}"
    );
    assert_eq!(done.execution_arn.as_ref(), done.executions.last());
    assert_eq!(
        live(&env, SiteRole::Primary).await,
        vec!["DR Canary Monitor".to_string()],
        "the returning primary is fenced, exclusions aside"
    );
    // The report is amended with the fence time and the final verdicts (from the fence record
    // now); the earlier version is kept.
    let amended: Report =
        ledger_until(&env, &report_key, 30, |r: &Report| r.amended_at.is_some()).await;
    assert_eq!(
        amended.fence_watch.as_ref().and_then(|w| w.confirmed_at),
        done.confirmed_at
    );
    assert_eq!(amended.verdict.basis, Basis::FenceRecord);
    assert!(amended.verdict.compared > 0);
    assert!(amended.verdict.never_both_active && amended.verdict.none_left_behind);
    let markdown = String::from_utf8(
        env.deps
            .ledger
            .get_raw(&keys::report(&run, ReportFormat::Markdown))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(markdown.contains("**Amended:**"), "{markdown}");
    let versions = env
        .aws
        .s3
        .list_object_versions()
        .bucket(lifeboat::local::LEDGER_BUCKET)
        .prefix(&report_key)
        .send()
        .await
        .unwrap();
    assert!(versions.versions().len() >= 2, "{versions:?}");
    // Every execution but the last made its three sweeps and continued as new; the last ended
    // on the confirmation. None came near the history quota.
    for (i, arn) in done.executions.iter().enumerate() {
        let last = i + 1 == done.executions.len();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            let d = env
                .aws
                .sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .unwrap();
            if d.status() != &ExecutionStatus::Running || Instant::now() > deadline {
                break d.status().clone();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        assert_eq!(status, ExecutionStatus::Succeeded, "{arn}");
        let events = history(&env, arn).await;
        let sweeps = events
            .iter()
            .filter(|e| {
                e.r#type() == &HistoryEventType::TaskStateEntered
                    && e.state_entered_event_details()
                        .is_some_and(|d| d.name() == "WatchSweep")
            })
            .count() as u32;
        let continued = events.iter().any(|e| {
            e.state_entered_event_details()
                .is_some_and(|d| d.name() == "ContinueAsNew")
        });
        if last {
            assert!(sweeps <= SWEEPS_PER_EXECUTION, "{arn}: {sweeps} sweeps");
            assert!(!continued, "{arn}");
        } else {
            assert_eq!(sweeps, SWEEPS_PER_EXECUTION, "{arn}");
            assert!(continued, "{arn} ended without continuing");
        }
        assert!(
            events.len() < 25 * SWEEPS_PER_EXECUTION as usize + 40,
            "{arn}: {} events",
            events.len()
        );
    }
    env.stop().await;
}
