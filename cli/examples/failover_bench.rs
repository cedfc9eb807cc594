//! Benchmark of a whole failover of the `large` fixture (10,000 jobs) through the real state
//! machine in moto, at the emulators' real rate limits (see `BENCHMARKS.md`, "Failover of the
//! large fixture"). Not a test: it prints the figures and one `ROW|` line.
//!
//! ```text
//! cargo run -p lifeboat --example failover_bench            # about ten minutes on 2 cores
//! ```
//!
//! - RTO from approval ÷ the primary fence bound (the primary's necessary `jobs/update` writes
//!   ÷ 10/s, plus its inventory and read-back listings ÷ 20/s): how close the run gets to what
//!   the primary's rate limit allows; activation at DR is pipelined behind it.
//! - Time to data fence confirmed (from approval).
//! - Per-job handoff gap (fenced at the primary → live at DR): median and p99.
//! - Exposure: for schedules due within 15 minutes of approval, how long after approval the
//!   last of them was confirmed paused.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use databricks_emulator::Fixture;
use lifeboat::{
    drill::{self, Answer, DrillKind, DrillOptions},
    local::{LocalEnv, LocalOptions},
};
use lifeboat_core::ledger::keys;
use lifeboat_core::{
    databricks::jobs::PauseStatus, plan::SiteRole, run::RunId, schedule::next_fire,
};
use serde_json::Value;

const WINDOW: chrono::Duration = chrono::Duration::minutes(15);

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let env = LocalEnv::start(LocalOptions {
        fixture: Fixture::Large,
        dr_drift: false,
        // A Lambda's 15 minutes: the sweep resumes across invocations only when it must.
        step_timeout: Duration::from_secs(900),
        client_max_attempts: 8,
        ..LocalOptions::default()
    })
    .await?;
    let mut plan = drill::load_plan(&env.root.join("plans/large.toml"))?;
    plan.shutdown.retry_interval_seconds = 1;
    plan.startup.poll_seconds = 1;
    env.provision(&mut plan).await?;
    let client = env.deps.workspaces.client(&plan.sites.primary).await?;
    let jobs = client.all_jobs().await?;
    let out_dir = std::env::temp_dir().join(format!("failover-bench-{}", std::process::id()));
    tokio::time::sleep(Duration::from_secs(2)).await; // let the server's buckets refill
    for site in [SiteRole::Primary, SiteRole::Dr] {
        env.admin_post(site, "requests/clear", serde_json::json!({}))
            .await?;
    }
    let r = drill::drive(
        &env,
        &plan,
        &DrillOptions {
            plan_path: "plans/large.toml".into(),
            answer: Answer::Approve,
            out_dir: out_dir.clone(),
            fixture: Fixture::Large,
            verbose: false,
            kind: DrillKind::Failover,
            binaries: false,
        },
    )
    .await?;
    let approved = r
        .report
        .approval
        .as_ref()
        .map(|a| a.decided_at)
        .context("no approval recorded")?;
    let log = env.admin_get(SiteRole::Primary, "requests").await?;
    let log = log["requests"].as_array().cloned().unwrap_or_default();
    let after = |r: &&Value| r["wall_ms"].as_i64().unwrap_or(0) >= ms(approved);
    let pauses: Vec<&Value> = log
        .iter()
        .filter(after)
        .filter(|r| {
            r["method"] == "POST"
                && r["status"] == 200
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/jobs/update"))
        })
        .collect();
    let listing_pages = log
        .iter()
        .filter(after)
        .filter(|r| {
            r["method"] == "GET"
                && r["status"] == 200
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/jobs/list"))
        })
        .count();
    // One inventory and one read-back listing are necessary; the rest is ours to explain.
    let jobs_pages = jobs.len().div_ceil(100);
    let bound = pauses.len() as f64 / 10.0 + 2.0 * jobs_pages as f64 / 20.0;
    let rto = r.report.rto.from_approval_seconds.unwrap_or(f64::NAN);
    let data_fence = env
        .deps
        .ledger
        .get::<lifeboat_core::fence::data::DataFenceRecord>(&keys::data_fence(&RunId(
            r.run_id.clone(),
        )))
        .await?
        .and_then(|d| d.value.confirmed_at)
        .map(|t| (ms(t) - ms(approved)) as f64 / 1000.0);
    let gap = r.report.activation.as_ref().and_then(|a| a.handoff_gap_ms);
    // Exposure: schedules due within 15 minutes of approval, and when each was paused.
    let paused_at: std::collections::BTreeMap<String, i64> = pauses
        .iter()
        .filter(|p| p["body"]["new_settings"].get("schedule").is_some())
        .map(|p| {
            (
                p["body"]["job_id"].to_string(),
                p["wall_ms"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let due: Vec<String> = jobs
        .iter()
        .filter_map(|j| {
            let s = j.settings.schedule.as_ref()?;
            (s.pause_status.unwrap_or(PauseStatus::Unpaused) == PauseStatus::Unpaused
                && next_fire(s, approved).is_some_and(|t| t <= approved + WINDOW))
            .then(|| serde_json::json!(j.job_id.0).to_string())
        })
        .collect();
    let exposure = due
        .iter()
        .filter_map(|id| paused_at.get(id))
        .map(|t| (t - ms(approved)) as f64 / 1000.0)
        .fold(0.0, f64::max);
    // Where the time went: writes per 30 s at each site, and how each activation was gated.
    let dr_log = env.admin_get(SiteRole::Dr, "requests").await?;
    let dr_log = dr_log["requests"].as_array().cloned().unwrap_or_default();
    let per_30s = |log: &[Value]| -> Vec<usize> {
        let mut buckets = vec![0usize; 40];
        for r in log.iter().filter(after).filter(|r| {
            r["method"] == "POST"
                && r["status"] == 200
                && r["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/jobs/update"))
        }) {
            let b = ((r["wall_ms"].as_i64().unwrap_or(0) - ms(approved)) / 30_000) as usize;
            if let Some(slot) = buckets.get_mut(b) {
                *slot += 1;
            }
        }
        while buckets.last() == Some(&0) {
            buckets.pop();
        }
        buckets
    };
    let record: Option<lifeboat_core::fence::handoff::ActivationRecord> = env
        .deps
        .ledger
        .get(&lifeboat_core::ledger::keys::activation(
            &lifeboat_core::run::RunId(r.run_id.clone()),
            false,
        ))
        .await?
        .map(|v| v.value);
    let (per_job, whole) = record
        .as_ref()
        .map(|a| {
            let n = a.entries.values().filter(|e| e.fenced_at.is_some()).count();
            (n, a.entries.len() - n)
        })
        .unwrap_or_default();
    for o in r.verdict.overlaps.iter().take(5) {
        println!(
            "  overlap: {} {} for {} ms",
            o.job,
            o.what,
            o.to_ms - o.from_ms
        );
    }
    println!("  primary pauses per 30 s: {:?}", per_30s(&log));
    println!("  DR activations per 30 s: {:?}", per_30s(&dr_log));
    println!("  activations by per-job handoff {per_job}, by the whole gate {whole}");
    println!(
        "failover of the large fixture at real rate limits (run {})",
        r.run_id
    );
    println!(
        "  outcome {:?}; never both active {}; none left behind {}",
        r.outcome, r.verdict.never_both_active, r.verdict.none_left_behind
    );
    println!(
        "  primary: {} pauses (200), {} jobs/list pages after approval",
        pauses.len(),
        listing_pages
    );
    println!(
        "  primary fence bound = {} / 10 + 2 x {} / 20 = {bound:.1} s",
        pauses.len(),
        jobs_pages
    );
    println!(
        "  RTO from approval {rto:.1} s = {:.3} x the bound",
        rto / bound
    );
    println!("  data fence confirmed {:?} s after approval", data_fence);
    println!("  per-job handoff gap (ms): median/p99 {:?}", gap);
    println!("  exposure: {} schedules due within 15 min, last paused {exposure:.1} s after approval ({} never paused)", due.len(), due.iter().filter(|id| !paused_at.contains_key(*id)).count());
    println!(
        "ROW|{rto:.1}|{bound:.1}|{:.3}|{}|{}|{}|{exposure:.1}",
        rto / bound,
        data_fence.map(|s| format!("{s:.2}")).unwrap_or_default(),
        gap.map(|g| g.0.to_string()).unwrap_or_default(),
        gap.map(|g| g.1.to_string()).unwrap_or_default(),
    );
    env.stop().await;
    let _ = std::fs::remove_dir_all(out_dir);
    Ok(())
}
