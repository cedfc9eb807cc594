//! Endpoint behaviour: auth, shapes, pagination, filters, errors, updates.

mod common;

use std::time::Duration;

use common::*;
use databricks_emulator::{Fixture, Role};
use serde_json::{json, Value};

#[tokio::test]
async fn auth_pat_bad_token_and_well_known() {
    let h = demo().await;
    let (s, _) = h.get("/api/2.1/clusters/list").await;
    assert_eq!(s, 200);
    let r =
        h.c.get(h.url("/api/2.1/clusters/list"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"error_code": 403, "message": "Invalid access token."})
    );
    let r =
        h.c.get(h.url("/api/2.1/clusters/list"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let wk = h.admin("/.well-known/databricks-config").await;
    assert_eq!(wk["oidc_endpoint"], json!(format!("{}/oidc", h.emu.url())));
    assert_eq!(wk["workspace_id"], json!("1234567890123456"));
    let oas = h
        .admin("/oidc/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(
        oas["token_endpoint"],
        json!(format!("{}/oidc/v1/token", h.emu.url()))
    );
    let (s, me) = h.get("/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(s, 200);
    assert_eq!(me["userName"], "dr-admin@example.com");
    assert_eq!(
        me["schemas"][0],
        "urn:ietf:params:scim:schemas:core:2.0:User"
    );
}

#[tokio::test]
async fn oauth_m2m_tokens_and_expiry() {
    let h = up(cfg(Fixture::Empty).oauth_token_ttl_secs(1)).await;
    let form = [("grant_type", "client_credentials"), ("scope", "all-apis")];
    let bad =
        h.c.post(h.url("/oidc/v1/token"))
            .basic_auth("lifeboat-sp", Some("nope"))
            .form(&form)
            .send()
            .await
            .unwrap();
    assert_eq!(bad.status().as_u16(), 401);
    let v: Value = bad.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
    let ok: Value =
        h.c.post(h.url("/oidc/v1/token"))
            .basic_auth("lifeboat-sp", Some("emulator-secret"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["expires_in"], 1);
    let tok = ok["access_token"].as_str().unwrap().to_string();
    let me: Value =
        h.c.get(h.url("/api/2.0/preview/scim/v2/Me"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(me["userName"], "lifeboat-sp");
    assert_eq!(me["displayName"], "lifeboat-sp");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r =
        h.c.get(h.url("/api/2.0/preview/scim/v2/Me"))
            .bearer_auth(&tok)
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 403);
}

async fn collect_pages(
    h: &H,
    base: &str,
    item_key: &str,
    token_param: &str,
) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut token: Option<String> = None;
    loop {
        let sep = if base.contains('?') { '&' } else { '?' };
        let path = match &token {
            Some(t) => format!("{base}{sep}{token_param}={t}"),
            None => base.to_string(),
        };
        let (s, v) = h.get(&path).await;
        assert_eq!(s, 200, "{path}: {v}");
        pages += 1;
        items.extend(v[item_key].as_array().cloned().unwrap_or_default());
        match v.get("next_page_token") {
            Some(Value::String(t)) => {
                assert!(!t.is_empty(), "present tokens are never empty");
                token = Some(t.clone());
            }
            None => break,
            Some(other) => panic!("bad token {other}"),
        }
        assert!(pages < 1000);
    }
    (items, pages)
}

#[tokio::test]
async fn pagination_everywhere() {
    let h = demo().await;
    let (cl, pages) = collect_pages(
        &h,
        "/api/2.1/clusters/list?page_size=2",
        "clusters",
        "page_token",
    )
    .await;
    assert_eq!(cl.len(), 10);
    assert_eq!(pages, 5);
    let (_, p2) = h.get("/api/2.1/clusters/list?page_size=2").await;
    let t = p2["next_page_token"].as_str().unwrap();
    let (_, second) = h
        .get(&format!(
            "/api/2.1/clusters/list?page_size=2&page_token={t}"
        ))
        .await;
    let prev = second["prev_page_token"]
        .as_str()
        .expect("prev token on page 2");
    let (_, back) = h
        .get(&format!(
            "/api/2.1/clusters/list?page_size=2&page_token={prev}"
        ))
        .await;
    assert_eq!(back["clusters"], p2["clusters"]);

    let (jobs, pages) = collect_pages(&h, "/api/2.2/jobs/list?limit=5", "jobs", "page_token").await;
    assert_eq!(jobs.len(), 23);
    assert_eq!(pages, 5);
    assert!(
        jobs[0]["settings"].get("tasks").is_none(),
        "tasks omitted without expand_tasks"
    );
    let (_, exp) = h.get("/api/2.2/jobs/list?limit=1&expand_tasks=true").await;
    assert!(exp["jobs"][0]["settings"]["tasks"].is_array());
    let (s, _) = h.get("/api/2.2/jobs/list?limit=101").await;
    assert_eq!(s, 400);

    let (wh, pages) = collect_pages(
        &h,
        "/api/2.0/sql/warehouses?page_size=1",
        "warehouses",
        "page_token",
    )
    .await;
    assert_eq!((wh.len(), pages), (3, 3));
    let (pl, pages) = collect_pages(
        &h,
        "/api/2.0/pipelines?max_results=1",
        "statuses",
        "page_token",
    )
    .await;
    assert_eq!((pl.len(), pages), (2, 2));
    let (runs, _) =
        collect_pages(&h, "/api/2.2/jobs/runs/list?limit=7", "runs", "page_token").await;
    assert_eq!(runs.len(), 33);
    let ids: Vec<u64> = runs.iter().map(|r| r["run_id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let (s, _) = h.get("/api/2.2/jobs/runs/list?limit=26").await;
    assert_eq!(s, 400);
    let (_, pools) = h.get("/api/2.0/instance-pools/list").await;
    assert_eq!(pools["instance_pools"].as_array().unwrap().len(), 3);
    assert!(pools.get("next_page_token").is_none());
}

#[tokio::test]
async fn filters() {
    let h = demo().await;
    let (_, v) = h
        .get("/api/2.1/clusters/list?filter_by.cluster_sources=JOB")
        .await;
    assert_eq!(v["clusters"].as_array().unwrap().len(), 3);
    let (_, v) = h
        .get("/api/2.1/clusters/list?filter_by.cluster_sources=UI&filter_by.cluster_sources=API&filter_by.cluster_states=RUNNING")
        .await;
    let names: Vec<&str> = v["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cluster_name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"Shared Analytics") && names.contains(&"Ops Break-Glass"));
    let (_, v) = h
        .get("/api/2.1/clusters/list?filter_by.is_pinned=true")
        .await;
    assert_eq!(v["clusters"].as_array().unwrap().len(), 2);
    let (s, _) = h
        .get("/api/2.1/clusters/list?filter_by.cluster_states=BOGUS")
        .await;
    assert_eq!(s, 400);
    let (_, v) = h.get("/api/2.2/jobs/list?name=heartbeat%20writer").await;
    assert_eq!(v["jobs"].as_array().unwrap().len(), 1);
    let (_, v) = h.get("/api/2.2/jobs/runs/list?active_only=true").await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 3);
    let job = h.job_id("Clickstream Streaming").await;
    let (_, v) = h
        .get(&format!(
            "/api/2.2/jobs/runs/list?job_id={job}&active_only=true"
        ))
        .await;
    assert_eq!(v["runs"][0]["trigger"], "CONTINUOUS");
    let (_, v) = h
        .get("/api/2.0/pipelines?filter=name%20LIKE%20%27%25cdc%25%27")
        .await;
    assert_eq!(v["statuses"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn errors() {
    let h = demo().await;
    let (s, v) = h.get("/api/2.1/clusters/get?cluster_id=nope").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    assert_eq!(v["message"], "Cluster nope does not exist");
    let (s, v) = h.get("/api/2.2/jobs/get?job_id=1").await;
    assert_eq!(
        (s, v["message"].as_str()),
        (400, Some("Job 1 does not exist."))
    );
    let r =
        h.c.post(h.url("/api/2.2/jobs/update"))
            .bearer_auth(TOKEN)
            .body("{not json")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_code"], "MALFORMED_REQUEST");
    let (s, v) = h.get("/api/2.0/nothing/here").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    assert_eq!(v["message"], "No API found for 'GET /api/2.0/nothing/here'");
    let (s, v) = h.get("/api/2.1/clusters/start").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("ENDPOINT_NOT_FOUND"))
    );
    let (s, v) = h.get("/api/2.0/permissions/jobs/1").await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (404, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (s, _) = h.get("/api/2.0/sql/warehouses/nope").await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn jobs_update_reset_and_permissions() {
    let h = demo().await;
    let id = h.job_id("Nightly Sales ETL").await;
    let (_, before) = h.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
    let mut sched = before["settings"]["schedule"].clone();
    sched["pause_status"] = json!("PAUSED");
    let (s, v) = h
        .post(
            "/api/2.2/jobs/update",
            json!({"job_id": id, "new_settings": {"schedule": sched}}),
        )
        .await;
    assert_eq!((s, v), (200, json!({})));
    let (_, after) = h.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
    assert_eq!(after["settings"]["schedule"]["pause_status"], "PAUSED");
    assert_eq!(
        after["settings"]["schedule"]["quartz_cron_expression"],
        "0 0 2 * * ?"
    );
    assert_eq!(after["settings"]["tasks"], before["settings"]["tasks"]);
    assert_eq!(after["settings"]["tags"], before["settings"]["tags"]);
    // Whole-field replacement: a schedule without timezone gets the default, not the old one.
    h.post(
        "/api/2.2/jobs/update",
        json!({"job_id": id, "new_settings": {"tags": {"x": "y"}},
        "fields_to_remove": ["email_notifications"]}),
    )
    .await;
    let (_, after) = h.get(&format!("/api/2.2/jobs/get?job_id={id}")).await;
    assert_eq!(after["settings"]["tags"], json!({"x": "y"}));
    assert!(after["settings"].get("email_notifications").is_none());
    let (s, _) = h
        .post(
            "/api/2.2/jobs/update",
            json!({"job_id": id, "new_settings":
        {"schedule": {"quartz_cron_expression": "not a cron", "timezone_id": "UTC"}}}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .post(
            "/api/2.1/jobs/reset",
            json!({"job_id": id, "new_settings": {"name": "Renamed"}}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, after) = h.get(&format!("/api/2.1/jobs/get?job_id={id}")).await;
    assert_eq!(after["settings"]["name"], "Renamed");
    assert!(after["settings"].get("schedule").is_none());
    let (s, acl) = h.get(&format!("/api/2.0/permissions/jobs/{id}")).await;
    assert_eq!(s, 200);
    assert_eq!(acl["object_id"], json!(format!("/jobs/{id}")));
    let acl_list = acl["access_control_list"].as_array().unwrap();
    assert!(acl_list
        .iter()
        .any(|e| e["service_principal_name"] == "lifeboat-sp"
            && e["all_permissions"][0]["permission_level"] == "CAN_MANAGE"));
    let wh = h.id_of("warehouses", "name", "id", "Shared BI").await;
    let wh = wh.as_str().unwrap();
    let (s1, a) = h
        .get(&format!("/api/2.0/permissions/warehouses/{wh}"))
        .await;
    let (s2, b) = h
        .get(&format!("/api/2.0/permissions/sql/warehouses/{wh}"))
        .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(a, b);
}

#[tokio::test]
async fn pool_edit_replaces_fields() {
    let h = demo().await;
    let id = h
        .id_of(
            "pools",
            "instance_pool_name",
            "instance_pool_id",
            "General Purpose Pool",
        )
        .await;
    let id = id.as_str().unwrap();
    let (_, p) = h
        .get(&format!(
            "/api/2.0/instance-pools/get?instance_pool_id={id}"
        ))
        .await;
    assert_eq!(p["min_idle_instances"], 2);
    assert_eq!(p["stats"]["idle_count"], 2);
    assert!(p["custom_tags"].is_object());
    let (s, _) = h
        .post(
            "/api/2.0/instance-pools/edit",
            json!({"instance_pool_id": id,
        "instance_pool_name": "General Purpose Pool", "node_type_id": "m5.large"}),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = h
        .post(
            "/api/2.0/instance-pools/edit",
            json!({"instance_pool_id": id,
        "instance_pool_name": "General Purpose Pool", "node_type_id": "i3.xlarge",
        "min_idle_instances": 0, "max_capacity": 20}),
        )
        .await;
    assert_eq!(s, 200);
    let (_, p) = h
        .get(&format!(
            "/api/2.0/instance-pools/get?instance_pool_id={id}"
        ))
        .await;
    assert_eq!(p["min_idle_instances"], 0);
    assert!(
        p.get("custom_tags").is_none(),
        "omitted custom_tags are cleared"
    );
    assert!(
        h.wait_for(2000, || async {
            let (_, p) = h
                .get(&format!(
                    "/api/2.0/instance-pools/get?instance_pool_id={id}"
                ))
                .await;
            p["stats"]["idle_count"] == 0
        })
        .await
    );
    let tl = h.admin("/__emulator/timeline").await;
    assert!(tl["events"].as_array().unwrap().iter().any(
        |e| e["kind"] == "pool_min_idle_changed" && e["detail"] == json!({"from": 2, "to": 0})
    ));
}

#[tokio::test]
async fn run_now_idempotency_and_concurrency() {
    let h = demo().await;
    let id = h.job_id("Ad-hoc Backfill").await;
    let body = json!({"job_id": id, "idempotency_token": "tok-1", "job_parameters": {"day": "2024-01-01"}});
    let (s, a) = h.post("/api/2.2/jobs/run-now", body.clone()).await;
    assert_eq!(s, 200);
    let (_, b) = h.post("/api/2.2/jobs/run-now", body).await;
    assert_eq!(a["run_id"], b["run_id"]);
    let run_id = a["run_id"].as_u64().unwrap();
    let (_, run) = h
        .get(&format!("/api/2.2/jobs/runs/get?run_id={run_id}"))
        .await;
    assert_eq!(run["trigger"], "ONE_TIME");
    assert_eq!(run["state"]["life_cycle_state"], "PENDING");
    assert_eq!(run["end_time"], 0);
    assert_eq!(run["job_parameters"][0]["name"], "day");
    assert!(run["run_page_url"]
        .as_str()
        .unwrap()
        .contains(&format!("run/{run_id}")));
    // Queue disabled, max 1 concurrent: the second run is skipped.
    let dq = h.job_id("Data Quality Checks").await;
    let (_, r1) = h.post("/api/2.2/jobs/run-now", json!({"job_id": dq})).await;
    let (_, r2) = h.post("/api/2.2/jobs/run-now", json!({"job_id": dq})).await;
    assert_ne!(r1["run_id"], r2["run_id"]);
    let (_, run2) = h
        .get(&format!("/api/2.2/jobs/runs/get?run_id={}", r2["run_id"]))
        .await;
    assert_eq!(run2["state"]["life_cycle_state"], "SKIPPED");
    // Queue enabled: QUEUED, then runs after the first is cancelled.
    let q = h.job_id("Schema Migration").await;
    let (_, q1) = h.post("/api/2.2/jobs/run-now", json!({"job_id": q})).await;
    let (_, q2) = h.post("/api/2.2/jobs/run-now", json!({"job_id": q})).await;
    let (_, run) = h
        .get(&format!("/api/2.2/jobs/runs/get?run_id={}", q2["run_id"]))
        .await;
    assert_eq!(run["state"]["life_cycle_state"], "QUEUED");
    h.post("/api/2.2/jobs/runs/cancel", json!({"run_id": q1["run_id"]}))
        .await;
    assert!(
        h.wait_for(2000, || async {
            let (_, run) = h
                .get(&format!("/api/2.2/jobs/runs/get?run_id={}", q2["run_id"]))
                .await;
            run["state"]["life_cycle_state"] == "RUNNING"
        })
        .await
    );
}

#[tokio::test]
async fn dr_role_is_dormant_with_same_names() {
    let p = demo().await;
    let d = up(cfg(Fixture::Demo).role(Role::Dr)).await;
    let (ps, ds) = (p.state().await, d.state().await);
    let names = |s: &Value, k: &str, n: &str| -> Vec<String> {
        let mut v: Vec<String> = s[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[n].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&ps, "jobs", "name"), names(&ds, "jobs", "name"));
    assert_eq!(
        names(&ps, "warehouses", "name"),
        names(&ds, "warehouses", "name")
    );
    assert_ne!(ps["jobs"][0]["job_id"], ds["jobs"][0]["job_id"]);
    assert_eq!(ds["active_runs"], 0);
    for j in ds["jobs"].as_array().unwrap() {
        for k in [
            "schedule_pause_status",
            "continuous_pause_status",
            "trigger_pause_status",
        ] {
            assert!(j[k].is_null() || j[k] == "PAUSED", "{j}");
        }
    }
    assert!(ds["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "TERMINATED"));
    assert!(ds["pools"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["min_idle_instances"] == 0));
    assert!(ds["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "STOPPED"));
    assert!(ds["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["state"] == "IDLE"));
    let wk = d.admin("/.well-known/databricks-config").await;
    assert_eq!(wk["workspace_id"], "6543210987654321");
    let (_, q) = d.post("/api/2.0/sql/statements", json!({"warehouse_id":
        d.id_of("warehouses", "name", "id", "Shared BI").await, "statement": "SELECT count(*) FROM main.sales.orders",
        "wait_timeout": "5s"})).await;
    assert_eq!(q["result"]["data_array"], json!([["50"]]));
}

#[tokio::test]
async fn large_fixture_counts_and_speed() {
    let t = std::time::Instant::now();
    let h = up(cfg(Fixture::Large)).await;
    let built = t.elapsed();
    let st = h.state().await;
    assert_eq!(st["jobs"].as_array().unwrap().len(), 10_000);
    assert_eq!(st["clusters"].as_array().unwrap().len(), 1_000);
    assert_eq!(st["pools"].as_array().unwrap().len(), 100);
    assert_eq!(st["warehouses"].as_array().unwrap().len(), 50);
    assert_eq!(st["pipelines"].as_array().unwrap().len(), 200);
    let active = st["active_runs"].as_u64().unwrap();
    assert!((60..=160).contains(&active), "active runs {active}");
    let unpaused = st["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["schedule_pause_status"] == "UNPAUSED")
        .count();
    assert!((4000..5000).contains(&unpaused), "unpaused {unpaused}");
    let running = st["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "RUNNING")
        .count();
    assert!((200..400).contains(&running));
    let t = std::time::Instant::now();
    let (_, v) = h.get("/api/2.2/jobs/list?limit=100").await;
    let tok = v["next_page_token"].as_str().unwrap().to_string();
    let (_, v2) = h
        .get(&format!("/api/2.2/jobs/list?limit=100&page_token={tok}"))
        .await;
    assert_eq!(v2["jobs"].as_array().unwrap().len(), 100);
    let (_, c) = h
        .get("/api/2.1/clusters/list?filter_by.cluster_states=RUNNING")
        .await;
    assert_eq!(c["clusters"].as_array().unwrap().len(), 100);
    let listed = t.elapsed();
    eprintln!("large fixture built in {built:?}, 3 list pages in {listed:?}");
    assert!(built < Duration::from_secs(5), "built in {built:?}");
    assert!(listed < Duration::from_secs(2));
}
