//! Lifecycles, the scheduler, the timeline and the admin API (faults, outage, rate limits).

mod common;

use std::time::Duration;

use common::*;
use databricks_emulator::{Fixture, RateLimits};
use serde_json::{json, Value};

async fn cluster_state(h: &H, id: &str) -> String {
    let (_, c) = h
        .get(&format!("/api/2.1/clusters/get?cluster_id={id}"))
        .await;
    c["state"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn cluster_warehouse_pipeline_lifecycles() {
    let h = demo().await;
    let id = h
        .id_of("clusters", "cluster_name", "cluster_id", "Shared Analytics")
        .await;
    let id = id.as_str().unwrap().to_string();
    let (s, v) = h
        .post("/api/2.1/clusters/start", json!({"cluster_id": id}))
        .await;
    assert_eq!((s, v["error_code"].as_str()), (400, Some("INVALID_STATE")));
    h.post("/api/2.1/clusters/delete", json!({"cluster_id": id}))
        .await;
    assert_eq!(cluster_state(&h, &id).await, "TERMINATING");
    assert!(
        h.wait_for(2000, || async {
            cluster_state(&h, &id).await == "TERMINATED"
        })
        .await
    );
    let (_, c) = h
        .get(&format!("/api/2.1/clusters/get?cluster_id={id}"))
        .await;
    assert_eq!(c["termination_reason"]["code"], "USER_REQUEST");
    assert_eq!(c["termination_reason"]["type"], "SUCCESS");
    let (s, _) = h
        .post("/api/2.1/clusters/delete", json!({"cluster_id": id}))
        .await;
    assert_eq!(s, 200, "terminate is a no-op when terminated");
    h.post("/api/2.0/clusters/start", json!({"cluster_id": id}))
        .await;
    assert_eq!(cluster_state(&h, &id).await, "PENDING");
    assert!(
        h.wait_for(2000, || async { cluster_state(&h, &id).await == "RUNNING" })
            .await
    );

    let wh = h.id_of("warehouses", "name", "id", "Shared BI").await;
    let wh = wh.as_str().unwrap().to_string();
    h.post(&format!("/api/2.0/sql/warehouses/{wh}/stop"), json!({}))
        .await;
    assert_eq!(wh_state(&h, &wh).await, "STOPPING");
    assert!(
        h.wait_for(2000, || async { wh_state(&h, &wh).await == "STOPPED" })
            .await
    );
    h.post(&format!("/api/2.0/sql/warehouses/{wh}/start"), json!({}))
        .await;
    assert_eq!(wh_state(&h, &wh).await, "STARTING");
    assert!(
        h.wait_for(2000, || async { wh_state(&h, &wh).await == "RUNNING" })
            .await
    );

    let pl = h
        .id_of("pipelines", "name", "pipeline_id", "Orders Bronze-Silver")
        .await;
    let pl = pl.as_str().unwrap().to_string();
    let (_, p) = h.get(&format!("/api/2.0/pipelines/{pl}")).await;
    assert_eq!(p["spec"]["continuous"], true);
    let pcluster = p["cluster_id"].as_str().unwrap().to_string();
    h.post(&format!("/api/2.0/pipelines/{pl}/stop"), json!({}))
        .await;
    assert_eq!(pl_state(&h, &pl).await, "STOPPING");
    assert!(
        h.wait_for(2000, || async { pl_state(&h, &pl).await == "IDLE" })
            .await
    );
    assert_eq!(cluster_state(&h, &pcluster).await, "TERMINATED");
    let (s, u) = h
        .post(&format!("/api/2.0/pipelines/{pl}/updates"), json!({}))
        .await;
    assert_eq!(s, 200);
    assert!(u["update_id"].is_string());
    assert!(
        h.wait_for(2000, || async { pl_state(&h, &pl).await == "RUNNING" })
            .await
    );

    let tl = h.admin("/__emulator/timeline").await;
    let kinds: Vec<String> = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["resource_id"] == json!(id)
                || e["resource_id"] == json!(wh)
                || e["resource_id"] == json!(pl)
        })
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "cluster_running",
            "warehouse_running",
            "pipeline_running",
            "cluster_stopped",
            "cluster_running",
            "warehouse_stopped",
            "warehouse_running",
            "pipeline_stopped",
            "pipeline_running"
        ]
    );
}

async fn wh_state(h: &H, id: &str) -> String {
    let (_, v) = h.get(&format!("/api/2.0/sql/warehouses/{id}")).await;
    v["state"].as_str().unwrap_or("").to_string()
}

async fn pl_state(h: &H, id: &str) -> String {
    let (_, v) = h.get(&format!("/api/2.0/pipelines/{id}")).await;
    v["state"].as_str().unwrap_or("").to_string()
}

/// PERIODIC runs started by the scheduler (not the fixture's history).
async fn periodic_runs(h: &H, job: u64) -> usize {
    let tl = h.admin("/__emulator/timeline").await;
    tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["kind"] == "run_started"
                && e["detail"]["job_id"] == json!(job)
                && e["detail"]["trigger"] == "PERIODIC"
        })
        .count()
}

async fn active_runs(h: &H, job: u64) -> Vec<Value> {
    let (_, v) = h
        .get(&format!(
            "/api/2.2/jobs/runs/list?job_id={job}&active_only=true"
        ))
        .await;
    v["runs"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn run_cancel_and_job_cluster() {
    let h = demo().await;
    let job = h.job_id("Nightly Sales ETL").await;
    let (_, runs) = h
        .get(&format!(
            "/api/2.2/jobs/runs/list?job_id={job}&active_only=true"
        ))
        .await;
    let run = runs["runs"][0].clone();
    let run_id = run["run_id"].as_u64().unwrap();
    let cluster = run["cluster_instance"]["cluster_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cluster_state(&h, &cluster).await, "RUNNING");
    h.post("/api/2.2/jobs/runs/cancel", json!({"run_id": run_id}))
        .await;
    let (_, r) = h
        .get(&format!("/api/2.2/jobs/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(r["state"]["life_cycle_state"], "TERMINATING");
    assert!(
        h.wait_for(2000, || async {
            let (_, r) = h
                .get(&format!("/api/2.2/jobs/runs/get?run_id={run_id}"))
                .await;
            r["state"]["life_cycle_state"] == "TERMINATED"
        })
        .await
    );
    let (_, r) = h
        .get(&format!("/api/2.2/jobs/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(r["state"]["result_state"], "CANCELED");
    assert_eq!(r["status"]["termination_details"]["code"], "CANCELED");
    assert!(r["end_time"].as_i64().unwrap() > 0);
    assert!(
        h.wait_for(2000, || async {
            cluster_state(&h, &cluster).await == "TERMINATED"
        })
        .await
    );
}

#[tokio::test]
async fn cron_fires_with_clock_speedup_and_pause_stops_it() {
    // 120x: the every-minute heartbeat fires every 0.5 s of real time.
    let h = up(cfg(Fixture::Demo).clock_speed(120.0)).await;
    let job = h.job_id("Heartbeat Writer").await;
    assert!(
        h.wait_for(3000, || async { periodic_runs(&h, job).await >= 2 })
            .await
    );
    let (_, j) = h.get(&format!("/api/2.2/jobs/get?job_id={job}")).await;
    let mut sched = j["settings"]["schedule"].clone();
    sched["pause_status"] = json!("PAUSED");
    h.post(
        "/api/2.2/jobs/update",
        json!({"job_id": job, "new_settings": {"schedule": sched}}),
    )
    .await;
    let n = periodic_runs(&h, job).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(periodic_runs(&h, job).await, n, "no fires once paused");
    let tl = h.admin("/__emulator/timeline").await;
    let ev: Vec<&Value> = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource_id"] == json!(job.to_string()))
        .collect();
    assert_eq!(ev.first().unwrap()["kind"], "schedule_unpaused");
    assert_eq!(ev.last().unwrap()["kind"], "schedule_paused");
    assert_eq!(ev.last().unwrap()["detail"]["kind"], "schedule");
    let runs_started = tl["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "run_started" && e["detail"]["job_id"] == json!(job))
        .count();
    assert!(runs_started >= 2);
    let e = ev.last().unwrap();
    assert!(
        e["emulated_ms"].as_i64().unwrap() > e["wall_ms"].as_i64().unwrap(),
        "emulated clock runs ahead"
    );
}

#[tokio::test]
async fn continuous_keeps_one_run_and_pause_cancels_it() {
    let h = demo().await;
    let job = h.job_id("Clickstream Streaming").await;
    let first = active_runs(&h, job).await;
    assert_eq!(first.len(), 1);
    h.post(
        "/api/2.2/jobs/runs/cancel",
        json!({"run_id": first[0]["run_id"]}),
    )
    .await;
    assert!(
        h.wait_for(2000, || async {
            let a = active_runs(&h, job).await;
            a.len() == 1 && a[0]["run_id"] != first[0]["run_id"] && a[0]["trigger"] == "CONTINUOUS"
        })
        .await,
        "a new continuous run replaces the cancelled one"
    );
    h.post(
        "/api/2.2/jobs/update",
        json!({"job_id": job, "new_settings":
        {"continuous": {"pause_status": "PAUSED"}}}),
    )
    .await;
    assert!(
        h.wait_for(2000, || async { active_runs(&h, job).await.is_empty() })
            .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(active_runs(&h, job).await.is_empty());
    let st = h.state().await;
    let j = st["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_id"] == json!(job))
        .unwrap()
        .clone();
    assert_eq!(j["continuous_pause_status"], "PAUSED");
    h.post(
        "/api/2.2/jobs/update",
        json!({"job_id": job, "new_settings":
        {"continuous": {"pause_status": "UNPAUSED"}}}),
    )
    .await;
    assert_eq!(active_runs(&h, job).await.len(), 1);
}

#[tokio::test]
async fn scheduled_runs_finish_after_run_duration() {
    let h = up(cfg(Fixture::Demo).run_duration(Duration::from_millis(300))).await;
    let job = h.job_id("Onboarding Demo").await;
    let (_, r) = h
        .post("/api/2.2/jobs/run-now", json!({"job_id": job}))
        .await;
    let id = r["run_id"].as_u64().unwrap();
    assert!(
        h.wait_for(3000, || async {
            let (_, r) = h.get(&format!("/api/2.2/jobs/runs/get?run_id={id}")).await;
            r["state"]["result_state"] == "SUCCESS"
        })
        .await
    );
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let h = up(cfg(Fixture::Demo).rate_limits(RateLimits::default())).await;
    let job = h.job_id("Legacy Ingest").await;
    let mut limited = 0;
    for _ in 0..25 {
        let r =
            h.c.post(h.url("/api/2.2/jobs/update"))
                .bearer_auth(TOKEN)
                .json(&json!({"job_id": job, "new_settings": {"max_concurrent_runs": 1}}))
                .send()
                .await
                .unwrap();
        if r.status().as_u16() == 429 {
            assert_eq!(r.headers().get("retry-after").unwrap(), "1");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error_code"], "REQUEST_LIMIT_EXCEEDED");
            limited += 1;
        }
    }
    assert!(limited >= 10, "limited {limited}");
    // Other families are not affected.
    let (s, _) = h.get("/api/2.1/clusters/list").await;
    assert_eq!(s, 200);
    let st = h.admin("/__emulator/stats").await;
    assert_eq!(st["rate_limited_total"], limited);
    assert_eq!(st["by_family"]["jobs_update"], 25);
    // Live reconfiguration.
    h.admin_post(
        "/__emulator/config",
        json!({"rate_limits": {"jobs_update": null}}),
    )
    .await;
    let (s, _) = h
        .post(
            "/api/2.2/jobs/update",
            json!({"job_id": job, "new_settings": {}}),
        )
        .await;
    assert_eq!(s, 200);
    let reqs = h.admin("/__emulator/requests").await;
    let r = reqs["requests"].as_array().unwrap();
    assert_eq!(r.iter().filter(|x| x["status"] == 429).count(), limited);
    assert_eq!(r[0]["family"], "jobs_update");
    assert_eq!(r[0]["body"]["job_id"], json!(job));
    h.admin_post("/__emulator/requests/clear", json!({})).await;
    assert_eq!(h.admin("/__emulator/requests").await["requests"], json!([]));
}

#[tokio::test]
async fn faults_count_status_and_drop_connection() {
    let h = demo().await;
    h.admin_post(
        "/__emulator/faults",
        json!({"method": "GET", "path_prefix": "/api/2.1/clusters/list",
        "status": 503, "count": 2, "retry_after": 2}),
    )
    .await;
    let r =
        h.c.get(h.url("/api/2.1/clusters/list"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers().get("retry-after").unwrap(), "2");
    let (s, _) = h.get("/api/2.1/clusters/list").await;
    assert_eq!(s, 503);
    let (s, _) = h.get("/api/2.1/clusters/list").await;
    assert_eq!(s, 200);
    h.admin_post(
        "/__emulator/faults",
        json!({"path_prefix": "/api/2.2/jobs/list", "drop_connection": true, "count": 1}),
    )
    .await;
    let err =
        h.c.get(h.url("/api/2.2/jobs/list"))
            .bearer_auth(TOKEN)
            .send()
            .await;
    assert!(err.is_err(), "dropped connection is a client error");
    let (s, _) = h.get("/api/2.2/jobs/list").await;
    assert_eq!(s, 200);
    h.admin_post(
        "/__emulator/faults",
        json!({"status": 500, "body": {"error_code": "INTERNAL_ERROR", "message": "boom"}}),
    )
    .await;
    let (s, v) = h.get("/api/2.2/jobs/list").await;
    assert_eq!((s, v["message"].as_str()), (500, Some("boom")));
    h.c.delete(h.url("/__emulator/faults"))
        .send()
        .await
        .unwrap();
    let (s, _) = h.get("/api/2.2/jobs/list").await;
    assert_eq!(s, 200);
    let st = h.admin("/__emulator/stats").await;
    assert_eq!(st["faults_injected_total"], 4);
}

#[tokio::test]
async fn outage_drops_connections_but_admin_works() {
    let h = demo().await;
    h.admin_post("/__emulator/outage", json!({"enabled": true}))
        .await;
    assert!(h
        .c
        .get(h.url("/api/2.1/clusters/list"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .is_err());
    assert!(h
        .c
        .get(h.url("/.well-known/databricks-config"))
        .send()
        .await
        .is_err());
    assert!(h.c.post(h.url("/oidc/v1/token")).send().await.is_err());
    assert_eq!(h.state().await["active_runs"], 3);
    h.admin_post("/__emulator/outage", json!({"enabled": false}))
        .await;
    let (s, _) = h.get("/api/2.1/clusters/list").await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn sql_statements() {
    let h = demo().await;
    let wh = h.id_of("warehouses", "name", "id", "Shared BI").await;
    let (s, v) = h
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": wh, "statement": "SELECT 1",
        "wait_timeout": "10s", "disposition": "INLINE", "format": "JSON_ARRAY"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["status"]["state"], "SUCCEEDED");
    assert_eq!(v["result"]["data_array"], json!([["1"]]));
    assert_eq!(v["manifest"]["schema"]["column_count"], 1);
    let (_, v) = h
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": wh,
        "statement": "SELECT name, country FROM main.sales.customers WHERE customer_id = :id",
        "parameters": [{"name": "id", "value": "4", "type": "INT"}]}),
        )
        .await;
    assert_eq!(v["result"]["data_array"], json!([["Umbrella", "GB"]]));
    assert_eq!(v["manifest"]["schema"]["columns"][0]["type_name"], "STRING");
    let (_, v) = h
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": wh,
        "statement": "SELECT count(*) AS n, min(amount) FROM main.sales.orders"}),
        )
        .await;
    assert_eq!(v["result"]["data_array"][0][0], "50");
    let (_, v) = h
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": wh,
        "statement": "SELECT id, source FROM main.ops.heartbeat"}),
        )
        .await;
    assert_eq!(v["result"]["row_count"], 1);
    let (_, v) = h
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": wh, "statement": "SELECT * FROM main.nope.t"}),
        )
        .await;
    assert_eq!(v["status"]["state"], "FAILED");
    assert!(v["status"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("TABLE_OR_VIEW_NOT_FOUND"));
    // A stopped warehouse is started; with wait_timeout 0s the statement is PENDING until RUNNING.
    let stopped = h.id_of("warehouses", "name", "id", "ETL Serving").await;
    let (_, v) = h
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": stopped, "statement": "SELECT 2",
        "wait_timeout": "0s"}),
        )
        .await;
    assert_eq!(v["status"]["state"], "PENDING");
    let id = v["statement_id"].as_str().unwrap().to_string();
    assert!(
        h.wait_for(2000, || async {
            let (_, v) = h.get(&format!("/api/2.0/sql/statements/{id}")).await;
            v["status"]["state"] == "SUCCEEDED" && v["result"]["data_array"] == json!([["2"]])
        })
        .await
    );
    let (s, _) = h
        .post(
            "/api/2.0/sql/statements",
            json!({"warehouse_id": wh, "statement": "SELECT 1", "wait_timeout": "3s"}),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn fail_runs_switch_makes_completing_runs_fail() {
    let h = up(cfg(Fixture::Demo).run_duration(Duration::from_millis(200))).await;
    let c = h
        .admin_post("/__emulator/config", json!({"fail_runs": true}))
        .await;
    assert_eq!(c["fail_runs"], true);
    let job = h.job_id("Onboarding Demo").await;
    let (_, r) = h
        .post("/api/2.2/jobs/run-now", json!({"job_id": job}))
        .await;
    let id = r["run_id"].as_u64().unwrap();
    let path = format!("/api/2.2/jobs/runs/get?run_id={id}");
    assert!(
        h.wait_for(3000, || async {
            h.get(&path).await.1["state"]["result_state"] == "FAILED"
        })
        .await
    );
    let (_, r) = h.get(&path).await;
    assert_eq!(
        r["status"]["termination_details"]["code"],
        "RUN_EXECUTION_ERROR"
    );
    // Off again: the next run succeeds.
    h.admin_post("/__emulator/config", json!({"fail_runs": false}))
        .await;
    let (_, r) = h
        .post("/api/2.2/jobs/run-now", json!({"job_id": job}))
        .await;
    let id = r["run_id"].as_u64().unwrap();
    let path = format!("/api/2.2/jobs/runs/get?run_id={id}");
    assert!(
        h.wait_for(3000, || async {
            h.get(&path).await.1["state"]["result_state"] == "SUCCESS"
        })
        .await
    );
    assert_eq!(h.admin("/__emulator/config").await["fail_runs"], false);
}
