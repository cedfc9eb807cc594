//! The `large` fixture end to end (10,000 jobs): per-job handoff behind the fence, both safety
//! verdicts, one effective write per job at each site, and the documented drift named before
//! approval. Rate limits are raised 20× at both emulators and in the client so the run takes
//! seconds; the benchmark (`BENCHMARKS.md`) runs the same at the real limits.

use std::{collections::BTreeMap, time::Duration};

use databricks_emulator::{large_dr_drift, Fixture};
use lifeboat::{
    drill::{self, Answer, DrillKind},
    local::LocalOptions,
    verdict::live_activations,
};
use lifeboat_core::{fence::handoff::ActivationRecord, plan::SiteRole, report::Outcome};
use serde_json::Value;

mod common;

fn large(dr_drift: bool) -> LocalOptions {
    LocalOptions {
        fixture: Fixture::Large,
        dr_drift,
        rate_limit_scale: 20.0,
        lifecycle_delay: Duration::from_millis(200),
        ..LocalOptions::default()
    }
}

/// Successful `jobs/update` writes per (activation field, job id) in a site's request log.
fn effective_updates(log: &Value) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in log["requests"].as_array().into_iter().flatten() {
        let path = r["path"].as_str().unwrap_or("");
        if r["method"] != "POST" || !path.ends_with("/jobs/update") || r["status"] != 200 {
            continue;
        }
        let body = &r["body"];
        for field in ["schedule", "continuous", "trigger"] {
            if body["new_settings"].get(field).is_some() {
                let id = body["job_id"].to_string();
                *out.entry(format!("{field}:{id}")).or_insert(0) += 1;
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_failover_hands_over_each_job_once_and_leaves_none_behind() {
    let (env, plan) = common::setup_plan(large(false), "plans/large.toml", |p| {
        p.shutdown.retry_interval_seconds = 1;
        p.startup.poll_seconds = 1;
    })
    .await;
    let live_before = live_activations(&env.admin_get(SiteRole::Primary, "state").await.unwrap());
    assert!(live_before.len() > 4000, "{}", live_before.len());
    let r = drill::drive(
        &env,
        &plan,
        &common::options(DrillKind::Failover, Answer::Approve),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded, "{:?}", r.report.error);
    assert!(
        r.verdict.never_both_active,
        "{:?}",
        &r.verdict.overlaps[..r.verdict.overlaps.len().min(5)]
    );
    assert!(r.verdict.none_left_behind, "{:?}", r.verdict.left_behind);
    assert!(r.report.verdict.never_both_active && r.report.verdict.none_left_behind);
    // Everything that was live at the primary is live at DR, and only there.
    let primary_now = live_activations(&env.admin_get(SiteRole::Primary, "state").await.unwrap());
    let dr_now = live_activations(&env.admin_get(SiteRole::Dr, "state").await.unwrap());
    assert!(
        primary_now.is_empty(),
        "{} still live at the primary",
        primary_now.len()
    );
    assert_eq!(dr_now, live_before);
    // Per-job handoff: jobs went live at DR as they were confirmed at the primary, not after.
    let record: ActivationRecord = env
        .deps
        .ledger
        .get(&lifeboat_core::ledger::keys::activation(
            &lifeboat_core::run::RunId(r.run_id.clone()),
            false,
        ))
        .await
        .unwrap()
        .unwrap()
        .value;
    let handed = record
        .entries
        .values()
        .filter(|e| e.fenced_at.is_some())
        .count();
    assert!(
        handed * 2 > record.entries.len(),
        "most activations went by per-job handoff: {handed} of {}",
        record.entries.len()
    );
    let fence_done = r
        .report
        .steps
        .iter()
        .filter(|s| s.step == "shutdown-sweep")
        .map(|s| s.ended_at)
        .max()
        .unwrap();
    let first_live = record.entries.values().map(|e| e.at).min().unwrap();
    assert!(
        first_live < fence_done,
        "activation began before the fence ended"
    );
    // One effective write per job at each site (retries of refused requests do not count).
    for site in [SiteRole::Primary, SiteRole::Dr] {
        let writes = effective_updates(&env.admin_get(site, "requests").await.unwrap());
        let twice: Vec<_> = writes.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "{site:?}: {:?}",
            &twice[..twice.len().min(5)]
        );
        assert_eq!(
            writes.len(),
            live_before.len(),
            "{site:?}: one write per activation"
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_drift_is_named_before_approval_as_left_behind() {
    let (env, plan) = common::setup_plan(large(true), "plans/large.toml", |_| {}).await;
    let run = common::check_run(&plan, lifeboat_core::plan::Direction::Failover);
    let out = env
        .invoke("dr-config-check", &serde_json::json!({ "run": run }))
        .await
        .unwrap();
    let left: Vec<String> = serde_json::from_value(out["left_behind"].clone()).unwrap();
    let drift = large_dr_drift(42);
    let named = |n: &str| left.iter().any(|l| l.starts_with(&format!("job {n}:")));
    for n in drift.missing_jobs.iter().chain(&drift.without_activation) {
        assert!(named(n), "{n} not named in {left:?}");
    }
    assert!(
        left.iter()
            .all(|l| drift.contains(l.trim_start_matches("job ").split(':').next().unwrap_or(""))),
        "only the drift is named: {left:?}"
    );
    // Each of those jobs is to be activated: its drift blocks the run before anything is
    // touched (the plan's `[drift] warn = ["job"]` would let it only warn), and each is named.
    assert_eq!(out["ok"], false, "{:#}", out["summary"]);
    let blocking: Vec<String> = serde_json::from_value(out["blocking"].clone()).unwrap();
    for n in drift.missing_jobs.iter().chain(&drift.without_activation) {
        assert!(
            blocking
                .iter()
                .any(|b| b.starts_with(&format!("job {n:?}:"))),
            "{n} not blocking in {blocking:#?}"
        );
    }
    assert_eq!(
        out["summary"]["blocking"].as_u64(),
        Some(blocking.len() as u64),
        "every blocking item is drift of the 20 jobs, nothing else: {blocking:#?}"
    );
    env.stop().await;
}
