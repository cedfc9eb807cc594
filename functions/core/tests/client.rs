//! The Databricks REST client against the in-process workspace emulator
//! (`tests/emulator`): every endpoint, every pagination style, rate limits (the server's 429 +
//! `Retry-After` and the client's own limiter), injected 5xx, dropped connections, an outage
//! under a deadline, typed errors, OAuth token refresh and secret hygiene.
//!
//! Each test starts its own emulator on an ephemeral port with fresh, randomly generated
//! credentials. Resource lifecycles are shortened to 50 ms so state changes can be polled.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::{Duration, Instant};

use databricks_emulator::{EmulatorConfig, Fixture, RunningEmulator};
use futures::future::join_all;
use futures::TryStreamExt;
use lifeboat_core::databricks::clusters::{ClusterFilter, ClusterId, ClusterSource, ClusterState};
use lifeboat_core::databricks::jobs::{
    self, Activation, JobId, LifeCycleState, PauseStatus, RunFilter,
};
use lifeboat_core::databricks::pipelines::PipelineState;
use lifeboat_core::databricks::warehouses::WarehouseState;
use lifeboat_core::secret::Secret;
use lifeboat_core::{
    databricks::{
        ApiError, ClientConfig, Credentials, ErrorKind, Family, RateLimits, WorkspaceClient,
    },
    retry::RetryPolicy,
};
use serde_json::{json, Value};

const LIFECYCLE: Duration = Duration::from_millis(50);

/// A random token-shaped string, generated per test.
fn random_token(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Client-side limits with every family unlimited (a rate of 0).
fn unlimited() -> RateLimits {
    RateLimits(Family::ALL.iter().map(|f| (*f, 0.0)).collect())
}

/// Retries quickly: tests should not wait on exponential backoff.
fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        jitter: Duration::from_millis(10),
    }
}

/// One emulator plus the credentials it accepts and an HTTP client for its admin API.
struct Emu {
    running: RunningEmulator,
    pat: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
}

impl Emu {
    /// Starts `fixture` with random credentials; `tune` adjusts the configuration.
    async fn start(fixture: Fixture, tune: impl FnOnce(EmulatorConfig) -> EmulatorConfig) -> Self {
        let pat = random_token("dapi");
        let client_id = "lifeboat-sp".to_string();
        let client_secret = random_token("dose");
        let config = EmulatorConfig::new(fixture, pat.clone())
            .lifecycle_delay(LIFECYCLE)
            .oauth(client_id.clone(), client_secret.clone());
        let running = databricks_emulator::start(tune(config))
            .await
            .expect("emulator starts");
        Self {
            running,
            pat,
            client_id,
            client_secret,
            http: lifeboat_core::http::client(),
        }
    }

    async fn demo() -> Self {
        Self::start(Fixture::Demo, |c| c).await
    }

    fn url(&self) -> &str {
        self.running.url()
    }

    fn pat(&self) -> Credentials {
        Credentials::Pat(Secret::new(self.pat.clone()))
    }

    fn oauth(&self) -> Credentials {
        Credentials::OAuthM2m {
            client_id: self.client_id.clone(),
            client_secret: Secret::new(self.client_secret.clone()),
        }
    }

    fn client_with(
        &self,
        credentials: Credentials,
        limits: RateLimits,
        retry: RetryPolicy,
    ) -> WorkspaceClient {
        let mut config = ClientConfig::new(self.url(), credentials);
        config.rate_limits = limits;
        config.retry = retry;
        WorkspaceClient::new(config).expect("client builds")
    }

    /// A PAT client with the default (published) limits and fast retries.
    fn client(&self) -> WorkspaceClient {
        self.client_with(self.pat(), RateLimits::default(), fast_retry())
    }

    async fn admin_get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/__emulator/{path}", self.url()))
            .send()
            .await
            .expect("admin GET");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("admin JSON")
    }

    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/__emulator/{path}", self.url()))
            .json(&body)
            .send()
            .await
            .expect("admin POST");
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.expect("admin JSON")
    }

    async fn clear_requests(&self) {
        self.admin_post("requests/clear", json!({})).await;
    }

    /// The logged `/api/` requests whose path starts with `prefix`, in order.
    async fn requests(&self, method: &str, prefix: &str) -> Vec<Value> {
        let log = self.admin_get("requests").await;
        log["requests"]
            .as_array()
            .expect("requests array")
            .iter()
            .filter(|r| {
                r["method"] == method && r["path"].as_str().unwrap_or("").starts_with(prefix)
            })
            .cloned()
            .collect()
    }

    /// Ids (as strings) of one kind of object in `/__emulator/state`.
    async fn state_ids(&self, kind: &str, id_field: &str) -> BTreeSet<String> {
        let state = self.admin_get("state").await;
        state[kind]
            .as_array()
            .expect("state array")
            .iter()
            .map(|o| match &o[id_field] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect()
    }
}

/// Polls `probe` every 25 ms until it yields a value (panics after 10 s).
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn by_name<T: Clone>(items: &[T], name: impl Fn(&T) -> &str, wanted: &str) -> T {
    items
        .iter()
        .find(|i| name(i) == wanted)
        .unwrap_or_else(|| panic!("{wanted} not found"))
        .clone()
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_list_filter_get_start_and_terminate() {
    let emu = Emu::demo().await;
    let client = emu.client();

    // Unfiltered: every cluster the workspace has, job and pipeline clusters included.
    let all = client.all_clusters(ClusterFilter::default()).await.unwrap();
    let ids: BTreeSet<String> = all.iter().map(|c| c.cluster_id.0.clone()).collect();
    assert_eq!(ids, emu.state_ids("clusters", "cluster_id").await);
    assert!(all
        .iter()
        .any(|c| c.cluster_source == Some(ClusterSource::Job)));

    // All-purpose only: exactly the five demo clusters, with their states.
    let filter = ClusterFilter {
        sources: vec![ClusterSource::Ui, ClusterSource::Api],
        ..ClusterFilter::default()
    };
    let ap = client.all_clusters(filter.clone()).await.unwrap();
    let states: BTreeMap<&str, ClusterState> = ap
        .iter()
        .map(|c| (c.cluster_name.as_str(), c.state))
        .collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("Shared Analytics", ClusterState::Running),
            ("Data Science Interactive", ClusterState::Terminated),
            ("ETL Development", ClusterState::Terminated),
            ("ML Training GPU", ClusterState::Terminated),
            ("Ops Break-Glass", ClusterState::Running),
        ])
    );
    let running = client
        .all_clusters(ClusterFilter {
            states: vec![ClusterState::Running],
            ..filter.clone()
        })
        .await
        .unwrap();
    let mut names: Vec<&str> = running.iter().map(|c| c.cluster_name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["Ops Break-Glass", "Shared Analytics"]);

    // get: tags and fields round-trip.
    let target = by_name(&ap, |c| &c.cluster_name, "Data Science Interactive");
    let got = client.get_cluster(&target.cluster_id).await.unwrap();
    assert_eq!(got.cluster_name, "Data Science Interactive");
    assert_eq!(got.state, ClusterState::Terminated);
    assert_eq!(
        got.custom_tags.get("team").map(String::as_str),
        Some("data-science")
    );
    assert_eq!(got.cluster_source, Some(ClusterSource::Ui));

    // start → PENDING at once → RUNNING after the lifecycle delay.
    client.start_cluster(&target.cluster_id).await.unwrap();
    let (c, id) = (&client, &target.cluster_id);
    let after_start = c.get_cluster(id).await.unwrap().state;
    assert!(
        matches!(after_start, ClusterState::Pending | ClusterState::Running),
        "{after_start:?}"
    );
    eventually("cluster RUNNING", || async move {
        (c.get_cluster(id).await.unwrap().state == ClusterState::Running).then_some(())
    })
    .await;

    // terminate → TERMINATED; terminating a terminated cluster is a no-op.
    client.terminate_cluster(&target.cluster_id).await.unwrap();
    eventually("cluster TERMINATED", || async move {
        (c.get_cluster(id).await.unwrap().state == ClusterState::Terminated).then_some(())
    })
    .await;
    client.terminate_cluster(&target.cluster_id).await.unwrap();
    assert_eq!(
        client.get_cluster(id).await.unwrap().state,
        ClusterState::Terminated
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_list_get_edit_and_set_min_idle_preserve_other_fields() {
    let emu = Emu::demo().await;
    let client = emu.client();

    let pools = client.list_pools().await.unwrap();
    let min_idle: BTreeMap<&str, u32> = pools
        .iter()
        .map(|p| (p.instance_pool_name.as_str(), p.min_idle_instances))
        .collect();
    assert_eq!(
        min_idle,
        BTreeMap::from([
            ("General Purpose Pool", 2),
            ("Memory Optimized Pool", 1),
            ("GPU Pool", 0),
        ])
    );

    let general = by_name(&pools, |p| &p.instance_pool_name, "General Purpose Pool");
    let id = general.instance_pool_id.clone();
    let before = client.get_pool(&id).await.unwrap();
    assert_eq!(before.node_type_id, "i3.xlarge");
    assert_eq!(before.max_capacity, Some(20));

    // Everything but min_idle_instances (and the live stats) must survive the edit.
    let comparable = |p: &lifeboat_core::databricks::pools::InstancePool| {
        let mut v = serde_json::to_value(p).unwrap();
        let m = v.as_object_mut().unwrap();
        m.remove("min_idle_instances");
        m.remove("stats");
        v
    };

    assert_eq!(client.set_pool_min_idle(&id, 0).await.unwrap(), 2);
    let after = client.get_pool(&id).await.unwrap();
    assert_eq!(after.min_idle_instances, 0);
    assert_eq!(comparable(&after), comparable(&before));
    let state = emu.admin_get("state").await;
    let in_state = state["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["instance_pool_id"] == json!(id.0))
        .unwrap()
        .clone();
    assert_eq!(in_state["min_idle_instances"], 0);

    // Restoring returns the value it replaced; setting the same value sends no edit.
    assert_eq!(client.set_pool_min_idle(&id, 2).await.unwrap(), 0);
    emu.clear_requests().await;
    assert_eq!(client.set_pool_min_idle(&id, 2).await.unwrap(), 2);
    assert!(emu
        .requests("POST", "/api/2.0/instance-pools/edit")
        .await
        .is_empty());
    let restored = client.get_pool(&id).await.unwrap();
    assert_eq!(restored.min_idle_instances, 2);
    assert_eq!(comparable(&restored), comparable(&before));

    // edit_pool sends every editable field: a tag change is applied, the rest kept.
    let mut edited = restored.clone();
    edited.custom_tags.insert("dr".into(), "drill".into());
    client.edit_pool(&edited).await.unwrap();
    let read = client.get_pool(&id).await.unwrap();
    assert_eq!(
        read.custom_tags.get("dr").map(String::as_str),
        Some("drill")
    );
    assert_eq!(
        read.custom_tags.get("team").map(String::as_str),
        Some("platform")
    );
    assert_eq!(read.max_capacity, Some(20));
    assert_eq!(
        read.idle_instance_autotermination_minutes,
        before.idle_instance_autotermination_minutes
    );
    assert_eq!(read.min_idle_instances, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_get_and_pause_a_schedule_keeping_everything_else() {
    let emu = Emu::demo().await;
    let client = emu.client();

    let listed = client.all_jobs().await.unwrap();
    assert_eq!(listed.len(), 23);
    // Without expand_tasks the list omits tasks; with it they are there.
    assert!(listed
        .iter()
        .all(|j| !j.settings.extra.contains_key("tasks")));
    let expanded: Vec<_> = client.list_jobs(true).try_collect().await.unwrap();
    assert_eq!(expanded.len(), 23);
    assert!(expanded
        .iter()
        .all(|j| j.settings.extra.contains_key("tasks")));

    let nightly = by_name(&listed, |j| &j.settings.name, "Nightly Sales ETL");
    let before = client.get_job(nightly.job_id.clone()).await.unwrap();
    assert_eq!(before.job_id, nightly.job_id);
    assert_eq!(before.settings.unpaused(), vec![Activation::Schedule]);
    let schedule = before.settings.schedule.clone().unwrap();
    assert_eq!(schedule.quartz_cron_expression, "0 0 2 * * ?");
    let tasks = before.settings.extra["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 3);

    let streaming = by_name(&listed, |j| &j.settings.name, "Clickstream Streaming");
    assert_eq!(streaming.settings.unpaused(), vec![Activation::Continuous]);

    let new_settings =
        jobs::pause_field(&before.settings, Activation::Schedule, PauseStatus::Paused).unwrap();
    client
        .update_job(nightly.job_id.clone(), new_settings)
        .await
        .unwrap();

    let after = client.get_job(nightly.job_id.clone()).await.unwrap();
    let paused = after.settings.schedule.clone().unwrap();
    assert_eq!(paused.pause_status, Some(PauseStatus::Paused));
    assert_eq!(
        paused.quartz_cron_expression,
        schedule.quartz_cron_expression
    );
    assert_eq!(paused.timezone_id, schedule.timezone_id);
    assert_eq!(after.settings.extra["tasks"].as_array().unwrap(), &tasks);
    assert!(after.settings.unpaused().is_empty());
    // Only schedule.pause_status changed.
    let mut expected = serde_json::to_value(&before.settings).unwrap();
    expected["schedule"]["pause_status"] = json!("PAUSED");
    assert_eq!(serde_json::to_value(&after.settings).unwrap(), expected);

    let state = emu.admin_get("state").await;
    let job = state["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_id"] == json!(nightly.job_id.0))
        .unwrap()
        .clone();
    assert_eq!(job["schedule_pause_status"], "PAUSED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_is_idempotent_and_runs_list_get_cancel_and_cancel_all() {
    let emu = Emu::demo().await;
    let client = emu.client();
    let jobs = client.all_jobs().await.unwrap();
    // Ad-hoc Backfill: no schedule, max_concurrent_runs 3.
    let job = by_name(&jobs, |j| &j.settings.name, "Ad-hoc Backfill").job_id;

    let token = random_token("lifeboat-");
    let first = client.run_now(job.clone(), &token, None).await.unwrap();
    let again = client.run_now(job.clone(), &token, None).await.unwrap();
    assert_eq!(
        first.run_id, again.run_id,
        "same idempotency token, same run"
    );
    let other = client
        .run_now(
            job.clone(),
            &random_token("lifeboat-"),
            Some(json!({"mode": "drill"})),
        )
        .await
        .unwrap();
    assert_ne!(other.run_id, first.run_id);

    let run = client.get_run(first.run_id.clone()).await.unwrap();
    assert_eq!(run.job_id, Some(job.clone()));
    assert!(
        run.state.life_cycle_state.is_active(),
        "{:?}",
        run.state.life_cycle_state
    );

    let active: Vec<_> = client
        .all_runs(RunFilter {
            active_only: true,
            job_id: Some(job.clone()),
        })
        .await
        .unwrap();
    let active_ids: BTreeSet<u64> = active.iter().map(|r| r.run_id.0).collect();
    assert_eq!(active_ids, BTreeSet::from([first.run_id.0, other.run_id.0]));

    // cancel one run → TERMINATED / CANCELED.
    client.cancel_run(first.run_id.clone()).await.unwrap();
    let (c, id) = (&client, &first.run_id);
    let cancelled = eventually("run cancelled", || async move {
        let r = c.get_run(id.clone()).await.unwrap();
        (r.state.life_cycle_state == LifeCycleState::Terminated).then_some(r)
    })
    .await;
    assert_eq!(cancelled.state.result_state.as_deref(), Some("CANCELED"));

    // cancel_all_runs ends the other one (and a third started now).
    let third = client
        .run_now(job.clone(), &random_token("lifeboat-"), None)
        .await
        .unwrap();
    client.cancel_all_runs(job.clone()).await.unwrap();
    let j = &job;
    eventually("no active runs", || async move {
        let active = c
            .all_runs(RunFilter {
                active_only: true,
                job_id: Some(j.clone()),
            })
            .await
            .unwrap();
        active.is_empty().then_some(())
    })
    .await;
    for id in [other.run_id, third.run_id] {
        let r = client.get_run(id).await.unwrap();
        assert_eq!(r.state.life_cycle_state, LifeCycleState::Terminated);
        assert_eq!(r.state.result_state.as_deref(), Some("CANCELED"));
    }

    // The whole history pages (25 per page): 30 fixture runs + 3 live + ours.
    emu.clear_requests().await;
    let all = client.all_runs(RunFilter::default()).await.unwrap();
    let unique: BTreeSet<u64> = all.iter().map(|r| r.run_id.0).collect();
    assert_eq!(unique.len(), all.len());
    assert!(all.len() >= 36, "{}", all.len());
    let pages = emu.requests("GET", "/api/2.2/jobs/runs/list").await;
    assert_eq!(pages.len(), all.len().div_ceil(25));
    assert!(pages[1]["query"].as_str().unwrap().contains("page_token="));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warehouses_list_get_start_and_stop() {
    let emu = Emu::demo().await;
    let client = emu.client();
    let all = client.all_warehouses().await.unwrap();
    let states: BTreeMap<&str, WarehouseState> =
        all.iter().map(|w| (w.name.as_str(), w.state)).collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("Shared BI", WarehouseState::Running),
            ("ETL Serving", WarehouseState::Stopped),
            ("Analysts", WarehouseState::Stopped),
        ])
    );
    let analysts = by_name(&all, |w| &w.name, "Analysts");
    let got = client.get_warehouse(&analysts.id).await.unwrap();
    assert_eq!(got.name, "Analysts");
    assert_eq!(got.cluster_size.as_deref(), Some("Small"));

    let (c, id) = (&client, &analysts.id);
    client.start_warehouse(id).await.unwrap();
    eventually("warehouse RUNNING", || async move {
        (c.get_warehouse(id).await.unwrap().state == WarehouseState::Running).then_some(())
    })
    .await;
    client.stop_warehouse(id).await.unwrap();
    eventually("warehouse STOPPED", || async move {
        (c.get_warehouse(id).await.unwrap().state == WarehouseState::Stopped).then_some(())
    })
    .await;

    // A missing warehouse answers 404 → NotFound.
    let missing = lifeboat_core::databricks::warehouses::WarehouseId("ffffffffffffffff".into());
    let err = client.get_warehouse(&missing).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert_eq!(err.status, Some(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_list_get_stop_and_start_update() {
    let emu = Emu::demo().await;
    let client = emu.client();
    let all = client.all_pipelines().await.unwrap();
    let states: BTreeMap<&str, PipelineState> =
        all.iter().map(|p| (p.name.as_str(), p.state)).collect();
    assert_eq!(
        states,
        BTreeMap::from([
            ("Orders Bronze-Silver", PipelineState::Running),
            ("Customer CDC", PipelineState::Idle),
        ])
    );
    let orders = by_name(&all, |p| &p.name, "Orders Bronze-Silver");
    let got = client.get_pipeline(&orders.pipeline_id).await.unwrap();
    assert_eq!(got.name, "Orders Bronze-Silver");
    assert_eq!(got.state, PipelineState::Running);

    // An update cannot start while one is active: 409 → Conflict.
    let err = client
        .start_pipeline_update(&orders.pipeline_id)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Conflict);

    let (c, id) = (&client, &orders.pipeline_id);
    client.stop_pipeline(id).await.unwrap();
    eventually("pipeline IDLE", || async move {
        (c.get_pipeline(id).await.unwrap().state == PipelineState::Idle).then_some(())
    })
    .await;
    client.start_pipeline_update(id).await.unwrap();
    eventually("pipeline RUNNING", || async move {
        (c.get_pipeline(id).await.unwrap().state == PipelineState::Running).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_and_grants() {
    let emu = Emu::demo().await;
    let client = emu.client();
    let job = client.all_jobs().await.unwrap()[0].job_id.clone();
    let perms = client
        .get_permissions("jobs", &job.to_string())
        .await
        .unwrap();
    assert_eq!(perms.object_id, format!("/jobs/{job}"));
    assert_eq!(perms.object_type, "job");
    assert!(perms.grants("service_principal:lifeboat-sp", "CAN_MANAGE"));
    assert!(perms.grants("user:dr-admin@example.com", "IS_OWNER"));
    assert!(perms.grants("group:analysts", "CAN_VIEW"));
    assert!(!perms.grants("group:analysts", "CAN_MANAGE"));
    assert!(perms.grants("group:admins", "CAN_MANAGE"));

    let pools = client.list_pools().await.unwrap();
    let pool = &pools[0].instance_pool_id;
    let perms = client
        .get_permissions("instance-pools", &pool.0)
        .await
        .unwrap();
    assert!(perms.grants("group:data-engineers", "CAN_MANAGE"));
    assert!(perms.grants("group:analysts", "CAN_ATTACH_TO"));

    let err = client
        .get_permissions("clusters", "0000-000000-missing0")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_with_pat_and_with_oauth() {
    let emu = Emu::demo().await;
    let me = emu.client().me().await.unwrap();
    assert_eq!(me.user_name, "dr-admin@example.com");
    assert!(me.active);

    let sp = emu.client_with(emu.oauth(), RateLimits::default(), fast_retry());
    let me = sp.me().await.unwrap();
    assert_eq!(me.user_name, emu.client_id);
    assert_eq!(me.display_name, "lifeboat-sp");
    assert_ne!(me.id, emu.client().me().await.unwrap().id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execute_statement_returns_rows() {
    let emu = Emu::demo().await;
    let client = emu.client();
    let warehouses = client.all_warehouses().await.unwrap();
    let bi = by_name(&warehouses, |w| &w.name, "Shared BI").id;

    let one = client
        .execute_statement(&bi.0, "SELECT 1", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(one.rows(), vec![vec![Some("1".to_string())]]);

    let count = client
        .execute_statement(
            &bi.0,
            "SELECT count(*) FROM main.sales.orders",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(count.rows(), vec![vec![Some("50".to_string())]]);

    // A stopped warehouse is started by the statement and still answers.
    let analysts = by_name(&warehouses, |w| &w.name, "Analysts").id;
    let one = client
        .execute_statement(&analysts.0, "SELECT 1", Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(one.rows(), vec![vec![Some("1".to_string())]]);
}

// ---------------------------------------------------------------------------------------------
// Pagination
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pagination_style_streams_every_page_of_the_large_fixture() {
    let emu = Emu::start(Fixture::Large, |c| {
        c.rate_limits(databricks_emulator::RateLimits::unlimited())
    })
    .await;
    // Freeze emulated time so no schedule fires and no run ends while we count.
    emu.admin_post("config", json!({"clock_speed": 1e-9})).await;
    let client = emu.client_with(emu.pat(), unlimited(), fast_retry());
    let state = emu.admin_get("state").await;
    emu.clear_requests().await;

    // Jobs: has_more + next_page_token, 100 per page.
    let jobs = client.all_jobs().await.unwrap();
    let job_ids: BTreeSet<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
    assert_eq!(jobs.len(), 10_000);
    assert_eq!(job_ids.len(), 10_000, "no job listed twice");
    assert_eq!(job_ids, emu.state_ids("jobs", "job_id").await);
    let pages = emu.requests("GET", "/api/2.2/jobs/list").await;
    assert_eq!(pages.len(), 100);
    assert!(pages
        .iter()
        .skip(1)
        .all(|p| p["query"].as_str().unwrap().contains("page_token=")));

    // Clusters: next_page_token, 100 per page.
    let clusters = client.all_clusters(ClusterFilter::default()).await.unwrap();
    let cluster_ids: BTreeSet<String> = clusters.iter().map(|c| c.cluster_id.0.clone()).collect();
    assert_eq!(cluster_ids.len(), clusters.len());
    assert!(clusters.len() >= 1_000);
    assert_eq!(cluster_ids, emu.state_ids("clusters", "cluster_id").await);
    let pages = emu.requests("GET", "/api/2.1/clusters/list").await;
    assert_eq!(pages.len(), clusters.len().div_ceil(100));
    // A smaller page size means more pages, same content.
    let small: Vec<_> = client
        .all_clusters(ClusterFilter {
            sources: vec![ClusterSource::Ui, ClusterSource::Api],
            page_size: Some(37),
            ..ClusterFilter::default()
        })
        .await
        .unwrap();
    let all_purpose = state["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["cluster_source"] == "UI" || c["cluster_source"] == "API")
        .count();
    assert_eq!(small.len(), all_purpose);
    let pages = emu.requests("GET", "/api/2.1/clusters/list").await;
    assert_eq!(
        pages.len(),
        clusters.len().div_ceil(100) + all_purpose.div_ceil(37)
    );

    // Pipelines: next_page_token with max_results 100.
    let pipelines = client.all_pipelines().await.unwrap();
    let pipeline_ids: BTreeSet<String> =
        pipelines.iter().map(|p| p.pipeline_id.0.clone()).collect();
    assert_eq!(pipelines.len(), 200);
    assert_eq!(
        pipeline_ids,
        emu.state_ids("pipelines", "pipeline_id").await
    );
    assert_eq!(emu.requests("GET", "/api/2.0/pipelines").await.len(), 2);

    // Runs: has_more + next_page_token, 25 per page (the active continuous runs).
    let active = client
        .all_runs(RunFilter {
            active_only: true,
            job_id: None,
        })
        .await
        .unwrap();
    let expected_active = state["active_runs"].as_u64().unwrap() as usize;
    assert!(expected_active > 25, "{expected_active}");
    assert_eq!(active.len(), expected_active);
    let run_ids: BTreeSet<u64> = active.iter().map(|r| r.run_id.0).collect();
    assert_eq!(run_ids.len(), active.len());
    assert!(active.iter().all(|r| r.state.life_cycle_state.is_active()));
    let pages = emu.requests("GET", "/api/2.2/jobs/runs/list").await;
    assert_eq!(pages.len(), expected_active.div_ceil(25));

    // Warehouses: the client asks for 100 per page and the fixture has 50, so the server would
    // answer in one page. To prove the client follows the token, serve it a real first page of
    // 20 (fetched with page_size=20) once; the client must then fetch the rest with its token.
    let first_page: Value = emu
        .http
        .get(format!("{}/api/2.0/sql/warehouses?page_size=20", emu.url()))
        .bearer_auth(&emu.pat)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first_page["warehouses"].as_array().unwrap().len(), 20);
    assert!(first_page["next_page_token"].is_string());
    emu.admin_post(
        "faults",
        json!({"method": "GET", "path_prefix": "/api/2.0/sql/warehouses", "status": 200,
               "body": first_page, "count": 1}),
    )
    .await;
    emu.clear_requests().await;
    let warehouses = client.all_warehouses().await.unwrap();
    let wh_ids: BTreeSet<String> = warehouses.iter().map(|w| w.id.0.clone()).collect();
    assert_eq!(warehouses.len(), 50);
    assert_eq!(wh_ids, emu.state_ids("warehouses", "id").await);
    let pages = emu.requests("GET", "/api/2.0/sql/warehouses").await;
    assert_eq!(pages.len(), 2);
    assert!(pages[1]["query"].as_str().unwrap().contains("page_token="));

    // Pools are not paginated: one request, all 100.
    assert_eq!(client.list_pools().await.unwrap().len(), 100);
}

// ---------------------------------------------------------------------------------------------
// Rate limits
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_429_with_retry_after_is_honoured() {
    let emu = Emu::demo().await;
    let retry = RetryPolicy {
        max_attempts: 12,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        jitter: Duration::from_millis(200),
    };
    // No client-side limiting: the server's 429s are what paces us.
    let client = emu.client_with(emu.pat(), unlimited(), retry);
    let jobs = client.all_jobs().await.unwrap();
    emu.admin_post("config", json!({"rate_limits": {"jobs_read": 2}}))
        .await;
    emu.clear_requests().await;

    let before = client.stats();
    let started = Instant::now();
    let ids: Vec<JobId> = jobs.iter().take(10).map(|j| j.job_id.clone()).collect();
    let results = join_all(ids.iter().map(|id| client.get_job(id.clone()))).await;
    let elapsed = started.elapsed();
    for (id, r) in ids.iter().zip(&results) {
        assert_eq!(
            &r.as_ref().expect("every call ends up succeeding").job_id,
            id
        );
    }
    let after = client.stats();
    let limited = after.rate_limited - before.rate_limited;
    // The bucket holds 2 tokens: at least 8 of the 10 are refused first.
    assert!(limited >= 8, "{limited} 429s");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    let stats = emu.admin_get("stats").await;
    assert_eq!(stats["rate_limited_total"].as_u64(), Some(limited));

    // Per job: every retry after a 429 came at least Retry-After (1 s) later.
    let log = emu.requests("GET", "/api/2.2/jobs/get").await;
    for id in &ids {
        let tries: Vec<&Value> = log
            .iter()
            .filter(|r| {
                r["query"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("job_id={id}"))
            })
            .collect();
        assert_eq!(tries.last().unwrap()["status"], 200);
        for pair in tries.windows(2) {
            assert_eq!(pair[0]["status"], 429);
            let gap = pair[1]["wall_ms"].as_i64().unwrap() - pair[0]["wall_ms"].as_i64().unwrap();
            assert!(gap >= 999, "retried {gap} ms after a 429 for job {id}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_limiter_keeps_a_burst_under_the_server_limit() {
    // Real (default) limits on both sides: jobs/update is 10/s.
    let emu = Emu::demo().await;
    let client = emu.client();
    let jobs = client.all_jobs().await.unwrap();
    emu.clear_requests().await;

    let started = Instant::now();
    let updates = (0..40).map(|i| {
        let job = &jobs[i % jobs.len()];
        client.update_job(job.job_id.clone(), json!({"tags": job.settings.tags}))
    });
    for r in join_all(updates).await {
        r.unwrap();
    }
    let elapsed = started.elapsed();

    assert_eq!(client.stats().rate_limited, 0);
    let stats = emu.admin_get("stats").await;
    assert_eq!(stats["rate_limited_total"], 0);
    assert_eq!(stats["by_family"]["jobs_update"], 40);
    // 40 requests at 10/s, the first immediate: 3.9 s.
    assert!(elapsed >= Duration::from_millis(3_500), "{elapsed:?}");
}

// ---------------------------------------------------------------------------------------------
// Faults, outage, deadline
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_5xx_is_retried() {
    let emu = Emu::demo().await;
    let client = emu.client();
    let expected = emu.state_ids("clusters", "cluster_id").await;
    emu.admin_post(
        "faults",
        json!({"path_prefix": "/api/2.1/clusters/list", "status": 503, "count": 2}),
    )
    .await;
    emu.clear_requests().await;

    let clusters = client.all_clusters(ClusterFilter::default()).await.unwrap();
    let ids: BTreeSet<String> = clusters.iter().map(|c| c.cluster_id.0.clone()).collect();
    assert_eq!(ids, expected);
    let stats = client.stats();
    assert_eq!(stats.server_errors, 2);
    assert_eq!(stats.requests, 3);
    let statuses: Vec<u64> = emu
        .requests("GET", "/api/2.1/clusters/list")
        .await
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(emu.admin_get("stats").await["faults_injected_total"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_retried() {
    let emu = Emu::demo().await;
    let client = emu.client();
    let expected = emu.state_ids("clusters", "cluster_id").await;
    emu.admin_post(
        "faults",
        json!({"path_prefix": "/api/2.1/clusters/list", "drop_connection": true, "count": 1}),
    )
    .await;
    emu.clear_requests().await;

    let clusters = client.all_clusters(ClusterFilter::default()).await.unwrap();
    assert_eq!(clusters.len(), expected.len());
    let stats = client.stats();
    assert_eq!(stats.transport_errors, 1);
    assert_eq!(stats.requests, 2);
    let statuses: Vec<u64> = emu
        .requests("GET", "/api/2.1/clusters/list")
        .await
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [0, 200],
        "a dropped connection is logged with status 0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_with_a_typed_error_within_the_deadline() {
    let emu = Emu::demo().await;
    // Production retry policy: the deadline, not the attempt count, has to stop it.
    let client = emu.client_with(emu.pat(), RateLimits::default(), RetryPolicy::default());
    client.me().await.unwrap();
    emu.admin_post("outage", json!({"enabled": true})).await;
    emu.clear_requests().await;

    let started = Instant::now();
    let err = client
        .with_deadline(Instant::now() + Duration::from_secs(2))
        .all_clusters(ClusterFilter::default())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err.kind,
            ErrorKind::Unreachable | ErrorKind::DeadlineExceeded
        ),
        "{err}"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        client.stats().transport_errors >= 2,
        "it retried before giving up"
    );
    let tries = emu.requests("GET", "/api/2.1/clusters/list").await;
    assert!(tries.len() >= 2 && tries.iter().all(|r| r["status"] == 0));

    // The same client recovers when the workspace comes back.
    emu.admin_post("outage", json!({"enabled": false})).await;
    assert!(!client
        .all_clusters(ClusterFilter::default())
        .await
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------------------------------------
// Errors and credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed() {
    let emu = Emu::demo().await;
    let client = emu.client();

    let err = client
        .get_cluster(&ClusterId("0101-010101-missing0".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.status, Some(400));
    assert!(err.is_not_found());

    let err = client.get_job(JobId(1)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");

    // A missing pool answers 400 INVALID_PARAMETER_VALUE "Can't find instance pool with id".
    // It is NotFound, status and code are kept, and it is not retried.
    let sent = client.stats().requests;
    let err = client
        .get_pool(&lifeboat_core::databricks::pools::PoolId("nope".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert_eq!(err.status, Some(400));
    assert_eq!(err.code.as_deref(), Some("INVALID_PARAMETER_VALUE"));
    assert!(!err.kind.is_transient());
    assert_eq!(client.stats().requests, sent + 1);

    // A bad PAT: 403 with the numeric error_code, not retried.
    let bad_pat = random_token("dapi");
    let bad = emu.client_with(
        Credentials::Pat(Secret::new(bad_pat.clone())),
        RateLimits::default(),
        fast_retry(),
    );
    let err = bad.me().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::PermissionDenied);
    assert_eq!(err.code.as_deref(), Some("403"));
    assert_eq!(err.status, Some(403));
    assert_eq!(bad.stats().requests, 1, "a refused token is not retried");
    assert!(!format!("{err} {err:?}").contains(&bad_pat));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_oauth_secret_fails_without_leaking_it() {
    let emu = Emu::demo().await;
    let wrong = random_token("dose");
    let client = emu.client_with(
        Credentials::OAuthM2m {
            client_id: emu.client_id.clone(),
            client_secret: Secret::new(wrong.clone()),
        },
        RateLimits::default(),
        fast_retry(),
    );
    emu.clear_requests().await;
    let err: ApiError = client.me().await.unwrap_err();
    assert!(
        matches!(
            err.kind,
            ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
        ),
        "{err}"
    );
    assert_eq!(err.status, Some(401));
    for text in [format!("{err}"), format!("{err:?}")] {
        assert!(!text.contains(&wrong), "secret leaked: {text}");
        assert!(!text.contains(&emu.client_secret), "secret leaked: {text}");
    }
    // No API request was attempted without a token.
    assert!(emu.requests("GET", "/api/").await.is_empty());
    assert_eq!(client.stats().requests, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_token_is_refreshed_before_it_expires() {
    // Tokens live 2 s; the client refreshes a tenth of the lifetime early.
    let emu = Emu::start(Fixture::Demo, |c| c.oauth_token_ttl_secs(2)).await;
    let client = emu.client_with(emu.oauth(), RateLimits::default(), fast_retry());
    emu.clear_requests().await;

    assert_eq!(client.me().await.unwrap().user_name, emu.client_id);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(client.me().await.unwrap().user_name, emu.client_id);

    // `/oidc/` is not in the request log; what the log shows is that no call was ever made
    // with the expired token (that would have been answered 403).
    let me_calls = emu.requests("GET", "/api/2.0/preview/scim/v2/Me").await;
    let statuses: Vec<u64> = me_calls
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 200]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_never_contains_a_token() {
    let emu = Emu::demo().await;
    let pat = emu.pat();
    let config = ClientConfig::new(emu.url(), pat.clone());
    let client = WorkspaceClient::new(config.clone()).unwrap();
    client.me().await.unwrap();
    for text in [
        format!("{pat:?}"),
        format!("{config:?}"),
        format!("{client:?}"),
    ] {
        assert!(!text.contains(&emu.pat), "PAT leaked: {text}");
    }
    assert!(
        format!("{client:?}").contains(emu.url()),
        "Debug still says which workspace"
    );

    let oauth = emu.oauth();
    let sp = emu.client_with(oauth.clone(), RateLimits::default(), fast_retry());
    sp.me().await.unwrap(); // caches an access token
    for text in [format!("{oauth:?}"), format!("{sp:?}")] {
        assert!(
            !text.contains(&emu.client_secret),
            "client secret leaked: {text}"
        );
        // The emulator's access tokens start with `dapi-oauth-`.
        assert!(!text.contains("dapi-oauth-"), "access token leaked: {text}");
    }
    assert!(format!("{oauth:?}").contains(&emu.client_id));
}

/// The deadline should also bound a request already in flight. Today it only gates sending
/// and retrying: a slow answer is waited for up to `request_timeout` (30 s), so a 1 s deadline
/// returns after 6 s here. Un-ignore once `call` caps each request's timeout at the time left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_bounds_a_request_in_flight() {
    let emu = Emu::demo().await;
    let client = emu.client_with(emu.pat(), RateLimits::default(), RetryPolicy::default());
    emu.admin_post(
        "faults",
        json!({"path_prefix": "/api/2.1/clusters/list", "latency_ms": 6000, "count": 1}),
    )
    .await;
    let started = Instant::now();
    let result = client
        .with_deadline(Instant::now() + Duration::from_secs(1))
        .all_clusters(ClusterFilter::default())
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(2),
        "returned after {elapsed:?}"
    );
    let err = result.expect_err("the deadline passed while the request was in flight");
    assert!(
        matches!(
            err.kind,
            ErrorKind::Unreachable | ErrorKind::DeadlineExceeded
        ),
        "{err}"
    );
}
