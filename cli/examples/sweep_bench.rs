//! Benchmark of the shutdown sweep on the `large` fixture (see `BENCHMARKS.md`, "Shutdown sweep
//! of the large fixture"). Not a test: it prints a table row per mode.
//!
//! ```text
//! cargo run -p lifeboat --example sweep_bench -- clean    # our sweep, real rate limits
//! cargo run -p lifeboat --example sweep_bench -- faults   # the same with 5 % injected 500s
//! cargo run -p lifeboat --example sweep_bench -- plain    # the SDK script (tests/bench/plain_sweep.py)
//! ```

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, TimeZone, Utc};
use databricks_emulator::Fixture;
use lifeboat::{
    drill,
    local::{LocalEnv, LocalOptions},
};
use lifeboat_core::{
    databricks::jobs::{CronSchedule, PauseStatus},
    plan::{Direction, SiteRole},
    run::{RunContext, RunId, RunKind, Trigger, TriggerSource},
    schedule::next_fire,
    steps::shutdown_sweep::{handle, SweepInput},
};
use serde_json::{json, Value};

/// Schedules due within this window are the exposure.
const WINDOW: Duration = Duration::from_secs(15 * 60);

fn limit(family: &str) -> f64 {
    match family {
        "jobs_update" => 10.0,
        "jobs_read" => 20.0,
        "runs_read" => 100.0,
        _ => 15.0,
    }
}

/// The resource a write request acts on (`None` for reads).
fn write_target(r: &Value) -> Option<String> {
    if r["method"] != "POST" {
        return None;
    }
    let path = r["path"].as_str()?;
    let body = &r["body"];
    let id = |k: &str| {
        body[k]
            .as_str()
            .map(str::to_string)
            .or(body[k].as_u64().map(|v| v.to_string()))
    };
    if path.ends_with("/jobs/update") {
        let field = ["schedule", "continuous", "trigger"]
            .into_iter()
            .find(|f| body["new_settings"].get(f).is_some())?;
        return Some(format!("{field}:{}", id("job_id")?));
    }
    if path.ends_with("/jobs/runs/cancel") {
        return Some(format!("run:{}", id("run_id")?));
    }
    if path.ends_with("/clusters/delete") {
        return Some(format!("cluster:{}", id("cluster_id")?));
    }
    if path.ends_with("/instance-pools/edit") {
        return Some(format!("pool:{}", id("instance_pool_id")?));
    }
    if path.contains("/sql/warehouses/") && path.ends_with("/stop") {
        return Some(format!("warehouse:{}", path.split('/').nth_back(1)?));
    }
    if path.contains("/pipelines/") && path.ends_with("/stop") {
        return Some(format!("pipeline:{}", path.split('/').nth_back(1)?));
    }
    Some(format!("other:{path}"))
}

struct Summary {
    wall: f64,
    requests: usize,
    rate_limited: usize,
    faults: usize,
    writes_ok: BTreeMap<String, usize>,
    duplicates: usize,
    exposure: f64,
    due: usize,
    due_unpaused: usize,
    inversions: usize,
    schedule_pauses: usize,
}

/// Analyses a request log: `schedules` = (job id, schedule) unpaused at `t0`.
fn summarise(
    log: &[Value],
    schedules: &[(u64, CronSchedule)],
    t0: DateTime<Utc>,
    t1: DateTime<Utc>,
) -> Summary {
    let mut writes_ok: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_resource: BTreeMap<String, usize> = BTreeMap::new();
    let mut paused_at: BTreeMap<u64, i64> = BTreeMap::new();
    let mut pause_order = Vec::new();
    for r in log {
        if r["status"] != 200 {
            continue;
        }
        let Some(target) = write_target(r) else {
            continue;
        };
        *writes_ok
            .entry(r["family"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        *per_resource.entry(target.clone()).or_default() += 1;
        if let Some(id) = target.strip_prefix("schedule:") {
            let id: u64 = id.parse().unwrap_or(0);
            paused_at
                .entry(id)
                .or_insert(r["wall_ms"].as_i64().unwrap_or(0));
            pause_order.push(id);
        }
    }
    let fire: BTreeMap<u64, i64> = schedules
        .iter()
        .filter_map(|(id, s)| Some((*id, next_fire(s, t0)?.timestamp_millis())))
        .collect();
    let horizon = (t0 + chrono::Duration::from_std(WINDOW).unwrap()).timestamp_millis();
    let due: Vec<u64> = fire
        .iter()
        .filter(|(_, t)| **t <= horizon)
        .map(|(id, _)| *id)
        .collect();
    let mut last = t0.timestamp_millis();
    let mut due_unpaused = 0;
    for id in &due {
        match paused_at.get(id) {
            Some(t) => last = last.max(*t),
            None => due_unpaused += 1,
        }
    }
    let inversions = pause_order
        .windows(2)
        .filter(|w| fire.get(&w[0]).unwrap_or(&i64::MAX) > fire.get(&w[1]).unwrap_or(&i64::MAX))
        .count();
    Summary {
        wall: (t1 - t0).num_milliseconds() as f64 / 1000.0,
        requests: log.len(),
        rate_limited: log.iter().filter(|r| r["status"] == 429).count(),
        faults: log
            .iter()
            .filter(|r| r["status"] == 0 || r["status"].as_u64().is_some_and(|s| s >= 500))
            .count(),
        duplicates: per_resource.values().filter(|n| **n > 1).count(),
        writes_ok,
        exposure: (last - t0.timestamp_millis()) as f64 / 1000.0,
        due: due.len(),
        due_unpaused,
        inversions,
        schedule_pauses: pause_order.len(),
    }
}

fn print(mode: &str, s: &Summary, listing_pages: &BTreeMap<String, usize>) {
    // Bound: the listing (largest family: pages ÷ limit), the writes (largest family:
    // necessary writes ÷ limit, families in parallel), and the read-back listing.
    let listing = listing_pages
        .iter()
        .map(|(f, n)| *n as f64 / limit(f))
        .fold(0.0, f64::max);
    let writes = s
        .writes_ok
        .iter()
        .map(|(f, n)| *n as f64 / limit(f))
        .fold(0.0, f64::max);
    let bound = 2.0 * listing + writes;
    println!("mode {mode}");
    println!("  writes (200) by family: {:?}", s.writes_ok);
    println!("  listing pages by family: {listing_pages:?}");
    println!(
        "  bound = 2 x {listing:.2} (listing) + {writes:.2} (writes) = {bound:.2} s; writes-only bound {writes:.2} s"
    );
    println!(
        "  wall {:.1} s ({:.3} x bound), requests {}, 429s {} ({:.2} %), faults/5xx/dropped {}",
        s.wall,
        s.wall / bound,
        s.requests,
        s.rate_limited,
        100.0 * s.rate_limited as f64 / s.requests.max(1) as f64,
        s.faults
    );
    println!(
        "  exposure {:.1} s ({:.1} % of wall) for {} schedules due in 15 min ({} never paused); schedule pauses {}, order inversions {}",
        s.exposure,
        100.0 * s.exposure / s.wall,
        s.due,
        s.due_unpaused,
        s.schedule_pauses,
        s.inversions
    );
    println!("  resources with more than one 200 write: {}", s.duplicates);
    println!(
        "ROW|{mode}|{:.1}|{:.2}|{}|{}|{:.1}|{:.1}|{}|{}",
        s.wall,
        s.wall / bound,
        s.requests,
        s.rate_limited,
        s.exposure,
        100.0 * s.exposure / s.wall,
        s.duplicates,
        s.faults
    );
}

async fn ours(faults: bool) -> Result<()> {
    let env = LocalEnv::start(LocalOptions {
        fixture: Fixture::Large,
        client_max_attempts: 8,
        ..LocalOptions::default()
    })
    .await?;
    let mut plan = drill::load_plan(&env.root.join("lifeboat.toml"))?;
    env.provision(&mut plan).await?;
    // What was unpaused before (for the exposure window), listed before the clock starts.
    let client = env.deps.workspaces.client(&plan.sites.primary).await?;
    let jobs = client.all_jobs().await?;
    let schedules: Vec<(u64, CronSchedule)> = jobs
        .iter()
        .filter_map(|j| {
            let s = j.settings.schedule.clone()?;
            (s.pause_status.unwrap_or(PauseStatus::Unpaused) == PauseStatus::Unpaused)
                .then(|| Some((j.job_id.to_string().parse().ok()?, s)))
                .flatten()
        })
        .collect();
    let state = env.admin_get(SiteRole::Primary, "state").await?;
    let count = |k: &str| state[k].as_array().map_or(0, |a| a.len());
    let pages: BTreeMap<String, usize> = [
        ("jobs_read".to_string(), count("jobs").div_ceil(100)),
        ("clusters".to_string(), count("clusters").div_ceil(100)),
        ("pipelines".to_string(), count("pipelines").div_ceil(100)),
    ]
    .into_iter()
    .collect();
    tokio::time::sleep(Duration::from_secs(2)).await; // let the server's buckets refill
    env.admin_post(SiteRole::Primary, "requests/clear", json!({}))
        .await?;
    if faults {
        env.admin_post(
            SiteRole::Primary,
            "faults",
            json!({"probability": 0.05, "status": 500}),
        )
        .await?;
    }
    let now = Utc::now();
    let run = serde_json::from_value::<RunContext>(json!({
        "run_id": RunId::generate(RunKind::Drill, now),
        "kind": RunKind::Drill,
        "direction": Direction::Failover,
        "plan": plan,
        "trigger": Trigger {
            source: TriggerSource::Operator,
            summary: "sweep benchmark".into(),
            declared_at: now,
            event_arn: None,
            incident_started_at: None,
        },
        "poll_seconds": 1,
    }))
    .expect("a run context");
    let t0 = Utc::now();
    let started = Instant::now();
    let mut complete = false;
    for attempt in 1..=15 {
        // A Lambda's 15 minutes, less a margin.
        let deadline = Instant::now() + Duration::from_secs(14 * 60);
        let out = handle(
            &env.deps,
            SweepInput {
                run: run.clone(),
                site: None,
                watch: false,
                confirm_only: false,
            },
            deadline,
        )
        .await
        .with_context(|| format!("attempt {attempt}"))?;
        eprintln!(
            "attempt {attempt} at {:.1} s: complete {} confirmed {} remaining {} actions {} error {:?}",
            started.elapsed().as_secs_f64(),
            out.complete,
            out.confirmed,
            out.remaining,
            out.actions,
            out.last_error
        );
        if out.complete {
            complete = true;
            break;
        }
        // The state machine's wait between attempts.
        tokio::time::sleep(Duration::from_secs(
            plan.shutdown.retry_interval_seconds as u64,
        ))
        .await;
    }
    let t1 = Utc::now();
    if !complete {
        bail!("the sweep did not complete");
    }
    let log = env.admin_get(SiteRole::Primary, "requests").await?;
    let log = log["requests"].as_array().cloned().unwrap_or_default();
    let summary = summarise(&log, &schedules, t0, t1);
    print(if faults { "faults" } else { "clean" }, &summary, &pages);
    env.stop().await;
    Ok(())
}

fn plain() -> Result<()> {
    let root = lifeboat::local::moto::repo_root()?;
    let out = std::env::temp_dir().join(format!("plain-sweep-{}.json", std::process::id()));
    let status = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/bench/plain_sweep.py"))
        .arg("--bin")
        .arg(root.join("target/debug/databricks-emulator"))
        .arg("--out")
        .arg(&out)
        .status()
        .context("running the plain script")?;
    if !status.success() {
        bail!("plain script failed: {status}");
    }
    let v: Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let t0 = Utc
        .timestamp_millis_opt(v["t0_ms"].as_i64().unwrap_or(0))
        .unwrap();
    let t1 = Utc
        .timestamp_millis_opt(v["t1_ms"].as_i64().unwrap_or(0))
        .unwrap();
    let schedules: Vec<(u64, CronSchedule)> = v["schedules"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["job_id"].as_u64().unwrap_or(0),
                CronSchedule {
                    quartz_cron_expression: s["cron"].as_str().unwrap_or("").into(),
                    timezone_id: s["tz"].as_str().unwrap_or("UTC").into(),
                    pause_status: Some(PauseStatus::Unpaused),
                },
            )
        })
        .collect();
    let log = v["requests"].as_array().cloned().unwrap_or_default();
    let jobs_pages = log
        .iter()
        .filter(|r| r["family"] == "jobs_read" && r["status"] == 200)
        .count();
    let pages: BTreeMap<String, usize> = [("jobs_read".to_string(), jobs_pages)].into();
    let summary = summarise(&log, &schedules, t0, t1);
    print("plain", &summary, &pages);
    let _ = std::fs::remove_file(out);
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "clean".into());
    match mode.as_str() {
        "clean" => ours(false).await,
        "faults" => ours(true).await,
        "plain" => plain(),
        other => bail!("unknown mode {other} (clean, faults, plain)"),
    }
}
