//! The configuration objects a per-object drift check reads: cluster policies, secrets, repos,
//! the workspace tree, Unity Catalog, per-object permissions, pipeline specs and warehouse
//! settings — shapes, paging, errors, writes that persist, and both roles' identical content.

mod common;

use std::collections::BTreeSet;

use common::*;
use databricks_emulator::fixtures::{secret_value, LARGE_SECRET_KEYS};
use databricks_emulator::{Fixture, Role};
use serde_json::{json, Value};

fn strings(v: &Value, list: &str, field: &str) -> Vec<String> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[field].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn assert_err(got: (u16, Value), status: u16, code: &str, needle: &str) {
    let (s, v) = got;
    assert_eq!(s, status, "{v}");
    assert_eq!(v["error_code"], code, "{v}");
    let msg = v["message"].as_str().unwrap_or("");
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
}

async fn policy_id(h: &H, name: &str) -> String {
    let v = h.ok("/api/2.0/policies/clusters/list").await;
    v["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| p["policy_id"].as_str().unwrap().to_string())
        .expect("policy exists")
}

async fn job_settings(h: &H, name: &str) -> Value {
    let id = h.job_id(name).await;
    h.ok(&format!("/api/2.2/jobs/get?job_id={id}")).await["settings"].clone()
}

#[tokio::test]
async fn cluster_policies_list_get_edit_and_errors() {
    let h = demo().await;
    let v = h.ok("/api/2.0/policies/clusters/list").await;
    assert_eq!(v["total_count"], 2);
    assert_eq!(
        strings(&v, "policies", "name"),
        ["Job Compute Policy", "Shared Compute Policy"]
    );
    let p = &v["policies"][1];
    let def = p["definition"].as_str().expect("definition is a string");
    let parsed: Value = serde_json::from_str(def).unwrap();
    assert_eq!(parsed["spark_version"]["value"], "15.4.x-scala2.12");
    assert_eq!(parsed["autotermination_minutes"]["maxValue"], 120);
    assert_eq!(p["creator_user_name"], "dr-admin@example.com");
    assert!(p["created_at_timestamp"].as_i64().unwrap() > 0);
    assert_eq!(p["max_clusters_per_user"], 2);
    let v = h
        .ok("/api/2.0/policies/clusters/list?sort_column=POLICY_CREATION_TIME&sort_order=DESC")
        .await;
    assert_eq!(
        strings(&v, "policies", "name"),
        ["Job Compute Policy", "Shared Compute Policy"]
    );
    assert_err(
        h.get("/api/2.0/policies/clusters/list?sort_column=NAME")
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "NAME",
    );

    let id = policy_id(&h, "Job Compute Policy").await;
    let got = h
        .ok(&format!("/api/2.0/policies/clusters/get?policy_id={id}"))
        .await;
    assert_eq!(got["name"], "Job Compute Policy");
    assert_eq!(got["policy_id"], json!(id));
    assert!(got.get("max_clusters_per_user").is_none());
    assert_err(
        h.get("/api/2.0/policies/clusters/get?policy_id=NOPE").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Can't find a cluster policy with id: NOPE",
    );
    assert_err(
        h.get("/api/2.0/policies/clusters/get").await,
        400,
        "INVALID_PARAMETER_VALUE",
        "policy_id",
    );

    // Nightly Sales ETL's job cluster is governed by the Job Compute Policy.
    let s = job_settings(&h, "Nightly Sales ETL").await;
    assert_eq!(s["job_clusters"][0]["new_cluster"]["policy_id"], json!(id));

    let new_def = r#"{"spark_version":{"type":"fixed","value":"16.4.x-scala2.12"}}"#;
    let (s, v) = h
        .post(
            "/api/2.0/policies/clusters/edit",
            json!({"policy_id": id, "name": "Job Compute Policy", "definition": new_def,
                   "max_clusters_per_user": 5}),
        )
        .await;
    assert_eq!((s, v), (200, json!({})));
    let got = h
        .ok(&format!("/api/2.0/policies/clusters/get?policy_id={id}"))
        .await;
    assert_eq!(got["definition"], new_def);
    assert_eq!(got["max_clusters_per_user"], 5);
    assert!(got.get("description").is_none(), "edit replaces: {got}");
    for bad in ["[1,2]", "{oops", "\"x\""] {
        assert_err(
            h.post(
                "/api/2.0/policies/clusters/edit",
                json!({"policy_id": id, "name": "Job Compute Policy", "definition": bad}),
            )
            .await,
            400,
            "INVALID_PARAMETER_VALUE",
            "definition",
        );
    }
    assert_err(
        h.post(
            "/api/2.0/policies/clusters/edit",
            json!({"policy_id": id, "name": "Shared Compute Policy", "definition": "{}"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "already exists",
    );
    assert_err(
        h.post(
            "/api/2.0/policies/clusters/edit",
            json!({"policy_id": "NOPE", "name": "x", "definition": "{}"}),
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "NOPE",
    );
    assert_err(
        h.post(
            "/api/2.0/policies/clusters/edit",
            json!({"policy_id": id, "definition": "{}"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "name",
    );
    assert_err(
        h.post(
            "/api/2.0/policies/clusters/edit",
            json!({"policy_id": id, "name": "n", "max_clusters_per_user": -1}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "max_clusters_per_user",
    );
    // The definition is unchanged by the refused edits.
    let got = h
        .ok(&format!("/api/2.0/policies/clusters/get?policy_id={id}"))
        .await;
    assert_eq!(got["definition"], new_def);
    // Cluster-policy permissions resolve against the policy store.
    let acl = h
        .ok(&format!("/api/2.0/permissions/cluster-policies/{id}"))
        .await;
    assert_eq!(acl["object_type"], "cluster-policy");
    assert_eq!(
        h.get("/api/2.0/permissions/cluster-policies/NOPE").await.0,
        404
    );
}

#[tokio::test]
async fn secrets_scopes_keys_acls_and_errors() {
    let h = demo().await;
    let v = h.ok("/api/2.0/secrets/scopes/list").await;
    assert_eq!(
        v,
        json!({"scopes": [{"name": "etl", "backend_type": "DATABRICKS"},
                          {"name": "ml", "backend_type": "DATABRICKS"}]})
    );
    let v = h.ok("/api/2.0/secrets/list?scope=etl").await;
    assert_eq!(strings(&v, "secrets", "key"), ["api-token", "db-password"]);
    assert!(v["secrets"][0]["last_updated_timestamp"].as_i64().unwrap() > 0);
    let v = h.ok("/api/2.0/secrets/acls/list?scope=etl").await;
    assert_eq!(
        v,
        json!({"items": [{"principal": "admins", "permission": "MANAGE"},
                         {"principal": "data-engineers", "permission": "READ"}]})
    );
    assert_err(
        h.get("/api/2.0/secrets/list?scope=nope").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Scope nope does not exist",
    );
    assert_err(
        h.get("/api/2.0/secrets/acls/list?scope=nope").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "nope",
    );
    assert_err(
        h.get("/api/2.0/secrets/list").await,
        400,
        "INVALID_PARAMETER_VALUE",
        "scope",
    );
    // Partner File Loader reads a secret into its cluster's environment.
    let s = job_settings(&h, "Partner File Loader").await;
    assert_eq!(
        s["job_clusters"][0]["new_cluster"]["spark_env_vars"]["PARTNER_API_TOKEN"],
        "{{secrets/etl/api-token}}"
    );

    // Create a scope (the creator gets MANAGE), a duplicate, a bad name.
    let (s, v) = h
        .post("/api/2.0/secrets/scopes/create", json!({"scope": "drift"}))
        .await;
    assert_eq!((s, v), (200, json!({})));
    assert_eq!(
        h.ok("/api/2.0/secrets/acls/list?scope=drift").await,
        json!({"items": [{"principal": "dr-admin@example.com", "permission": "MANAGE"}]})
    );
    assert_eq!(h.ok("/api/2.0/secrets/list?scope=drift").await, json!({}));
    assert_err(
        h.post("/api/2.0/secrets/scopes/create", json!({"scope": "etl"}))
            .await,
        400,
        "RESOURCE_ALREADY_EXISTS",
        "Scope etl already exists!",
    );
    assert_err(
        h.post(
            "/api/2.0/secrets/scopes/create",
            json!({"scope": "bad name"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "bad name",
    );
    // Put a secret: listed with a timestamp, value never returned.
    let before = h.ok("/api/2.0/secrets/list?scope=etl").await["secrets"][0]
        ["last_updated_timestamp"]
        .as_i64()
        .unwrap();
    let (s, _) = h
        .post(
            "/api/2.0/secrets/put",
            json!({"scope": "etl", "key": "api-token", "string_value": "rotated-token-value"}),
        )
        .await;
    assert_eq!(s, 200);
    let v = h.ok("/api/2.0/secrets/list?scope=etl").await;
    assert!(v["secrets"][0]["last_updated_timestamp"].as_i64().unwrap() > before);
    assert_err(
        h.post(
            "/api/2.0/secrets/put",
            json!({"scope": "nope", "key": "k", "string_value": "v"}),
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "nope",
    );
    assert_err(
        h.post("/api/2.0/secrets/put", json!({"scope": "etl", "key": "k"}))
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "string_value",
    );
    // ACLs: put (overwrite), bad permission, get, delete.
    for perm in ["WRITE", "READ"] {
        let (s, _) = h
            .post(
                "/api/2.0/secrets/acls/put",
                json!({"scope": "etl", "principal": "analysts", "permission": perm}),
            )
            .await;
        assert_eq!(s, 200);
    }
    assert_eq!(
        h.ok("/api/2.0/secrets/acls/get?scope=etl&principal=analysts")
            .await,
        json!({"principal": "analysts", "permission": "READ"})
    );
    assert_err(
        h.post(
            "/api/2.0/secrets/acls/put",
            json!({"scope": "etl", "principal": "analysts", "permission": "OWN"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "OWN",
    );
    let (s, _) = h
        .post(
            "/api/2.0/secrets/acls/delete",
            json!({"scope": "etl", "principal": "analysts"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_err(
        h.post(
            "/api/2.0/secrets/acls/delete",
            json!({"scope": "etl", "principal": "analysts"}),
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "analysts",
    );
    assert_eq!(
        h.ok("/api/2.0/secrets/acls/list?scope=etl").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // There is no endpoint that reads a value.
    assert_err(
        h.get("/api/2.0/secrets/get?scope=etl&key=api-token").await,
        404,
        "ENDPOINT_NOT_FOUND",
        "secrets/get",
    );
}

#[tokio::test]
async fn secret_values_are_never_returned() {
    let h = demo().await;
    let (s, _) = h
        .post(
            "/api/2.0/secrets/put",
            json!({"scope": "ml", "key": "fresh", "string_value": "fresh-secret-value-42"}),
        )
        .await;
    assert_eq!(s, 200);
    let mut values: Vec<String> = [
        ("etl", "db-password"),
        ("etl", "api-token"),
        ("ml", "mlflow-token"),
    ]
    .iter()
    .map(|(s, k)| secret_value(s, k))
    .collect();
    values.push("fresh-secret-value-42".into());
    let mut bodies = Vec::new();
    for path in [
        "/api/2.0/secrets/scopes/list",
        "/api/2.0/secrets/list?scope=etl",
        "/api/2.0/secrets/list?scope=ml",
        "/api/2.0/secrets/acls/list?scope=etl",
        "/api/2.0/secrets/acls/list?scope=ml",
        "/api/2.0/secrets/acls/get?scope=ml&principal=admins",
        "/api/2.0/secrets/get?scope=ml&key=fresh",
        "/api/2.2/jobs/list?expand_tasks=true&limit=100",
        "/api/2.0/policies/clusters/list",
        "/api/2.0/workspace/list?path=/Shared",
    ] {
        bodies.push(h.get(path).await.1.to_string());
    }
    for path in [
        "/__emulator/requests",
        "/__emulator/state",
        "/__emulator/timeline",
    ] {
        bodies.push(h.admin(path).await.to_string());
    }
    for b in &bodies {
        for v in &values {
            assert!(!b.contains(v.as_str()), "{v} leaked in {b}");
        }
    }
    let log = h.admin("/__emulator/requests").await;
    let put = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/api/2.0/secrets/put")
        .unwrap();
    assert_eq!(put["body"]["string_value"], "[REDACTED]");
    assert_eq!(put["body"]["key"], "fresh");
}

#[tokio::test]
async fn repos_list_pages_get_patch_create_and_errors() {
    let h = demo().await;
    let v = h.ok("/api/2.0/repos").await;
    assert!(v.get("next_page_token").is_none(), "one page: {v}");
    let paths = strings(&v, "repos", "path");
    assert_eq!(paths.len(), 14);
    assert!(paths.windows(2).all(|w| w[0] < w[1]), "ordered by path");
    assert!(paths.contains(&"/Repos/sales/pipelines".to_string()));
    assert!(
        paths.contains(&"/Repos/data/pipelines".to_string()),
        "untagged jobs"
    );
    let sales = v["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/Repos/sales/pipelines")
        .unwrap()
        .clone();
    assert_eq!(sales["url"], "https://github.com/acme/sales-pipelines");
    assert_eq!(sales["provider"], "gitHub");
    assert_eq!(sales["branch"], "main");
    let head = sales["head_commit_id"].as_str().unwrap().to_string();
    assert_eq!(head.len(), 40);
    let id = sales["id"].as_i64().expect("int64 id");
    assert_eq!(h.ok(&format!("/api/2.0/repos/{id}")).await, sales);

    // Twenty more repos: 34 in all, pages of 20, the token absent on the last page.
    for i in 0..20 {
        let (s, r) = h
            .post(
                "/api/2.0/repos",
                json!({"url": format!("https://github.com/acme/extra-{i:02}.git"),
                       "provider": "GitHub", "path": format!("/Repos/extra/extra-{i:02}")}),
            )
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["branch"], "main");
        assert_eq!(r["provider"], "gitHub");
    }
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("/api/2.0/repos?next_page_token={t}"),
            None => "/api/2.0/repos".to_string(),
        };
        let v = h.ok(&path).await;
        pages += 1;
        let n = v["repos"].as_array().unwrap().len();
        all.extend(strings(&v, "repos", "path"));
        match v.get("next_page_token") {
            Some(t) => {
                assert_eq!(n, 20);
                token = Some(t.as_str().unwrap().to_string());
            }
            None => break,
        }
    }
    assert_eq!((pages, all.len()), (2, 34));
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 34);
    let v = h.ok("/api/2.0/repos?path_prefix=/Repos/extra/").await;
    assert_eq!(v["repos"].as_array().unwrap().len(), 20);
    assert!(v.get("next_page_token").is_none());
    let v = h
        .ok("/api/2.0/repos?path_prefix=/Workspace/Repos/sales")
        .await;
    assert_eq!(strings(&v, "repos", "path"), ["/Repos/sales/pipelines"]);
    assert_eq!(
        h.ok("/api/2.0/repos?path_prefix=/Repos/none").await,
        json!({})
    );
    assert_err(
        h.get("/api/2.0/repos?next_page_token=garbage").await,
        400,
        "INVALID_PARAMETER_VALUE",
        "page token",
    );

    // PATCH: a branch changes head_commit_id deterministically; a tag detaches.
    let (s, r) = h
        .patch(
            &format!("/api/2.0/repos/{id}"),
            json!({"branch": "release"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["branch"], "release");
    let release_head = r["head_commit_id"].as_str().unwrap().to_string();
    assert_ne!(release_head, head);
    let (_, r) = h
        .patch(&format!("/api/2.0/repos/{id}"), json!({"branch": "main"}))
        .await;
    assert_eq!(r["head_commit_id"], json!(head));
    let (_, r) = h
        .patch(&format!("/api/2.0/repos/{id}"), json!({"tag": "v1.0"}))
        .await;
    assert!(r.get("branch").is_none());
    assert_eq!(h.ok(&format!("/api/2.0/repos/{id}")).await, r);
    assert_err(
        h.patch(&format!("/api/2.0/repos/{id}"), json!({})).await,
        400,
        "INVALID_PARAMETER_VALUE",
        "branch",
    );
    assert_err(
        h.patch("/api/2.0/repos/42", json!({"branch": "x"})).await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "42",
    );
    assert_err(
        h.get("/api/2.0/repos/abc").await,
        400,
        "INVALID_PARAMETER_VALUE",
        "abc",
    );
    // POST errors and the default path.
    assert_err(
        h.post(
            "/api/2.0/repos",
            json!({"url": "https://x/y.git", "provider": "svn", "path": "/Repos/a/b"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "svn",
    );
    assert_err(
        h.post(
            "/api/2.0/repos",
            json!({"url": "https://x/y.git", "provider": "gitHub", "path": "/Repos/sales/pipelines"}),
        )
        .await,
        400,
        "RESOURCE_ALREADY_EXISTS",
        "/Repos/sales/pipelines",
    );
    assert_err(
        h.post(
            "/api/2.0/repos",
            json!({"url": "https://x/y.git", "provider": "gitHub", "path": "/Repos/sales/pipelines/inner/x"}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "",
    );
    assert_err(
        h.post("/api/2.0/repos", json!({"provider": "gitHub"}))
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "url",
    );
    let (s, r) = h
        .post(
            "/api/2.0/repos",
            json!({"url": "https://github.com/acme/tools.git", "provider": "gitHub"}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["path"], "/Repos/dr-admin@example.com/tools");
    // A repo is a REPO object of the tree with the same id; deleting it removes both.
    let st = h
        .ok("/api/2.0/workspace/get-status?path=/Repos/dr-admin@example.com/tools")
        .await;
    assert_eq!(st["object_type"], "REPO");
    assert_eq!(st["object_id"], r["id"]);
    let (s, _) = h
        .send(
            reqwest::Method::DELETE,
            &format!("/api/2.0/repos/{}", r["id"]),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        h.get("/api/2.0/workspace/get-status?path=/Repos/dr-admin@example.com/tools")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn workspace_tree_lists_repos_notebooks_and_errors() {
    let h = demo().await;
    let root = h.ok("/api/2.0/workspace/list?path=/").await;
    assert_eq!(
        strings(&root, "objects", "path"),
        ["/Repos", "/Shared", "/Users"]
    );
    assert!(root["objects"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["object_type"] == "DIRECTORY" && o["object_id"].is_i64()));
    let team = h.ok("/api/2.0/workspace/list?path=/Repos/sales").await;
    assert_eq!(team["objects"][0]["object_type"], "REPO");
    assert_eq!(team["objects"][0]["path"], "/Repos/sales/pipelines");
    let repo = h
        .ok("/api/2.0/workspace/list?path=/Repos/sales/pipelines")
        .await;
    assert_eq!(
        strings(&repo, "objects", "path"),
        [
            "/Repos/sales/pipelines/README.md",
            "/Repos/sales/pipelines/dlt",
            "/Repos/sales/pipelines/nightly_sales_etl",
        ]
    );
    assert_eq!(repo["objects"][0]["object_type"], "FILE");
    let nb = h
        .ok("/api/2.0/workspace/list?path=/Repos/sales/pipelines/nightly_sales_etl")
        .await;
    assert_eq!(
        strings(&nb, "objects", "path"),
        [
            "/Repos/sales/pipelines/nightly_sales_etl/ingest",
            "/Repos/sales/pipelines/nightly_sales_etl/publish",
            "/Repos/sales/pipelines/nightly_sales_etl/transform",
        ]
    );
    let first = &nb["objects"][0];
    assert_eq!(first["object_type"], "NOTEBOOK");
    assert_eq!(first["language"], "PYTHON");
    assert_eq!(first["resource_id"], json!(first["object_id"].to_string()));
    assert!(first["modified_at"].is_i64());
    // get-status, /Workspace prefix, listing a notebook lists the notebook.
    let st = h
        .ok("/api/2.0/workspace/get-status?path=/Workspace/Repos/sales/pipelines/nightly_sales_etl/ingest")
        .await;
    assert_eq!(st, *first);
    let one = h
        .ok("/api/2.0/workspace/list?path=/Repos/sales/pipelines/nightly_sales_etl/ingest")
        .await;
    assert_eq!(one["objects"], json!([first]));
    // Every notebook every job and pipeline uses exists.
    let jobs = h.ok("/api/2.2/jobs/list?expand_tasks=true&limit=100").await;
    let mut checked = 0;
    for j in jobs["jobs"].as_array().unwrap() {
        let team = j["settings"]["tags"]["team"].as_str().unwrap_or("data");
        for t in j["settings"]["tasks"].as_array().unwrap() {
            let p = t["notebook_task"]["notebook_path"].as_str().unwrap();
            assert!(p.starts_with(&format!("/Repos/{team}/pipelines/")), "{p}");
            let st = h
                .ok(&format!("/api/2.0/workspace/get-status?path={p}"))
                .await;
            assert_eq!(st["object_type"], "NOTEBOOK");
            checked += 1;
        }
    }
    assert!(checked >= 23 * 2);
    let pl = h.ok("/api/2.0/pipelines").await;
    for p in pl["statuses"].as_array().unwrap() {
        let full = h
            .ok(&format!(
                "/api/2.0/pipelines/{}",
                p["pipeline_id"].as_str().unwrap()
            ))
            .await;
        let path = full["spec"]["libraries"][0]["notebook"]["path"]
            .as_str()
            .unwrap();
        assert!(path.contains("/pipelines/dlt/"), "{path}");
        let st = h
            .ok(&format!("/api/2.0/workspace/get-status?path={path}"))
            .await;
        assert_eq!(st["language"], "SQL");
    }
    // Errors.
    assert_err(
        h.get("/api/2.0/workspace/list?path=/Repos/nope").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Path (/Repos/nope) doesn't exist.",
    );
    assert_err(
        h.get("/api/2.0/workspace/get-status?path=/x/y").await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Path (/x/y) doesn't exist.",
    );
    assert_err(
        h.get("/api/2.0/workspace/get-status?path=Shared").await,
        400,
        "INVALID_PARAMETER_VALUE",
        "doesn't start with '/'",
    );
    // mkdirs: parents created, an empty directory lists as `{}`, no folder under a notebook.
    let (s, v) = h
        .post(
            "/api/2.0/workspace/mkdirs",
            json!({"path": "/Shared/drift/a/b"}),
        )
        .await;
    assert_eq!((s, v), (200, json!({})));
    assert_eq!(
        h.ok("/api/2.0/workspace/list?path=/Shared/drift/a/b").await,
        json!({})
    );
    let (s, _) = h
        .post(
            "/api/2.0/workspace/mkdirs",
            json!({"path": "/Shared/drift/a"}),
        )
        .await;
    assert_eq!(s, 200, "mkdirs of an existing directory is a no-op");
    assert_err(
        h.post(
            "/api/2.0/workspace/mkdirs",
            json!({"path": "/Shared/dr/validation/sub"}),
        )
        .await,
        400,
        "RESOURCE_ALREADY_EXISTS",
        "/Shared/dr/validation",
    );
    // delete: non-empty needs recursive; missing is 404.
    assert_err(
        h.post(
            "/api/2.0/workspace/delete",
            json!({"path": "/Shared/drift"}),
        )
        .await,
        400,
        "DIRECTORY_NOT_EMPTY",
        "/Shared/drift",
    );
    let (s, _) = h
        .post(
            "/api/2.0/workspace/delete",
            json!({"path": "/Shared/drift", "recursive": true}),
        )
        .await;
    assert_eq!(s, 200);
    assert_err(
        h.post(
            "/api/2.0/workspace/delete",
            json!({"path": "/Shared/drift"}),
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "/Shared/drift",
    );
    let (s, _) = h
        .post(
            "/api/2.0/workspace/delete",
            json!({"path": "/Shared/dr/validation"}),
        )
        .await;
    assert_eq!(s, 200, "a notebook needs no recursive");
    // Deleting a Git folder through the workspace API deletes the repo.
    let (s, _) = h
        .post(
            "/api/2.0/workspace/delete",
            json!({"path": "/Repos/legal", "recursive": true}),
        )
        .await;
    assert_eq!(s, 200);
    let repos = h.ok("/api/2.0/repos?path_prefix=/Repos/legal").await;
    assert_eq!(repos, json!({}));
}

#[tokio::test]
async fn unity_catalog_catalogs_schemas_grants() {
    let h = demo().await;
    let v = h.ok("/api/2.1/unity-catalog/catalogs").await;
    assert_eq!(strings(&v, "catalogs", "name"), ["dr_meta", "main"]);
    assert!(v.get("next_page_token").is_none());
    let main = &v["catalogs"][1];
    assert_eq!(main["catalog_type"], "MANAGED_CATALOG");
    assert_eq!(main["full_name"], "main");
    assert_eq!(main["owner"], "dr-admin@example.com");
    assert!(main["comment"].is_string());
    // max_results=1: two pages, the token absent on the last.
    let p1 = h.ok("/api/2.1/unity-catalog/catalogs?max_results=1").await;
    assert_eq!(strings(&p1, "catalogs", "name"), ["dr_meta"]);
    let t = p1["next_page_token"].as_str().unwrap();
    let p2 = h
        .ok(&format!(
            "/api/2.1/unity-catalog/catalogs?max_results=1&page_token={t}"
        ))
        .await;
    assert_eq!(strings(&p2, "catalogs", "name"), ["main"]);
    assert!(p2.get("next_page_token").is_none());
    let all = h.ok("/api/2.1/unity-catalog/catalogs?max_results=0").await;
    assert_eq!(all["catalogs"].as_array().unwrap().len(), 2);
    assert!(all.get("next_page_token").is_none());
    assert_err(
        h.get("/api/2.1/unity-catalog/catalogs?max_results=-1")
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "max_results",
    );
    assert_eq!(h.ok("/api/2.1/unity-catalog/catalogs/main").await, *main);
    assert_err(
        h.get("/api/2.1/unity-catalog/catalogs/nope").await,
        404,
        "CATALOG_DOES_NOT_EXIST",
        "Catalog 'nope' does not exist.",
    );
    let s = h
        .ok("/api/2.1/unity-catalog/schemas?catalog_name=main")
        .await;
    assert_eq!(
        strings(&s, "schemas", "name"),
        ["default", "finance", "information_schema", "ops", "sales"]
    );
    let sales = &s["schemas"][4];
    assert_eq!(sales["full_name"], "main.sales");
    assert_eq!(sales["catalog_name"], "main");
    assert_eq!(sales["owner"], "dr-admin@example.com");
    assert_eq!(
        h.ok("/api/2.1/unity-catalog/schemas/main.sales").await,
        *sales
    );
    let p = h
        .ok("/api/2.1/unity-catalog/schemas?catalog_name=main&max_results=2")
        .await;
    assert_eq!(strings(&p, "schemas", "name"), ["default", "finance"]);
    assert!(p["next_page_token"].is_string());
    assert_err(
        h.get("/api/2.1/unity-catalog/schemas").await,
        400,
        "INVALID_PARAMETER_VALUE",
        "catalog_name",
    );
    assert_err(
        h.get("/api/2.1/unity-catalog/schemas?catalog_name=nope")
            .await,
        404,
        "CATALOG_DOES_NOT_EXIST",
        "nope",
    );
    assert_err(
        h.get("/api/2.1/unity-catalog/schemas/main.nope").await,
        404,
        "SCHEMA_DOES_NOT_EXIST",
        "Schema 'main.nope' does not exist.",
    );

    // Grants.
    let g = h
        .ok("/api/2.1/unity-catalog/permissions/catalog/main")
        .await;
    assert_eq!(
        g,
        json!({"privilege_assignments": [
            {"principal": "analysts", "privileges": ["USE_CATALOG"]},
            {"principal": "data-engineers", "privileges": ["SELECT", "USE_CATALOG", "USE_SCHEMA"]}]})
    );
    let same = h
        .ok("/api/2.1/unity-catalog/permissions/CATALOG/main")
        .await;
    assert_eq!(same, g, "securable type in any case");
    let one = h
        .ok("/api/2.1/unity-catalog/permissions/catalog/main?principal=analysts")
        .await;
    assert_eq!(one["privilege_assignments"].as_array().unwrap().len(), 1);
    let paged = h
        .ok("/api/2.1/unity-catalog/permissions/catalog/main?max_results=1")
        .await;
    assert_eq!(paged["privilege_assignments"][0]["principal"], "analysts");
    let t = paged["next_page_token"].as_str().unwrap();
    let rest = h
        .ok(&format!(
            "/api/2.1/unity-catalog/permissions/catalog/main?max_results=1&page_token={t}"
        ))
        .await;
    assert_eq!(
        rest["privilege_assignments"][0]["principal"],
        "data-engineers"
    );
    assert!(rest.get("next_page_token").is_none());
    let sg = h
        .ok("/api/2.1/unity-catalog/permissions/schema/main.sales")
        .await;
    assert_eq!(
        sg["privilege_assignments"][0],
        json!({"principal": "analysts", "privileges": ["SELECT", "USE_SCHEMA"]})
    );
    let tg = h
        .ok("/api/2.1/unity-catalog/permissions/table/main.sales.orders")
        .await;
    assert_eq!(
        tg["privilege_assignments"],
        json!([{"principal": "analysts", "privileges": ["SELECT"]}])
    );
    assert_eq!(
        h.ok("/api/2.1/unity-catalog/permissions/schema/dr_meta.default")
            .await,
        json!({})
    );
    assert_err(
        h.get("/api/2.1/unity-catalog/permissions/catalog/nope")
            .await,
        404,
        "CATALOG_DOES_NOT_EXIST",
        "nope",
    );
    assert_err(
        h.get("/api/2.1/unity-catalog/permissions/schema/main.nope")
            .await,
        404,
        "SCHEMA_DOES_NOT_EXIST",
        "main.nope",
    );
    assert_err(
        h.get("/api/2.1/unity-catalog/permissions/table/main.sales.nope")
            .await,
        404,
        "TABLE_DOES_NOT_EXIST",
        "main.sales.nope",
    );
    assert_err(
        h.get("/api/2.1/unity-catalog/permissions/volume/main.sales.v")
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "volume",
    );
    assert_err(
        h.get("/api/2.1/unity-catalog/permissions/schema/main")
            .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "main",
    );
    // PATCH: removals then additions; the answer and a later GET agree.
    let (s, v) = h
        .patch(
            "/api/2.1/unity-catalog/permissions/catalog/main",
            json!({"changes": [
                {"principal": "analysts", "add": ["USE_SCHEMA", "SELECT"]},
                {"principal": "data-engineers", "remove": ["SELECT"]},
                {"principal": "auditors", "add": ["BROWSE"]}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let expect = json!({"privilege_assignments": [
        {"principal": "analysts", "privileges": ["SELECT", "USE_CATALOG", "USE_SCHEMA"]},
        {"principal": "auditors", "privileges": ["BROWSE"]},
        {"principal": "data-engineers", "privileges": ["USE_CATALOG", "USE_SCHEMA"]}]});
    assert_eq!(v, expect);
    assert_eq!(
        h.ok("/api/2.1/unity-catalog/permissions/catalog/main")
            .await,
        expect
    );
    let (_, v) = h
        .patch(
            "/api/2.1/unity-catalog/permissions/catalog/main",
            json!({"changes": [{"principal": "auditors", "remove": ["ALL_PRIVILEGES"]}],
                   "omit_permissions_in_response": true}),
        )
        .await;
    assert_eq!(v, json!({}));
    assert_eq!(
        h.ok("/api/2.1/unity-catalog/permissions/catalog/main")
            .await["privilege_assignments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_err(
        h.patch(
            "/api/2.1/unity-catalog/permissions/schema/main.sales",
            json!({"changes": [{"principal": "analysts", "add": ["USE_CATALOG"]}]}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "USE_CATALOG",
    );
    assert_err(
        h.patch(
            "/api/2.1/unity-catalog/permissions/catalog/main",
            json!({"changes": [{"principal": "", "add": ["SELECT"]}]}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "principal",
    );
    assert_err(
        h.patch(
            "/api/2.1/unity-catalog/permissions/catalog/nope",
            json!({"changes": []}),
        )
        .await,
        404,
        "CATALOG_DOES_NOT_EXIST",
        "nope",
    );
    assert_eq!(
        h.ok("/api/2.1/unity-catalog/permissions/schema/main.sales")
            .await,
        sg,
        "refused changes change nothing"
    );
}

fn acl_level(acl: &Value, key: &str, name: &str) -> Vec<String> {
    acl["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e[key] == name)
        .flat_map(|e| e["all_permissions"].as_array().cloned().unwrap_or_default())
        .map(|p| {
            format!(
                "{}{}",
                p["permission_level"].as_str().unwrap(),
                if p["inherited"] == true { "*" } else { "" }
            )
        })
        .collect()
}

#[tokio::test]
async fn permissions_patch_put_persist_per_object() {
    let h = demo().await;
    let job = h.job_id("Nightly Sales ETL").await;
    let other = h.job_id("Heartbeat Writer").await;
    let path = format!("/api/2.0/permissions/jobs/{job}");
    let before = h.ok(&path).await;
    assert_eq!(acl_level(&before, "group_name", "analysts"), ["CAN_VIEW"]);
    assert_eq!(acl_level(&before, "group_name", "admins"), ["CAN_MANAGE*"]);
    // PATCH merges: one principal changed, one added, the rest kept.
    let (s, v) = h
        .patch(
            &path,
            json!({"access_control_list": [
                {"group_name": "analysts", "permission_level": "CAN_MANAGE_RUN"},
                {"user_name": "oncall@example.com", "permission_level": "CAN_VIEW"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v, h.ok(&path).await, "PATCH answers what GET shows");
    assert_eq!(acl_level(&v, "group_name", "analysts"), ["CAN_MANAGE_RUN"]);
    assert_eq!(
        acl_level(&v, "user_name", "oncall@example.com"),
        ["CAN_VIEW"]
    );
    assert_eq!(
        acl_level(&v, "user_name", "dr-admin@example.com"),
        ["IS_OWNER"]
    );
    assert_eq!(
        acl_level(&v, "service_principal_name", "lifeboat-sp"),
        ["CAN_MANAGE"]
    );
    // Other objects keep the default.
    assert_eq!(h.ok(&format!("/api/2.0/permissions/jobs/{other}")).await, {
        let mut d = before.clone();
        d["object_id"] = json!(format!("/jobs/{other}"));
        d
    });
    // PUT replaces the direct entries (the owner is kept when none is named).
    let (s, v) = h
        .put(
            &path,
            json!({"access_control_list": [
                {"group_name": "data-engineers", "permission_level": "CAN_MANAGE"}]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let principals: Vec<String> = v["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["user_name"]
                .as_str()
                .or(e["group_name"].as_str())
                .or(e["service_principal_name"].as_str())
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        principals,
        ["dr-admin@example.com", "data-engineers", "admins"]
    );
    assert_eq!(h.ok(&path).await, v);
    // PUT naming a new owner transfers ownership.
    let (_, v) = h
        .put(
            &path,
            json!({"access_control_list": [
                {"service_principal_name": "lifeboat-sp", "permission_level": "IS_OWNER"}]}),
        )
        .await;
    assert_eq!(
        acl_level(&v, "service_principal_name", "lifeboat-sp"),
        ["IS_OWNER"]
    );
    assert!(acl_level(&v, "user_name", "dr-admin@example.com").is_empty());
    // Errors leave the ACL alone.
    let now = h.ok(&path).await;
    assert_err(
        h.patch(
            &path,
            json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_ATTACH_TO"}]}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "CAN_ATTACH_TO",
    );
    assert_err(
        h.patch(
            &path,
            json!({"access_control_list": [{"permission_level": "CAN_VIEW"}]}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "user_name",
    );
    assert_err(
        h.patch(
            &path,
            json!({"access_control_list": [{"group_name": "g", "permission_level": "IS_OWNER"}]}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "owner",
    );
    assert_eq!(h.ok(&path).await, now);
    assert_err(
        h.patch(
            "/api/2.0/permissions/jobs/1",
            json!({"access_control_list": []}),
        )
        .await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "jobs 1",
    );
    // Warehouses under both spellings share one ACL.
    let wh = h.id_of("warehouses", "name", "id", "Shared BI").await;
    let wh = wh.as_str().unwrap();
    let (s, _) = h
        .patch(
            &format!("/api/2.0/permissions/sql/warehouses/{wh}"),
            json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_MONITOR"}]}),
        )
        .await;
    assert_eq!(s, 200);
    let w1 = h.ok(&format!("/api/2.0/permissions/warehouses/{wh}")).await;
    assert_eq!(acl_level(&w1, "group_name", "analysts"), ["CAN_MONITOR"]);
    // Repos, notebooks and directories by workspace object id.
    let repo = h
        .ok("/api/2.0/workspace/get-status?path=/Repos/sales/pipelines")
        .await["object_id"]
        .clone();
    let rp = format!("/api/2.0/permissions/repos/{repo}");
    let r = h.ok(&rp).await;
    assert_eq!(r["object_type"], "repo");
    assert_eq!(r["object_id"], json!(format!("/repos/{repo}")));
    assert_eq!(
        acl_level(&r, "group_name", "data-engineers"),
        ["CAN_MANAGE"]
    );
    assert_eq!(acl_level(&r, "group_name", "analysts"), ["CAN_READ"]);
    let (s, r) = h
        .put(
            &rp,
            json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_MANAGE"}]}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(acl_level(&r, "group_name", "analysts"), ["CAN_MANAGE"]);
    assert!(acl_level(&r, "group_name", "data-engineers").is_empty());
    assert_err(
        h.put(
            &rp,
            json!({"access_control_list": [{"group_name": "analysts", "permission_level": "CAN_USE"}]}),
        )
        .await,
        400,
        "INVALID_PARAMETER_VALUE",
        "CAN_USE",
    );
    let nb = h
        .ok("/api/2.0/workspace/get-status?path=/Repos/sales/pipelines/nightly_sales_etl/ingest")
        .await["object_id"]
        .clone();
    let n = h.ok(&format!("/api/2.0/permissions/notebooks/{nb}")).await;
    assert_eq!(n["object_type"], "notebook");
    let dir = h.ok("/api/2.0/workspace/get-status?path=/Shared").await["object_id"].clone();
    assert_eq!(
        h.ok(&format!("/api/2.0/permissions/directories/{dir}"))
            .await["object_type"],
        "directory"
    );
    // A notebook id is not a directory or a repo.
    assert_eq!(
        h.get(&format!("/api/2.0/permissions/directories/{nb}"))
            .await
            .0,
        404
    );
    assert_eq!(
        h.get(&format!("/api/2.0/permissions/repos/{nb}")).await.0,
        404
    );
}

#[tokio::test]
async fn pipeline_spec_and_edit() {
    let h = demo().await;
    let id = h
        .id_of("pipelines", "name", "pipeline_id", "Customer CDC")
        .await;
    let id = id.as_str().unwrap();
    let path = format!("/api/2.0/pipelines/{id}");
    let p = h.ok(&path).await;
    let spec = &p["spec"];
    assert_eq!(spec["id"], json!(id));
    assert_eq!(spec["catalog"], "main");
    assert_eq!(spec["target"], "sales");
    assert_eq!(spec["continuous"], false);
    assert_eq!(spec["channel"], "CURRENT");
    assert_eq!(spec["edition"], "ADVANCED");
    assert_eq!(
        spec["libraries"],
        json!([{"notebook": {"path": "/Repos/crm/pipelines/dlt/customer_cdc"}}])
    );
    assert_eq!(
        spec["configuration"]["source_path"],
        "s3://acme-landing/crm/customer_cdc/"
    );
    assert_eq!(
        spec["clusters"],
        json!([{"label": "default", "num_workers": 2, "node_type_id": "i3.xlarge"}])
    );
    let last = p["last_modified"].as_i64().unwrap();
    // Edit with the whole spec changed.
    let mut new = spec.clone();
    new["libraries"] = json!([{"notebook": {"path": "/Repos/crm/pipelines/dlt/customer_cdc_v2"}},
                              {"file": {"path": "/Repos/crm/pipelines/dlt/udfs.py"}}]);
    new["configuration"] = json!({"mode": "full"});
    new["clusters"] = json!([{"num_workers": 4, "policy_id": "ABC"}]);
    new["continuous"] = json!(true);
    new["target"] = Value::Null;
    new["schema"] = json!("crm");
    new["catalog"] = json!("dr_meta");
    new["expected_last_modified"] = json!(last);
    let (s, v) = h.put(&path, new).await;
    assert_eq!((s, v), (200, json!({})));
    let p2 = h.ok(&path).await;
    let s2 = &p2["spec"];
    assert_eq!(
        s2["libraries"][1]["file"]["path"],
        "/Repos/crm/pipelines/dlt/udfs.py"
    );
    assert_eq!(s2["configuration"], json!({"mode": "full"}));
    assert_eq!(
        s2["clusters"],
        json!([{"label": "default", "num_workers": 4, "policy_id": "ABC"}])
    );
    assert_eq!(s2["continuous"], true);
    assert_eq!(s2["schema"], "crm");
    assert!(s2.get("target").is_none());
    assert_eq!(s2["catalog"], "dr_meta");
    assert_eq!(s2["name"], "Customer CDC");
    assert!(p2["last_modified"].as_i64().unwrap() > last);
    // Errors.
    let base = json!({"id": id, "name": "Customer CDC"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, needle) in [
        (with("id", json!("other")), "other"),
        (
            with("target", json!("t"))
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("schema".into(), json!("s"));
                    Value::Object(o)
                })
                .unwrap(),
            "target",
        ),
        (
            with("libraries", json!([{"notebook": {"path": "relative"}}])),
            "path",
        ),
        (with("libraries", json!([{"egg": "x"}])), "library"),
        (
            with(
                "clusters",
                json!([{"label": "default"}, {"label": "default"}]),
            ),
            "label",
        ),
        (with("edition", json!("ULTRA")), "ULTRA"),
        (with("channel", json!("BETA")), "BETA"),
    ] {
        assert_err(
            h.put(&path, body).await,
            400,
            "INVALID_PARAMETER_VALUE",
            needle,
        );
    }
    assert_err(
        h.put(&path, with("expected_last_modified", json!(1))).await,
        409,
        "RESOURCE_CONFLICT",
        "modified",
    );
    assert_err(
        h.put("/api/2.0/pipelines/nope", json!({})).await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "nope",
    );
    assert_eq!(
        h.ok(&path).await["spec"],
        *s2,
        "refused edits change nothing"
    );
}

#[tokio::test]
async fn warehouse_edit_sets_fields_and_validates() {
    let h = demo().await;
    let id = h.id_of("warehouses", "name", "id", "ETL Serving").await;
    let id = id.as_str().unwrap();
    let before = h.ok(&format!("/api/2.0/sql/warehouses/{id}")).await;
    assert_eq!(before["warehouse_type"], "CLASSIC");
    for k in [
        "cluster_size",
        "auto_stop_mins",
        "min_num_clusters",
        "max_num_clusters",
        "enable_serverless_compute",
        "spot_instance_policy",
        "tags",
        "warehouse_type",
    ] {
        assert!(before.get(k).is_some(), "{k} missing");
    }
    let (s, v) = h
        .post(
            &format!("/api/2.0/sql/warehouses/{id}/edit"),
            json!({"cluster_size": "Large", "auto_stop_mins": 20, "min_num_clusters": 2,
                   "max_num_clusters": 6, "spot_instance_policy": "RELIABILITY_OPTIMIZED",
                   "warehouse_type": "PRO", "enable_serverless_compute": true,
                   "tags": {"custom_tags": [{"key": "team", "value": "etl"}]}}),
        )
        .await;
    assert_eq!((s, v), (200, json!({})));
    let after = h.ok(&format!("/api/2.0/sql/warehouses/{id}")).await;
    assert_eq!(after["cluster_size"], "Large");
    assert_eq!(after["auto_stop_mins"], 20);
    assert_eq!(after["min_num_clusters"], 2);
    assert_eq!(after["max_num_clusters"], 6);
    assert_eq!(after["spot_instance_policy"], "RELIABILITY_OPTIMIZED");
    assert_eq!(after["warehouse_type"], "PRO");
    assert_eq!(after["enable_serverless_compute"], true);
    assert_eq!(after["tags"]["custom_tags"][0]["value"], "etl");
    assert_eq!(after["state"], before["state"], "edit keeps the state");
    assert_eq!(after["name"], before["name"]);
    let listed = h.ok("/api/2.0/sql/warehouses").await;
    let row = listed["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == json!(id))
        .unwrap()
        .clone();
    assert_eq!(row, after);
    let edit = format!("/api/2.0/sql/warehouses/{id}/edit");
    for (body, needle) in [
        (json!({"cluster_size": "Huge"}), "Huge"),
        (json!({"auto_stop_mins": 5}), "auto_stop_mins"),
        (json!({"min_num_clusters": 7}), "min_num_clusters"),
        (json!({"max_num_clusters": 41}), "max_num_clusters"),
        (json!({"spot_instance_policy": "CHEAP"}), "CHEAP"),
        (json!({"warehouse_type": "CLASSIC"}), "PRO"),
        (json!({"tags": {"custom_tags": [{"value": "x"}]}}), "tags"),
    ] {
        assert_err(
            h.post(&edit, body).await,
            400,
            "INVALID_PARAMETER_VALUE",
            needle,
        );
    }
    assert_eq!(h.ok(&format!("/api/2.0/sql/warehouses/{id}")).await, after);
    assert_err(
        h.post("/api/2.0/sql/warehouses/nope/edit", json!({})).await,
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "nope",
    );
}

/// Everything a drift check compares by name, from one emulator.
async fn config_snapshot(h: &H) -> Value {
    let policies: Vec<Value> = h.ok("/api/2.0/policies/clusters/list").await["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            json!([
                p["name"],
                p["definition"],
                p["max_clusters_per_user"],
                p["created_at_timestamp"]
            ])
        })
        .collect();
    let mut scopes = Vec::new();
    for s in strings(
        &h.ok("/api/2.0/secrets/scopes/list").await,
        "scopes",
        "name",
    ) {
        // Keys with their last-updated times: the fixture's are the same at both sites.
        let keys = h.ok(&format!("/api/2.0/secrets/list?scope={s}")).await;
        let acls = h.ok(&format!("/api/2.0/secrets/acls/list?scope={s}")).await;
        scopes.push(json!([s, keys, acls]));
    }
    let repos: Vec<Value> = h.ok("/api/2.0/repos").await["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json!([r["path"], r["url"], r["branch"], r["head_commit_id"]]))
        .collect();
    let mut catalogs = Vec::new();
    for c in strings(
        &h.ok("/api/2.1/unity-catalog/catalogs").await,
        "catalogs",
        "name",
    ) {
        let schemas = strings(
            &h.ok(&format!("/api/2.1/unity-catalog/schemas?catalog_name={c}"))
                .await,
            "schemas",
            "name",
        );
        let grants = h
            .ok(&format!("/api/2.1/unity-catalog/permissions/catalog/{c}"))
            .await;
        catalogs.push(json!([c, schemas, grants]));
    }
    let tree = strings(
        &h.ok("/api/2.0/workspace/list?path=/Repos/sales/pipelines/nightly_sales_etl")
            .await,
        "objects",
        "path",
    );
    json!({"policies": policies, "scopes": scopes, "repos": repos, "catalogs": catalogs,
           "tree": tree})
}

#[tokio::test]
async fn both_roles_have_the_same_configuration_objects() {
    let p = demo().await;
    let d = up(cfg(Fixture::Demo).role(Role::Dr)).await;
    let (ps, ds) = (config_snapshot(&p).await, config_snapshot(&d).await);
    assert_eq!(ps, ds);
    assert_eq!(ps["repos"].as_array().unwrap().len(), 14);
    // Ids differ: policies, repos, notebooks.
    let ids = |v: Value, list: &str, key: &str| -> BTreeSet<String> {
        v[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[key].to_string())
            .collect()
    };
    assert!(ids(
        p.ok("/api/2.0/policies/clusters/list").await,
        "policies",
        "policy_id"
    )
    .is_disjoint(&ids(
        d.ok("/api/2.0/policies/clusters/list").await,
        "policies",
        "policy_id"
    )));
    assert!(
        ids(p.ok("/api/2.0/repos").await, "repos", "id").is_disjoint(&ids(
            d.ok("/api/2.0/repos").await,
            "repos",
            "id"
        ))
    );
    // A difference seeded through a write endpoint shows.
    let _ = d
        .post(
            "/api/2.0/secrets/acls/put",
            json!({"scope": "ml", "principal": "analysts", "permission": "READ"}),
        )
        .await;
    assert_ne!(config_snapshot(&p).await, config_snapshot(&d).await);
}

#[tokio::test]
async fn large_fixture_configuration_objects() {
    let h = up(cfg(Fixture::Large)).await;
    let st = h.state().await;
    assert_eq!(st["policies"].as_array().unwrap().len(), 5);
    assert_eq!(st["secret_scopes"].as_array().unwrap().len(), 20);
    assert_eq!(st["catalogs"], json!(["dr_meta", "main"]));
    assert_eq!(st["repos"].as_array().unwrap().len(), 8);
    let v = h.ok("/api/2.0/secrets/list?scope=scope-07").await;
    let mut keys = LARGE_SECRET_KEYS.map(str::to_string).to_vec();
    keys.sort();
    assert_eq!(strings(&v, "secrets", "key"), keys);
    assert_eq!(
        h.ok("/api/2.0/secrets/acls/list?scope=scope-07").await["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let policies: BTreeSet<String> = st["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy_id"].as_str().unwrap().to_string())
        .collect();
    // Jobs 0..100 in id order are jobs i = 0..100: every 7th has a policy, every 11th a secret.
    let v = h.ok("/api/2.2/jobs/list?expand_tasks=true&limit=100").await;
    let jobs = v["jobs"].as_array().unwrap();
    for (i, j) in jobs.iter().enumerate() {
        let nc = &j["settings"]["job_clusters"][0]["new_cluster"];
        match nc.get("policy_id").and_then(Value::as_str) {
            Some(pid) => {
                assert_eq!(i % 7, 0, "job {i}");
                assert!(policies.contains(pid));
            }
            None => assert_ne!(i % 7, 0, "job {i}"),
        }
        let env = nc["spark_env_vars"]["DB_PASSWORD"].as_str();
        assert_eq!(env.is_some(), i % 11 == 0, "job {i}: {nc}");
        if let Some(e) = env {
            assert!(e.starts_with("{{secrets/scope-") && e.ends_with("/db-password}}"));
        }
        let team = j["settings"]["tags"]["team"].as_str().unwrap();
        for t in j["settings"]["tasks"].as_array().unwrap() {
            let p = t["notebook_task"]["notebook_path"].as_str().unwrap();
            assert!(p.starts_with(&format!("/Repos/{team}/pipelines/")), "{p}");
            if i < 20 {
                let st = h
                    .ok(&format!("/api/2.0/workspace/get-status?path={p}"))
                    .await;
                assert_eq!(st["object_type"], "NOTEBOOK");
            }
        }
    }
    let repo = h
        .ok("/api/2.0/workspace/list?path=/Repos/sales/pipelines")
        .await;
    // 1,250 job folders, the dlt folder and the README.
    assert_eq!(repo["objects"].as_array().unwrap().len(), 1_252);
    // The new paths count in the `other` rate-limit family.
    let stats = h.admin("/__emulator/stats").await;
    assert!(stats["by_family"]["other"].as_u64().unwrap() >= 25);
}
