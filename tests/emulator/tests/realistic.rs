//! The realistic lifecycle profile: per-transition emulated durations scaled by the clock
//! speed, intermediate states, the timeline and the admin/config switch.

mod common;

use std::time::{Duration, Instant};

use common::*;
use databricks_emulator::{Fixture, LifecycleProfile};
use serde_json::{json, Value};

fn realistic(speed: f64) -> databricks_emulator::EmulatorConfig {
    cfg(Fixture::Demo)
        .lifecycle_profile(LifecycleProfile::Realistic)
        .clock_speed(speed)
}

async fn cluster_state(h: &H, id: &str) -> String {
    let (_, c) = h
        .get(&format!("/api/2.1/clusters/get?cluster_id={id}"))
        .await;
    c["state"].as_str().unwrap_or("").to_string()
}

async fn wh_state(h: &H, id: &str) -> String {
    let (_, v) = h.get(&format!("/api/2.0/sql/warehouses/{id}")).await;
    v["state"].as_str().unwrap_or("").to_string()
}

async fn run(h: &H, id: u64) -> Value {
    h.get(&format!("/api/2.2/jobs/runs/get?run_id={id}"))
        .await
        .1
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn emulated_ms(h: &H) -> i64 {
    h.state().await["emulated_ms"].as_i64().unwrap()
}

async fn id(h: &H, key: &str, name_key: &str, id_key: &str, name: &str) -> String {
    h.id_of(key, name_key, id_key, name)
        .await
        .as_str()
        .unwrap()
        .to_string()
}

/// The only active (continuous, never-ending) run of "Clickstream Streaming".
async fn continuous_run(h: &H) -> u64 {
    let job = h.job_id("Clickstream Streaming").await;
    let (_, v) = h
        .get(&format!(
            "/api/2.2/jobs/runs/list?job_id={job}&active_only=true"
        ))
        .await;
    v["runs"][0]["run_id"].as_u64().unwrap()
}

/// First timeline event of `kind` for `resource_id`.
async fn event(h: &H, kind: &str, resource_id: &str) -> Value {
    let tl = h.admin("/__emulator/timeline").await;
    tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind && e["resource_id"] == json!(resource_id))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn realistic_durations_are_emulated_and_scaled_by_clock_speed() {
    // 600x: cluster start 180–300 s emulated = 0.3–0.5 s real.
    let h = up(realistic(600.0)).await;
    let cid = id(
        &h,
        "clusters",
        "cluster_name",
        "cluster_id",
        "Data Science Interactive",
    )
    .await;
    let emu0 = emulated_ms(&h).await;
    let t = Instant::now();
    h.post("/api/2.1/clusters/start", json!({"cluster_id": cid}))
        .await;
    assert_eq!(cluster_state(&h, &cid).await, "PENDING");
    assert!(
        h.wait_for(3000, || async {
            cluster_state(&h, &cid).await == "RUNNING"
        })
        .await
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250), "RUNNING after {took:?}");
    assert!(
        took <= Duration::from_millis(1500),
        "RUNNING after {took:?}"
    );
    let up_at = event(&h, "cluster_running", &cid).await["emulated_ms"]
        .as_i64()
        .unwrap();
    let start = up_at - emu0;
    // ≥ 180 s; ≤ 300 s plus the ticker's 50 ms (30 s emulated) and request latency.
    assert!(
        (180_000..=420_000).contains(&start),
        "start took {start} ms emulated"
    );

    // Stops: terminate, warehouse stop, run cancel, all requested at once.
    let wh = id(&h, "warehouses", "name", "id", "Shared BI").await;
    let run_id = continuous_run(&h).await;
    let emu0 = emulated_ms(&h).await;
    h.post("/api/2.1/clusters/delete", json!({"cluster_id": cid}))
        .await;
    h.post(&format!("/api/2.0/sql/warehouses/{wh}/stop"), json!({}))
        .await;
    h.post("/api/2.2/jobs/runs/cancel", json!({"run_id": run_id}))
        .await;
    assert!(
        h.wait_for(3000, || async {
            cluster_state(&h, &cid).await == "TERMINATED"
                && wh_state(&h, &wh).await == "STOPPED"
                && run(&h, run_id).await["state"]["life_cycle_state"] == "TERMINATED"
        })
        .await
    );
    let gap = |e: Value| e["emulated_ms"].as_i64().unwrap() - emu0;
    let terminate = gap(event(&h, "cluster_stopped", &cid).await);
    let stop = gap(event(&h, "warehouse_stopped", &wh).await);
    let r = run(&h, run_id).await;
    assert_eq!(r["state"]["result_state"], "CANCELED");
    let cancel = r["end_time"].as_i64().unwrap() - emu0;
    assert!(
        (30_000..=240_000).contains(&terminate),
        "terminate {terminate}"
    );
    assert!((30_000..=180_000).contains(&stop), "warehouse stop {stop}");
    assert!((5_000..=150_000).contains(&cancel), "cancel {cancel}");
}

#[tokio::test]
async fn realistic_stops_pass_through_intermediate_states() {
    // 30x, so even the shortest phase (run cancel, 5 s emulated) lasts ≥ 166 ms of real time
    // and each intermediate state can be read reliably.
    let h = up(realistic(30.0)).await;
    let cid = id(
        &h,
        "clusters",
        "cluster_name",
        "cluster_id",
        "Shared Analytics",
    )
    .await;
    let wh = id(&h, "warehouses", "name", "id", "Shared BI").await;
    let run_id = continuous_run(&h).await;
    let t = Instant::now();
    h.post("/api/2.2/jobs/runs/cancel", json!({"run_id": run_id}))
        .await;
    assert_eq!(
        run(&h, run_id).await["state"]["life_cycle_state"],
        "TERMINATING"
    );
    let wall0 = wall_ms();
    h.post("/api/2.1/clusters/delete", json!({"cluster_id": cid}))
        .await;
    assert_eq!(cluster_state(&h, &cid).await, "TERMINATING");
    h.post(&format!("/api/2.0/sql/warehouses/{wh}/stop"), json!({}))
        .await;
    assert_eq!(wh_state(&h, &wh).await, "STOPPING");
    // While stopping, nothing is recorded as stopped yet (the timeline counts them active).
    assert!(event(&h, "cluster_stopped", &cid).await.is_null());
    assert!(event(&h, "warehouse_stopped", &wh).await.is_null());
    assert!(
        h.wait_for(6000, || async {
            run(&h, run_id).await["state"]["life_cycle_state"] == "TERMINATED"
        })
        .await
    );
    assert_eq!(run(&h, run_id).await["state"]["result_state"], "CANCELED");
    assert!(
        h.wait_for(8000, || async {
            cluster_state(&h, &cid).await == "TERMINATED"
        })
        .await
    );
    assert!(
        h.wait_for(6000, || async { wh_state(&h, &wh).await == "STOPPED" })
            .await
    );
    // cluster_stopped is recorded when TERMINATED is reached: ≥ 30 s emulated = 1 s real
    // after the request.
    let stopped = event(&h, "cluster_stopped", &cid).await;
    let after = stopped["wall_ms"].as_i64().unwrap() - wall0;
    assert!(after >= 990, "cluster_stopped {after} ms after the request");
    assert!(t.elapsed() >= Duration::from_millis(1000));
}

#[tokio::test]
async fn lifecycle_profile_via_admin_config() {
    let h = demo().await;
    let c = h.admin("/__emulator/config").await;
    assert_eq!(c["lifecycle_profile"], "uniform", "{c}");
    assert_eq!(c["lifecycle_delay_ms"], 100);
    let c = h
        .admin_post(
            "/__emulator/config",
            json!({"lifecycle_profile": "realistic", "clock_speed": 600.0}),
        )
        .await;
    assert_eq!(c["lifecycle_profile"], "realistic", "{c}");
    assert_eq!(c["clock_speed"], 600.0);
    let r =
        h.c.post(h.url("/__emulator/config"))
            .json(&json!({"lifecycle_profile": "sluggish"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_code"], "MALFORMED_REQUEST");
    assert_eq!(
        h.admin("/__emulator/config").await["lifecycle_profile"],
        "realistic"
    );
    // Now a start takes ≥ 0.3 s although lifecycle_delay is 100 ms.
    let cid = id(
        &h,
        "clusters",
        "cluster_name",
        "cluster_id",
        "ETL Development",
    )
    .await;
    let t = Instant::now();
    h.post("/api/2.1/clusters/start", json!({"cluster_id": cid}))
        .await;
    assert!(
        h.wait_for(3000, || async {
            cluster_state(&h, &cid).await == "RUNNING"
        })
        .await
    );
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    // Back to uniform with a 600 ms delay (realistic would terminate in 50–200 ms here).
    let c = h
        .admin_post(
            "/__emulator/config",
            json!({"lifecycle_profile": "uniform", "lifecycle_delay_ms": 600}),
        )
        .await;
    assert_eq!(c["lifecycle_profile"], "uniform");
    let t = Instant::now();
    h.post("/api/2.1/clusters/delete", json!({"cluster_id": cid}))
        .await;
    assert!(
        h.wait_for(3000, || async {
            cluster_state(&h, &cid).await == "TERMINATED"
        })
        .await
    );
    assert!(
        t.elapsed() >= Duration::from_millis(550),
        "{:?}",
        t.elapsed()
    );
}
