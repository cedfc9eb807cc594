//! Shared set-up of the end-to-end tests: a local environment (moto, two emulated workspaces,
//! the Lambda host) provisioned with the repository's plan, with short intervals.
#![allow(dead_code)] // each test binary uses a different subset

use std::time::{Duration, Instant};

use aws_sdk_sfn::types::ExecutionStatus;
use lifeboat::{
    drill::{self, Answer, DrillKind, DrillOptions},
    local::{LocalEnv, LocalOptions},
};
use lifeboat_core::plan::Plan;

/// Starts and provisions an environment; `edit` adjusts the plan first.
pub async fn setup(edit: impl FnOnce(&mut Plan)) -> (LocalEnv, Plan) {
    setup_with(
        LocalOptions {
            lifecycle_delay: Duration::from_millis(200),
            // The shipped artifacts: each function's binary, the template's environment and
            // policy (built by `cargo build --workspace --bins` before the tests).
            binaries: true,
            ..LocalOptions::default()
        },
        edit,
    )
    .await
}

/// Real-world lifecycle durations (cluster start 3–5 min, terminate 30–120 s, warehouse start
/// 1–3 min, ...) on an emulated clock 60 times faster: real timings in seconds.
pub fn realistic() -> LocalOptions {
    LocalOptions {
        binaries: true,
        lifecycle_profile: databricks_emulator::LifecycleProfile::Realistic,
        clock_speed: 60.0,
        ..LocalOptions::default()
    }
}

/// [`setup`] with explicit environment options.
pub async fn setup_with(options: LocalOptions, edit: impl FnOnce(&mut Plan)) -> (LocalEnv, Plan) {
    setup_plan(options, "lifeboat.toml", edit).await
}

/// [`setup_with`] and a plan file of the repository.
pub async fn setup_plan(
    options: LocalOptions,
    plan_file: &str,
    edit: impl FnOnce(&mut Plan),
) -> (LocalEnv, Plan) {
    let root = lifeboat::local::moto::repo_root().unwrap();
    let mut plan = drill::load_plan(&root.join(plan_file)).unwrap();
    plan.startup.poll_seconds = 1;
    plan.shutdown.retry_interval_seconds = 1;
    edit(&mut plan);
    let env = LocalEnv::start(options).await.unwrap();
    env.provision(&mut plan).await.unwrap();
    (env, plan)
}

/// Quiet drill options writing reports to a fresh temporary folder.
pub fn options(kind: DrillKind, answer: Answer) -> DrillOptions {
    DrillOptions {
        plan_path: "unused".into(),
        answer,
        out_dir: std::env::temp_dir()
            .join(format!("lifeboat-test-{}", uuid::Uuid::new_v4().simple())),
        fixture: databricks_emulator::Fixture::Demo,
        verbose: false,
        kind,
        binaries: false,
    }
}

/// The CNAME target of a record in the plan's zone.
pub async fn cname(env: &LocalEnv, plan: &Plan, name: &str) -> Option<String> {
    let dns = plan.dns.as_ref().unwrap();
    let out = env
        .aws
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&dns.hosted_zone_id)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .find(|r| r.name().trim_end_matches('.') == name.trim_end_matches('.'))
        .and_then(|r| r.resource_records().first().map(|v| v.value().to_string()))
}

/// Waits for an execution to end: its status and error name.
pub async fn wait_end(
    env: &LocalEnv,
    arn: &str,
) -> (ExecutionStatus, Option<String>, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let d = env
            .aws
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .unwrap();
        if d.status() != &ExecutionStatus::Running {
            return (
                d.status().clone(),
                d.error().map(str::to_string),
                d.cause().map(str::to_string),
            );
        }
        assert!(Instant::now() < deadline, "execution did not end");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A run's report from the ledger.
pub async fn report_of(env: &LocalEnv, run_id: &str) -> lifeboat_core::report::Report {
    env.deps
        .ledger
        .get(&lifeboat_core::ledger::keys::report(
            &lifeboat_core::run::RunId(run_id.into()),
            lifeboat_core::ledger::keys::ReportFormat::Json,
        ))
        .await
        .unwrap()
        .expect("a report")
        .value
}

/// Headless Chromium on PATH (CI installs the Debian package `chromium`).
pub fn chromium() -> Option<std::path::PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| std::path::PathBuf::from(d).join(name))
                .find(|p| p.is_file())
        })
}

/// `#rrggbb` as bytes.
pub fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Pixels of (about) a colour in an RGBA/RGB PNG.
pub fn count_pixels(png_path: &std::path::Path, color: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p.len() >= 3 && (0..3).all(|i| (p[i] as i32 - color[i] as i32).abs() <= 6))
        .count()
}

/// Renders an HTML file in headless Chromium to `shot` (a PNG), with its own profile beside it.
pub fn screenshot(browser: &std::path::Path, html: &std::path::Path, shot: &std::path::Path) {
    let profile = shot.with_extension("chromium-profile");
    let status = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .status()
        .unwrap();
    assert!(status.success(), "chromium failed: {status}");
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
}

/// Replication behind: the first bucket pair's replica canary is two hours old.
pub async fn replica_two_hours_behind(env: &LocalEnv, plan: &Plan) {
    let pair = &plan.replication.buckets[0];
    let stale = lifeboat_core::replication::Canary {
        written_at: chrono::Utc::now() - chrono::Duration::hours(2),
    };
    env.aws
        .s3
        .put_object()
        .bucket(&pair.replica)
        .key(&pair.canary_key)
        .body(serde_json::to_vec(&stale).unwrap().into())
        .send()
        .await
        .unwrap();
}

/// A 429 storm at `site`: every API family limited to `per_second` requests a second.
pub async fn rate_limit_storm(
    env: &LocalEnv,
    site: lifeboat_core::plan::SiteRole,
    per_second: u32,
) {
    let limits: serde_json::Map<String, serde_json::Value> = [
        "jobs_update",
        "jobs_read",
        "runs_read",
        "runs_write",
        "clusters",
        "pools",
        "warehouses",
        "pipelines",
        "permissions",
        "scim",
        "sql",
    ]
    .iter()
    .map(|f| (f.to_string(), serde_json::json!(per_second)))
    .collect();
    env.admin_post(site, "config", serde_json::json!({ "rate_limits": limits }))
        .await
        .unwrap();
}

/// The demo plan with a Managed DR failover group and a stable URL (localized to the account
/// API of the local stack by `provision`).
pub fn with_managed_dr(p: &mut Plan) {
    p.managed_dr = Some(lifeboat_core::plan::ManagedDr {
        account_url: "https://accounts.cloud.databricks.com".into(),
        account_id: "to-be-localized".into(),
        failover_group: "sales".into(),
        auth: lifeboat_core::plan::SiteAuth::Oauth {
            client_id: "to-be-localized".into(),
            secret_id: "to-be-localized".into(),
        },
        stable_url: Some("sales-prod".into()),
        failover_timeout_seconds: 600,
        rpo_minutes: None,
    });
    p.sites.primary.workspace_id = Some("1".into());
    p.sites.dr.workspace_id = Some("2".into());
}

pub async fn group_of(
    env: &LocalEnv,
    plan: &Plan,
) -> lifeboat_core::databricks::disaster_recovery::FailoverGroup {
    let m = plan.managed_dr.as_ref().unwrap();
    let account = env.deps.workspaces.account(m).await.unwrap();
    account.get_failover_group(&m.group_name()).await.unwrap()
}

pub async fn stable_url_routes_to(env: &LocalEnv, plan: &Plan) -> String {
    let m = plan.managed_dr.as_ref().unwrap();
    let account = env.deps.workspaces.account(m).await.unwrap();
    account
        .get_stable_url(&m.stable_url_name().unwrap())
        .await
        .unwrap()
        .effective_workspace_id
        .unwrap()
}

/// The plan's group is primary in `region` and its stable URL routes to `workspace_id`.
pub async fn assert_group_serves(env: &LocalEnv, plan: &Plan, region: &str, workspace_id: &str) {
    let group = group_of(env, plan).await;
    assert_eq!(group.effective_primary_region.as_deref(), Some(region));
    assert_eq!(stable_url_routes_to(env, plan).await, workspace_id);
}

/// The AWS Health API, which nothing local can run: a canned answer in the API's shapes.
pub struct CannedHealthApi(
    pub  Result<
        Vec<lifeboat_core::health_api::HealthEventRecord>,
        lifeboat_core::health_api::HealthApiError,
    >,
);

#[async_trait::async_trait]
impl lifeboat_core::health_api::HealthApi for CannedHealthApi {
    async fn open_issues(
        &self,
        _filter: &lifeboat_core::health_api::HealthFilter,
    ) -> Result<
        Vec<lifeboat_core::health_api::HealthEventRecord>,
        lifeboat_core::health_api::HealthApiError,
    > {
        self.0.clone()
    }
}

/// Serves a Status.io `/1.0/status/{page}` document locally (the test may change it); its URL.
pub async fn serve_status(doc: std::sync::Arc<std::sync::Mutex<serde_json::Value>>) -> String {
    let app = axum::Router::new().route(
        "/1.0/status/{page}",
        axum::routing::get(move || {
            let doc = doc.clone();
            async move {
                let body = doc
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                axum::Json(body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/1.0/status/databricks-aws",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    url
}

/// A run context for a check outside a run (`dr-config-check` invoked directly).
pub fn check_run(
    plan: &Plan,
    direction: lifeboat_core::plan::Direction,
) -> lifeboat_core::run::RunContext {
    lifeboat_core::incident::run_context(
        plan,
        lifeboat_core::run::RunKind::Readiness,
        direction,
        lifeboat_core::run::Trigger {
            source: lifeboat_core::run::TriggerSource::Operator,
            summary: "drift check".into(),
            declared_at: chrono::Utc::now(),
            event_arn: None,
            incident_started_at: None,
        },
        None,
    )
}
