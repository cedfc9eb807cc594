//! The shutdown sweep at scale (issue 4), called directly against the demo primary of a local
//! environment: resumability after a crash, outages mid-sweep, exclusions, risk order,
//! idempotence, restoration data and deadlines. Assertions read the emulator's request log and
//! state and the ledger's fence record, not only the step's output.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use chrono::Utc;
use lifeboat::local::LocalEnv;
use lifeboat_core::ledger::keys;
use lifeboat_core::{
    databricks::jobs::{Activation, Job},
    fence::{FenceRecord, FenceStatus, ResourceKind, RestoreSet, SweepOutput},
    plan::{Direction, Plan, SiteRole},
    run::{RunContext, RunId, RunKind, Trigger, TriggerSource},
    schedule::next_fire,
    steps::shutdown_sweep::{handle, handle_with, SweepInput, SweepOptions},
};
use serde_json::{json, Value};

mod common;

async fn setup() -> (LocalEnv, Plan) {
    common::setup(|_| {}).await
}

fn run_context(plan: &Plan) -> RunContext {
    let now = Utc::now();
    serde_json::from_value(json!({
        "run_id": RunId::generate(RunKind::Drill, now),
        "kind": RunKind::Drill,
        "direction": Direction::Failover,
        "plan": plan,
        "trigger": Trigger {
            source: TriggerSource::Operator,
            summary: "sweep test".into(),
            declared_at: now,
            event_arn: None,
            incident_started_at: None,
        },
        "poll_seconds": 1,
    }))
    .expect("a run context")
}

fn input(run: &RunContext) -> SweepInput {
    SweepInput {
        run: run.clone(),
        site: None,
        watch: false,
        confirm_only: false,
    }
}

fn deadline() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

/// Calls the sweep until it reports complete (lifecycles take a moment to finish).
async fn sweep_to_completion(env: &LocalEnv, run: &RunContext) -> Vec<SweepOutput> {
    let mut outputs = Vec::new();
    for _ in 0..20 {
        let out = handle(&env.deps, input(run), deadline()).await.unwrap();
        let done = out.complete;
        outputs.push(out);
        if done {
            return outputs;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("the sweep did not complete: {outputs:#?}");
}

async fn fence_record(env: &LocalEnv, run: &RunContext) -> FenceRecord {
    env.deps
        .ledger
        .get::<FenceRecord>(&keys::fence(&run.run_id, SiteRole::Primary))
        .await
        .unwrap()
        .expect("fence record in the ledger")
        .value
}

async fn requests(env: &LocalEnv) -> Vec<Value> {
    env.admin_get(SiteRole::Primary, "requests").await.unwrap()["requests"]
        .as_array()
        .cloned()
        .unwrap()
}

async fn jobs_before(env: &LocalEnv, plan: &Plan) -> Vec<Job> {
    let client = env
        .deps
        .workspaces
        .client(&plan.sites.primary)
        .await
        .unwrap();
    client.all_jobs().await.unwrap()
}

fn id_of(body: &Value, key: &str) -> Option<String> {
    match &body[key] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The fence-record key a write request acts on (`schedule:<job>`, `cluster:<id>`, ...).
fn write_target(r: &Value) -> Option<String> {
    if r["method"] != "POST" {
        return None;
    }
    let path = r["path"].as_str()?;
    let body = &r["body"];
    if path.ends_with("/jobs/update") {
        let field = ["schedule", "continuous", "trigger"]
            .into_iter()
            .find(|f| body["new_settings"].get(f).is_some())?;
        return Some(format!("{field}:{}", id_of(body, "job_id")?));
    }
    if path.ends_with("/jobs/runs/cancel") {
        return Some(format!("run:{}", id_of(body, "run_id")?));
    }
    if path.ends_with("/clusters/delete") {
        return Some(format!("cluster:{}", id_of(body, "cluster_id")?));
    }
    if path.ends_with("/instance-pools/edit") {
        return Some(format!("pool:{}", id_of(body, "instance_pool_id")?));
    }
    if path.contains("/sql/warehouses/") && path.ends_with("/stop") {
        return Some(format!("warehouse:{}", path.split('/').nth_back(1)?));
    }
    if path.contains("/pipelines/") && path.ends_with("/stop") {
        return Some(format!("pipeline:{}", path.split('/').nth_back(1)?));
    }
    Some(format!("unexpected:{path}"))
}

/// Successful (200) write requests per target.
fn successful_writes(log: &[Value]) -> BTreeMap<String, usize> {
    let mut writes = BTreeMap::new();
    for r in log.iter().filter(|r| r["status"] == 200) {
        if let Some(t) = write_target(r) {
            *writes.entry(t).or_insert(0) += 1;
        }
    }
    writes
}

/// Exactly one effective action per resource that needed one; none for anything else.
fn assert_one_effective_write_each(record: &FenceRecord, log: &[Value]) {
    let writes = successful_writes(log);
    for (target, n) in &writes {
        assert_eq!(*n, 1, "{target} got {n} successful writes");
        assert!(
            record.resources.contains_key(target),
            "write to {target}, which is not in the fence record"
        );
    }
    for (key, r) in &record.resources {
        assert!(r.confirmed, "{key} not confirmed: {r:?}");
        if r.kind != ResourceKind::Run {
            // Runs of continuous jobs are stopped by pausing the job, not cancelled.
            assert_eq!(
                writes.get(key),
                Some(&1),
                "{key} was not written exactly once"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_after_k_actions_resumes_without_repeating_confirmed_work() {
    let (env, plan) = setup().await;
    let run = run_context(&plan);
    env.admin_post(SiteRole::Primary, "requests/clear", json!({}))
        .await
        .unwrap();
    let crashed = handle_with(
        &env.deps,
        input(&run),
        deadline(),
        SweepOptions {
            crash_after_actions: Some(5),
            ..SweepOptions::default()
        },
    )
    .await;
    assert!(crashed.is_err(), "the simulated crash must fail the step");
    let log = requests(&env).await;
    assert_eq!(
        successful_writes(&log).values().sum::<usize>(),
        5,
        "the crash happens after exactly 5 writes"
    );
    // The prior states were written before anything was touched.
    let record = fence_record(&env, &run).await;
    assert_eq!(record.status, FenceStatus::InProgress);
    let by_name = |kind: ResourceKind, name: &str| {
        record
            .resources
            .values()
            .find(|r| r.kind == kind && r.name == name)
            .unwrap_or_else(|| panic!("{kind:?} {name} missing from the record"))
            .clone()
    };
    assert_eq!(
        by_name(ResourceKind::Schedule, "Heartbeat Writer").prior,
        "UNPAUSED"
    );
    assert_eq!(
        by_name(ResourceKind::Cluster, "Shared Analytics").prior,
        "RUNNING"
    );
    assert_eq!(
        by_name(ResourceKind::Warehouse, "Shared BI").prior,
        "RUNNING"
    );
    assert_eq!(
        by_name(ResourceKind::Pool, "General Purpose Pool").prior_value,
        Some(2)
    );
    assert!(record.resources.values().all(|r| !r.prior.is_empty()));
    let recorded_before = record.resources.len();
    assert!(recorded_before >= 13, "{:#?}", record.resources);

    let outputs = sweep_to_completion(&env, &run).await;
    assert_eq!(outputs[0].attempt, 2, "the crashed attempt counts");
    let record = fence_record(&env, &run).await;
    assert_eq!(record.status, FenceStatus::Confirmed);
    assert_one_effective_write_each(&record, &requests(&env).await);
    // The resumed attempts sent only what the crashed one had not.
    let resumed: usize = outputs.iter().map(|o| o.actions).sum();
    let needed = successful_writes(&requests(&env).await).len();
    assert_eq!(resumed + 5, needed, "{outputs:#?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_mid_sweep_is_recorded_and_resumed() {
    let (env, plan) = setup().await;
    let run = run_context(&plan);
    // Writes are slow, and the region goes down while they are being sent.
    env.admin_post(
        SiteRole::Primary,
        "faults",
        json!({"method": "POST", "latency_ms": 300}),
    )
    .await
    .unwrap();
    let sweep = {
        let deps = env.deps.clone();
        let input = input(&run);
        tokio::spawn(async move { handle(&deps, input, deadline()).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    env.outage(SiteRole::Primary, true).await.unwrap();
    let first = sweep.await.unwrap().unwrap();
    assert_eq!(first.attempt, 1);
    assert!(first.reachable, "the inventory was answered");
    assert!(!first.complete);
    assert!(first.remaining >= 1, "{first:?}");
    let record = fence_record(&env, &run).await;
    assert_eq!(record.status, FenceStatus::InProgress);
    assert!(
        record
            .resources
            .values()
            .any(|r| r.actions > 0 && r.last_error.is_some()),
        "failed actions are recorded per resource: {:#?}",
        record.resources
    );

    // Still out: recorded as unreachable, attempt 2.
    let second = handle(&env.deps, input(&run), deadline()).await.unwrap();
    assert_eq!(second.attempt, 2);
    assert!(!second.reachable);
    assert!(!second.complete && !second.gave_up);
    assert!(second.remaining >= 1);
    assert!(second.last_error.is_some());
    let record = fence_record(&env, &run).await;
    assert_eq!(record.status, FenceStatus::InProgress);
    assert_eq!(record.attempts, 2);

    // Back: the sweep finishes what remains.
    env.outage(SiteRole::Primary, false).await.unwrap();
    let outputs = sweep_to_completion(&env, &run).await;
    assert_eq!(outputs[0].attempt, 3);
    assert!(outputs[0].reachable);
    let record = fence_record(&env, &run).await;
    assert_eq!(record.status, FenceStatus::Confirmed);
    assert!(record.resources.values().all(|r| r.confirmed));
    for name in [
        "Heartbeat Writer",
        "Nightly Sales ETL",
        "Shared Analytics",
        "Shared BI",
    ] {
        assert!(
            record
                .resources
                .values()
                .any(|r| r.name == name && r.confirmed),
            "{name} confirmed"
        );
    }
    assert_one_effective_write_each(&record, &requests(&env).await);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusions_untouched_and_schedules_fenced_in_next_fire_order() {
    let (env, plan) = setup().await;
    let run = run_context(&plan);
    let jobs = jobs_before(&env, &plan).await;
    let state = env.admin_get(SiteRole::Primary, "state").await.unwrap();
    let canary = state["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == "DR Canary Monitor")
        .unwrap()["job_id"]
        .to_string();
    let break_glass = state["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster_name"] == "Ops Break-Glass")
        .unwrap()["cluster_id"]
        .as_str()
        .unwrap()
        .to_string();
    env.admin_post(SiteRole::Primary, "requests/clear", json!({}))
        .await
        .unwrap();
    let now = Utc::now();
    let outputs = sweep_to_completion(&env, &run).await;
    assert!(outputs[0].excluded >= 2, "{:?}", outputs[0]);
    let log = requests(&env).await;

    // 3. Exclusions: untouched and never named by a write.
    let state = env.admin_get(SiteRole::Primary, "state").await.unwrap();
    let job = |name: &str| {
        state["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        job("DR Canary Monitor")["schedule_pause_status"],
        "UNPAUSED"
    );
    assert_eq!(job("Heartbeat Writer")["schedule_pause_status"], "PAUSED");
    let cluster = state["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster_name"] == "Ops Break-Glass")
        .unwrap()
        .clone();
    assert_eq!(cluster["state"], "RUNNING");
    for r in log.iter().filter(|r| r["method"] == "POST") {
        let text = format!("{} {}", r["path"], r["body"]);
        assert!(
            !text.contains(&break_glass),
            "a write names Ops Break-Glass: {text}"
        );
        if r["path"].as_str().unwrap().ends_with("/jobs/update") {
            assert_ne!(
                r["body"]["job_id"].to_string(),
                canary,
                "canary updated: {text}"
            );
        }
    }
    let record = fence_record(&env, &run).await;
    assert!(record
        .resources
        .values()
        .all(|r| r.name != "DR Canary Monitor" && r.name != "Ops Break-Glass"));

    // 4. Schedules in next-fire order within the jobs_update family; the soonest first.
    let fire: BTreeMap<String, i64> = jobs
        .iter()
        .filter_map(|j| {
            let s = j.settings.schedule.as_ref()?;
            Some((j.job_id.to_string(), next_fire(s, now)?.timestamp_millis()))
        })
        .collect();
    let names: BTreeMap<String, String> = jobs
        .iter()
        .map(|j| (j.job_id.to_string(), j.settings.name.clone()))
        .collect();
    let mut updates: Vec<&Value> = log
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/jobs/update"))
        .collect();
    updates.sort_by_key(|r| r["seq"].as_u64());
    let schedule_pauses: Vec<String> = updates
        .iter()
        .filter(|r| r["body"]["new_settings"].get("schedule").is_some())
        .map(|r| r["body"]["job_id"].to_string())
        .collect();
    assert_eq!(schedule_pauses.len(), 6, "{schedule_pauses:?}");
    let times: Vec<i64> = schedule_pauses.iter().map(|id| fire[id]).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "schedules not paused in next-fire order: {:?}",
        schedule_pauses
            .iter()
            .map(|id| (&names[id], fire[id]))
            .collect::<Vec<_>>()
    );
    let first = updates[0]["body"]["job_id"].to_string();
    let heartbeat = jobs
        .iter()
        .find(|j| j.settings.name == "Heartbeat Writer")
        .unwrap()
        .job_id
        .to_string();
    assert_eq!(
        fire[&first], fire[&heartbeat],
        "the first jobs/update must pause the schedule due soonest (Heartbeat Writer), got {}",
        names[&first]
    );
    // Schedules before continuous before triggers.
    let kind_rank = |r: &&Value| {
        let s = &r["body"]["new_settings"];
        if s.get("schedule").is_some() {
            0
        } else if s.get("continuous").is_some() {
            1
        } else {
            2
        }
    };
    let ranks: Vec<u8> = updates.iter().map(kind_rank).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_set_round_trips_and_a_second_sweep_sends_no_write() {
    let (env, plan) = setup().await;
    let run = run_context(&plan);
    let jobs = jobs_before(&env, &plan).await;
    sweep_to_completion(&env, &run).await;
    let record = fence_record(&env, &run).await;

    // 6. Restoration data: exactly what was active before, minus the exclusions.
    let mut activations: Vec<(String, Activation)> = jobs
        .iter()
        .filter(|j| !plan.excluded(&j.settings.name, &j.settings.tags))
        .flat_map(|j| {
            j.settings
                .unpaused()
                .into_iter()
                .map(|a| (j.settings.name.clone(), a))
        })
        .collect();
    activations.sort();
    assert!(activations.len() >= 8, "{activations:?}");
    let expected = RestoreSet {
        activations,
        pools: vec![
            ("General Purpose Pool".into(), 2),
            ("Memory Optimized Pool".into(), 1),
        ],
        warehouses: vec!["Shared BI".into()],
        clusters: vec!["Shared Analytics".into()],
        pipelines: vec!["Orders Bronze-Silver".into()],
    };
    assert_eq!(record.restore_set(), expected);
    let text = serde_json::to_string(&record).unwrap();
    let back: FenceRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back.restore_set(), expected);
    let raw = env
        .deps
        .ledger
        .get_raw(&keys::fence(&run.run_id, SiteRole::Primary))
        .await
        .unwrap()
        .unwrap();
    let stored: FenceRecord = serde_json::from_slice(&raw).unwrap();
    assert_eq!(stored.restore_set(), expected);

    // 5. Already fenced costs no write request (a new run, so an empty fence record).
    env.admin_post(SiteRole::Primary, "requests/clear", json!({}))
        .await
        .unwrap();
    let again = run_context(&plan);
    let out = handle(&env.deps, input(&again), deadline()).await.unwrap();
    assert!(out.complete, "{out:?}");
    assert_eq!(out.actions, 0);
    let log = requests(&env).await;
    let posts: Vec<&Value> = log.iter().filter(|r| r["method"] == "POST").collect();
    assert!(posts.is_empty(), "writes on a fenced site: {posts:#?}");
    assert!(!log.is_empty(), "the inventory was read");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_stops_cleanly_and_a_later_call_completes() {
    let (env, plan) = setup().await;
    let run = run_context(&plan);

    // A deadline already past: nothing is sent, the attempt is recorded.
    let out = handle(&env.deps, input(&run), Instant::now())
        .await
        .unwrap();
    assert!(!out.complete && out.remaining >= 1, "{out:?}");
    assert_eq!(fence_record(&env, &run).await.attempts, 1);

    // Slow writes and a deadline 1.6 s away: stops before it, with work left.
    env.admin_post(
        SiteRole::Primary,
        "faults",
        json!({"method": "POST", "latency_ms": 800}),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let deadline_at = started + Duration::from_millis(1600);
    let out = handle(&env.deps, input(&run), deadline_at).await.unwrap();
    assert!(
        Instant::now() < deadline_at,
        "returned {:?} after the deadline",
        Instant::now() - deadline_at
    );
    assert!(out.reachable);
    assert!(!out.complete);
    assert!(out.remaining > 0, "{out:?}");
    let record = fence_record(&env, &run).await;
    assert_eq!(record.attempts, 2);
    assert_eq!(record.status, FenceStatus::InProgress);
    assert!(record.resources.values().any(|r| !r.confirmed));
    assert!(record.resources.len() >= 13);

    // Faults gone, a normal deadline: completes, one effective write per resource.
    lifeboat_core::http::client()
        .delete(format!("{}/__emulator/faults", env.primary.url()))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    // Requests abandoned at the deadline may still land; let them.
    tokio::time::sleep(Duration::from_secs(1)).await;
    sweep_to_completion(&env, &run).await;
    let record = fence_record(&env, &run).await;
    assert_eq!(record.status, FenceStatus::Confirmed);
    assert_one_effective_write_each(&record, &requests(&env).await);
    env.stop().await;
}
