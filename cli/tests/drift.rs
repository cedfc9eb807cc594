//! Drift parity per object, end to end: `dr-config-check` (the real binary, under its template
//! policy) reads both emulated workspaces. Each kind of difference is made through the
//! workspace's own write API at the primary (the source of a failover) and must come back named
//! with its field, blocking where a job to be activated uses it; identical sites show nothing;
//! with the primary gone the check compares with the stored snapshot and says how old it is.

use std::collections::BTreeMap;

use lifeboat::local::LocalEnv;
use lifeboat_core::ledger::keys;
use lifeboat_core::plan::{Direction, Plan, SiteRole};
use serde_json::{json, Value};

mod common;

/// Runs `dr-config-check` for a failover.
async fn check(env: &LocalEnv, plan: &Plan) -> Value {
    check_run(env, failover_run(plan)).await
}

async fn check_run(env: &LocalEnv, run: lifeboat_core::run::RunContext) -> Value {
    env.invoke("dr-config-check", &json!({ "run": run }))
        .await
        .unwrap()
}

fn failover_run(plan: &Plan) -> lifeboat_core::run::RunContext {
    common::check_run(plan, Direction::Failover)
}

/// Every item of the check's ledger record.
async fn items(env: &LocalEnv, out: &Value) -> Vec<Value> {
    let key = out["summary"]["record"].as_str().unwrap().to_string();
    env.deps
        .ledger
        .get::<Vec<Value>>(&key)
        .await
        .unwrap()
        .unwrap()
        .value
}

/// `(object, field or "(missing)", blocking)` of each item.
fn named(items: &[Value]) -> Vec<(String, String, bool)> {
    items
        .iter()
        .map(|i| {
            (
                format!(
                    "{} {}",
                    i["object"]["kind"].as_str().unwrap(),
                    i["object"]["name"].as_str().unwrap()
                ),
                i["field"]["field"]
                    .as_str()
                    .unwrap_or("(missing)")
                    .to_string(),
                i["blocking"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The primary's REST API with its PAT.
struct Api<'a> {
    env: &'a LocalEnv,
}

impl Api<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.env.primary.url());
        let mut r = lifeboat_core::http::client()
            .request(method, &url)
            .bearer_auth(&self.env.primary_token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }
    async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_sites_show_no_drift_and_every_acl_is_compared() {
    let (env, plan) = common::setup(|_| {}).await;
    let out = check(&env, &plan).await;
    assert_eq!(out["ok"], true, "{out:#}");
    let s = &out["summary"];
    assert_eq!(
        (s["missing"].as_u64(), s["differing"].as_u64()),
        (Some(0), Some(0)),
        "{out:#}"
    );
    assert!(s["not_compared"].as_array().unwrap().is_empty(), "{out:#}");
    // The demo workspaces are small: the check's own budget reads every ACL and spec.
    for side in ["source_coverage", "target_coverage"] {
        let c = &s[side];
        assert!(c["needed"].as_u64().unwrap() > 20, "{c}");
        assert_eq!(c["known"], c["needed"], "{side}: {c}");
    }
    // Every kind was read at both sites.
    let snap = env
        .deps
        .ledger
        .get::<Value>(&keys::snapshot(&plan.name, SiteRole::Primary))
        .await
        .unwrap()
        .unwrap()
        .value;
    for kind in [
        "job",
        "cluster_policy",
        "pool",
        "cluster",
        "warehouse",
        "pipeline",
        "secret_scope",
        "repo",
        "catalog",
        "schema",
    ] {
        assert!(
            snap["objects"][kind]
                .as_object()
                .is_some_and(|m| !m.is_empty()),
            "no {kind} in the snapshot"
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_drift_is_named_with_its_field_and_a_stale_snapshot_with_its_age() {
    let (env, plan) = common::setup(|_| {}).await;
    let api = Api { env: &env };
    let jobs = api
        .get("/api/2.2/jobs/list?expand_tasks=true&limit=100")
        .await;
    let jobs = jobs["jobs"].as_array().unwrap().clone();
    let live = |j: &Value| {
        ["schedule", "continuous", "trigger"]
            .iter()
            .any(|f| j["settings"][f]["pause_status"] == "UNPAUSED")
    };
    let cluster_of = |j: &Value| j["settings"]["job_clusters"][0]["new_cluster"].clone();
    // A job to be activated that runs under a policy and reads a secret, and one that is not.
    let activated = jobs
        .iter()
        .find(|j| live(j) && cluster_of(j)["policy_id"].is_string())
        .expect("a live job under a policy")
        .clone();
    let dormant = jobs
        .iter()
        .find(|j| !live(j))
        .expect("a job with nothing live")
        .clone();
    let name = |j: &Value| j["settings"]["name"].as_str().unwrap().to_string();
    let (active_name, dormant_name) = (name(&activated), name(&dormant));

    // 1. The activated job: another timeout (its own field; blocks).
    let mut settings = activated["settings"].clone();
    settings["timeout_seconds"] = json!(7200);
    api.post(
        "/api/2.2/jobs/reset",
        json!({"job_id": activated["job_id"], "new_settings": settings}),
    )
    .await;
    // 2. The dormant job: a tag (warns: nothing to be activated).
    let mut settings = dormant["settings"].clone();
    settings["tags"]["owner"] = json!("someone-else");
    api.post(
        "/api/2.2/jobs/reset",
        json!({"job_id": dormant["job_id"], "new_settings": settings}),
    )
    .await;
    // 3. The policy the activated job runs under: its definition.
    let policy_id = str_of(&cluster_of(&activated), "policy_id").to_string();
    let policy = api
        .get(&format!(
            "/api/2.0/policies/clusters/get?policy_id={policy_id}"
        ))
        .await;
    let mut definition: Value = serde_json::from_str(str_of(&policy, "definition")).unwrap();
    definition["autotermination_minutes"] = json!({"type": "fixed", "value": 15});
    api.post(
        "/api/2.0/policies/clusters/edit",
        json!({"policy_id": policy_id, "name": policy["name"], "definition": definition.to_string(),
            "description": policy["description"], "max_clusters_per_user": policy["max_clusters_per_user"]}),
    )
    .await;
    // 4. A pool: its idle termination.
    let pools = api.get("/api/2.0/instance-pools/list").await;
    let pool = pools["instance_pools"][0].clone();
    let mut edit = pool.clone();
    edit["idle_instance_autotermination_minutes"] = json!(3);
    for k in ["state", "stats", "status", "default_tags"] {
        edit.as_object_mut().unwrap().remove(k);
    }
    api.post("/api/2.0/instance-pools/edit", edit).await;
    // 5. A warehouse: its auto-stop.
    let whs = api.get("/api/2.0/sql/warehouses").await;
    let wh = whs["warehouses"][0].clone();
    api.post(
        &format!("/api/2.0/sql/warehouses/{}/edit", str_of(&wh, "id")),
        json!({"auto_stop_mins": 90}),
    )
    .await;
    // 6. A pipeline: a configuration value.
    let pls = api.get("/api/2.0/pipelines").await;
    let pl_id = str_of(&pls["statuses"][0], "pipeline_id").to_string();
    let pl = api.get(&format!("/api/2.0/pipelines/{pl_id}")).await;
    let mut spec = pl["spec"].clone();
    spec["configuration"]["drift_probe"] = json!("primary-only");
    api.call(
        reqwest::Method::PUT,
        &format!("/api/2.0/pipelines/{pl_id}"),
        Some(spec),
    )
    .await;
    // 7. The activated job's ACL: one more group.
    api.call(
        reqwest::Method::PATCH,
        &format!("/api/2.0/permissions/jobs/{}", activated["job_id"]),
        Some(json!({"access_control_list": [{"group_name": "auditors", "permission_level": "CAN_VIEW"}]})),
    )
    .await;
    // 8. Secret scopes: a key and an ACL entry in one, a scope DR lacks.
    let scope = api.get("/api/2.0/secrets/scopes/list").await["scopes"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    api.post(
        "/api/2.0/secrets/put",
        json!({"scope": scope, "key": "new-key", "string_value": "never-shown-s3cr3t"}),
    )
    .await;
    api.post(
        "/api/2.0/secrets/acls/put",
        json!({"scope": scope, "principal": "auditors", "permission": "READ"}),
    )
    .await;
    api.post(
        "/api/2.0/secrets/scopes/create",
        json!({"scope": "primary-only"}),
    )
    .await;
    // 9. The activated job's repo: another branch.
    let notebook = activated["settings"]["tasks"][0]["notebook_task"]["notebook_path"]
        .as_str()
        .unwrap()
        .to_string();
    let repo_path = notebook.split('/').take(4).collect::<Vec<_>>().join("/");
    let repos = api.get("/api/2.0/repos").await;
    let repo = repos["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == repo_path.as_str())
        .unwrap_or_else(|| panic!("repo {repo_path} in {repos}"))
        .clone();
    api.call(
        reqwest::Method::PATCH,
        &format!("/api/2.0/repos/{}", repo["id"]),
        Some(json!({"branch": "hotfix"})),
    )
    .await;
    // 10. A catalog grant.
    api.call(
        reqwest::Method::PATCH,
        "/api/2.1/unity-catalog/permissions/catalog/main",
        Some(json!({"changes": [{"principal": "auditors", "add": ["USE_CATALOG"]}]})),
    )
    .await;
    // 11. A cluster: its auto-termination.
    let clusters = api
        .get("/api/2.1/clusters/list?filter_by.cluster_sources=UI")
        .await;
    let cluster = clusters["clusters"][0].clone();
    let cluster_name = str_of(&cluster, "cluster_name").to_string();
    // `edit` replaces the whole specification: send it all, one value changed.
    let mut spec = serde_json::Map::new();
    for k in lifeboat_core::drift::normalize::CLUSTER_KEYS
        .iter()
        .chain(&["cluster_id", "cluster_name"])
    {
        if let Some(v) = cluster.get(*k).filter(|v| !v.is_null()) {
            spec.insert(k.to_string(), v.clone());
        }
    }
    spec.insert("autotermination_minutes".into(), json!(11));
    api.post("/api/2.1/clusters/edit", Value::Object(spec))
        .await;

    // Whether a job to be activated refers to an id (its drift then blocks).
    let used = |id: &str| {
        jobs.iter()
            .any(|j| live(j) && j["settings"].to_string().contains(id))
    };
    let out = check(&env, &plan).await;
    let all = items(&env, &out).await;
    let got = named(&all);
    let has = |object: &str, field: &str, blocking: bool| {
        got.iter()
            .any(|(o, f, b)| o == object && f.starts_with(field) && *b == blocking)
    };
    let policy_name = policy["name"].as_str().unwrap();
    let expected: Vec<(String, &str, bool)> = vec![
        (format!("job {active_name}"), "timeout_seconds", true),
        (format!("job {dormant_name}"), "tags.owner", false),
        (
            format!("cluster_policy {policy_name}"),
            "definition.autotermination_minutes",
            true,
        ),
        (
            format!("pool {}", str_of(&pool, "instance_pool_name")),
            "idle_instance_autotermination_minutes",
            used(str_of(&pool, "instance_pool_id")),
        ),
        (
            format!("warehouse {}", str_of(&wh, "name")),
            "auto_stop_mins",
            used(str_of(&wh, "id")),
        ),
        (
            format!("pipeline {}", str_of(&pl, "name")),
            "spec.configuration.drift_probe",
            used(&pl_id),
        ),
        // An ACL difference warns by default (who may see it, not how it runs).
        (format!("job {active_name}"), "acl.group:auditors", false),
        (
            format!("secret_scope {scope}"),
            "keys.new-key",
            used(&format!("{{{{secrets/{scope}/")),
        ),
        (format!("secret_scope {scope}"), "acl.auditors", false),
        ("secret_scope primary-only".to_string(), "(missing)", false),
        (format!("repo {repo_path}"), "branch", true),
        ("catalog main".to_string(), "grants.auditors", false),
        (
            format!("cluster {cluster_name}"),
            "autotermination_minutes",
            used(str_of(&cluster, "cluster_id")),
        ),
    ];
    for (object, field, blocking) in &expected {
        assert!(
            has(object, field, *blocking),
            "{object} {field} (blocking {blocking}) not in {got:#?}"
        );
    }
    // Nothing else differs (a repo's branch moves its head commit too).
    let extra: Vec<_> = got
        .iter()
        .filter(|(o, f, _)| {
            !expected
                .iter()
                .any(|(eo, ef, _)| o == eo && f.starts_with(ef))
        })
        .filter(|(o, f, _)| !(o == &format!("repo {repo_path}") && f == "head_commit_id"))
        .collect();
    assert!(extra.is_empty(), "unexpected drift: {extra:#?}");
    assert_eq!(
        out["ok"], false,
        "the activated job's drift blocks: {out:#}"
    );
    assert_eq!(
        out["summary"]["blocking"].as_u64().unwrap() as usize,
        all.iter().filter(|i| i["blocking"] == true).count()
    );
    // The lines name the field and both values; a secret's value appears nowhere.
    let text = out.to_string() + &serde_json::to_string(&all).unwrap();
    assert!(
        text.contains("timeout_seconds is 7200 at the source"),
        "{out:#}"
    );
    assert!(!text.contains("never-shown-s3cr3t"));

    // The plan can let it all only warn, one kind ignored; the rest of the comparison is the
    // same.
    let mut relaxed = plan.clone();
    relaxed.drift.warn = lifeboat_core::plan::ObjectKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    relaxed.drift.ignore = vec!["catalog".into(), "job.acl".into()];
    let out_relaxed = check(&env, &relaxed).await;
    assert_eq!(out_relaxed["ok"], true, "{out_relaxed:#}");
    let relaxed_items = named(&items(&env, &out_relaxed).await);
    assert_eq!(relaxed_items.len(), got.len() - 2, "{relaxed_items:#?}");
    assert!(relaxed_items
        .iter()
        .all(|(o, f, b)| !b && !o.starts_with("catalog ") && !f.starts_with("acl.group:auditors")));

    // An operator accepted the drift when starting the run: it goes on, the drift still listed.
    let mut run = failover_run(&plan);
    run.accept_drift = Some(lifeboat_core::run::DriftAcceptance {
        by: "arn:aws:sts::123456789012:assumed-role/oncall/dana".into(),
        reason: "DR repo one commit behind; accepted mid-incident".into(),
        at: chrono::Utc::now(),
    });
    let accepted = check_run(&env, run).await;
    assert_eq!(accepted["ok"], true, "{accepted:#}");
    assert!(
        accepted["accepted"].as_str().is_some_and(
            |a| a.contains("accepted by arn:aws:sts::123456789012:assumed-role/oncall/dana")
        ),
        "{accepted:#}"
    );
    assert_eq!(accepted["blocking"], out["blocking"]);

    // The primary's region down: the stored snapshot, with its age; the same drift.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    env.region_outage(SiteRole::Primary, true).await.unwrap();
    let stale = check(&env, &plan).await;
    assert_eq!(stale["compared_with"], "snapshot", "{stale:#}");
    assert!(
        stale["source_age_seconds"].as_i64().unwrap() >= 2,
        "{stale:#}"
    );
    let again = named(&items(&env, &stale).await);
    let key = |v: &Vec<(String, String, bool)>| -> BTreeMap<String, bool> {
        v.iter().map(|(o, f, b)| (format!("{o} {f}"), *b)).collect()
    };
    assert_eq!(key(&again), key(&got));
    env.stop().await;
}

/// A bearer token for DR (OAuth M2M, as the plan's service principal).
async fn dr_token(env: &LocalEnv) -> String {
    let r: Value = lifeboat_core::http::client()
        .post(format!("{}/oidc/v1/token", env.dr.url()))
        .basic_auth("lifeboat-sp", Some(&env.dr_oauth_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    r["access_token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_missing_from_a_workspace_folder_at_the_target_blocks_the_job_using_it() {
    let (env, plan) = common::setup(|_| {}).await;
    let dr = dr_token(&env).await;
    let site = |role: SiteRole| match role {
        SiteRole::Primary => (env.primary.url().to_string(), env.primary_token.clone()),
        SiteRole::Dr => (env.dr.url().to_string(), dr.clone()),
    };
    let call = |role: SiteRole, path: &str, body: Option<Value>| {
        let (url, token) = site(role);
        let path = path.to_string();
        async move {
            let http = lifeboat_core::http::client();
            let r = match body {
                Some(b) => http.post(format!("{url}{path}")).json(&b),
                None => http.get(format!("{url}{path}")),
            };
            let r = r.bearer_auth(token).send().await.unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
        }
    };
    // At both sites, one live job runs a notebook from a workspace folder (not a repo).
    let notebook = "/Shared/dr/validation";
    let mut name = String::new();
    for role in [SiteRole::Primary, SiteRole::Dr] {
        let jobs = call(role, "/api/2.2/jobs/list?expand_tasks=true&limit=100", None).await;
        let job = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["settings"]["name"] == "Nightly Sales ETL")
            .unwrap()
            .clone();
        let mut settings = job["settings"].clone();
        settings["tasks"][0]["notebook_task"]["notebook_path"] = json!(notebook);
        call(
            role,
            "/api/2.2/jobs/reset",
            Some(json!({"job_id": job["job_id"], "new_settings": settings})),
        )
        .await;
        name = settings["name"].as_str().unwrap().to_string();
    }
    let out = check(&env, &plan).await;
    assert_eq!(out["ok"], true, "the same folder at both sites: {out:#}");
    // The notebook is deleted at DR: the job would start and fail there.
    call(
        SiteRole::Dr,
        "/api/2.0/workspace/delete",
        Some(json!({"path": notebook, "recursive": false})),
    )
    .await;
    let out = check(&env, &plan).await;
    let all = named(&items(&env, &out).await);
    assert!(
        all.contains(&(
            "folder /Shared/dr".to_string(),
            "validation".to_string(),
            true
        )),
        "{all:#?}"
    );
    assert_eq!(out["ok"], false, "{out:#}");
    assert!(
        out["blocking"].as_array().unwrap().iter().any(|b| b
            .as_str()
            .unwrap()
            .contains(&format!("job {name:?} to be activated uses it"))),
        "{out:#}"
    );
    env.stop().await;
}
