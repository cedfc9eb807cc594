//! Drift check benchmark: how close does the per-object comparison of two 10,000-job
//! workspaces get to the rate-limit bound? (`BENCHMARKS.md`, "Drift check of the large
//! fixture".)
//!
//! Starts two emulators with the `large` fixture — the primary and its DR twin, same content,
//! other ids — at the real per-family rate limits, and reads both the way `dr-config-check`
//! does: every listing (jobs with task expansion, clusters, pools, warehouses, pipelines,
//! policies, repos), secret scopes and Unity Catalog grants, the two sites at once, per-object
//! reads within the plan's default budget (5 s) from a cold cache. Then compares them.
//!
//! Per site and family it prints the requests the emulator saw and the bound (requests ÷
//! limit); the sites are separate workspaces with their own limits and the families are
//! limited independently, so the check's bound is the largest family bound of either site.
//! For comparison it then reads the sites one after the other, as a script would, and prints
//! what reading every ACL and pipeline spec in the check itself would cost at the limits.
//!
//! ```text
//! cargo run --release -p lifeboat-core --example drift_bench
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use databricks_emulator::{EmulatorConfig, Fixture, Role};
use lifeboat_core::{
    databricks::{ClientConfig, Credentials, WorkspaceClient},
    plan::{Direction, Plan},
    secret::Secret,
    steps::dr_config_check,
};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn admin(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, BoxError> {
    let url = format!("{base}/__emulator/{path}");
    let r = match body {
        Some(b) => http.post(url).json(&b).send().await?,
        None => http.get(url).send().await?,
    };
    Ok(r.error_for_status()?.json().await.unwrap_or(Value::Null))
}

fn by_family(stats: &Value) -> BTreeMap<String, u64> {
    stats["by_family"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let pat = format!("dapi{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();
    let primary =
        databricks_emulator::start(EmulatorConfig::new(Fixture::Large, pat.clone())).await?;
    let dr =
        databricks_emulator::start(EmulatorConfig::new(Fixture::Large, pat.clone()).role(Role::Dr))
            .await?;
    println!(
        "two large workspaces ({profile} build) up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let http = lifeboat_core::http::client();
    let limits =
        admin(&http, primary.url(), "config", Some(json!({}))).await?["rate_limits"].clone();
    let plan_text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plans/large.toml"),
    )?;
    let plan = Plan::from_toml(&plan_text, "plans/large.toml")?;
    let client = |url: &str| {
        WorkspaceClient::new(ClientConfig::new(url, Credentials::Pat(Secret::new(&pat))))
    };
    let (pc, dc) = (client(primary.url())?, client(dr.url())?);
    let budget = Duration::from_secs(u64::from(plan.drift.detail_seconds));

    // Ours: both sites at once.
    for e in [&primary, &dr] {
        admin(&http, e.url(), "requests/clear", Some(json!({}))).await?;
    }
    let t = Instant::now();
    let deadline = Instant::now() + budget;
    let (s, d) = futures::join!(
        dr_config_check::snapshot_with(&pc, &plan, Default::default(), deadline),
        dr_config_check::snapshot_with(&dc, &plan, Default::default(), deadline)
    );
    let read = t.elapsed();
    let ((source, _), (target, _)) = (s?, d?);
    let t = Instant::now();
    let (items, plan_blocking) =
        lifeboat_core::drift::sites::compare(&plan, Direction::Failover, Some(&source), &target);
    let (_, _, _, summary) = dr_config_check::summarize(&items, plan_blocking);
    let compare = t.elapsed();
    let mut bound = 0.0_f64;
    let mut bound_at = String::new();
    println!();
    println!("| site | family | requests | limit (req/s) | bound (s) |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for (site, e) in [("primary", &primary), ("dr", &dr)] {
        let stats = admin(&http, e.url(), "stats", None).await?;
        for (family, n) in by_family(&stats) {
            let limit = limits[&family].as_f64().unwrap_or(0.0);
            let b = if limit > 0.0 { n as f64 / limit } else { 0.0 };
            if b > bound {
                bound = b;
                bound_at = format!("{site} {family}");
            }
            println!("| {site} | {family} | {n} | {limit} | {b:.2} |");
        }
    }
    let objects: usize = source.objects.values().map(BTreeMap::len).sum();
    println!();
    println!(
        "ours (both sites at once): read {:.2} s, compare {:.2} s, total {:.2} s; bound {bound:.2} s \
         ({bound_at}); total / bound = {:.2}",
        read.as_secs_f64(),
        compare.as_secs_f64(),
        (read + compare).as_secs_f64(),
        (read + compare).as_secs_f64() / bound
    );
    println!(
        "compared {objects} objects per site: {} items ({} missing, {} differing, {} blocking); \
         per-object reads known: source {}/{}, target {}/{}",
        items.len(),
        summary.missing,
        summary.differing,
        summary.blocking,
        source.coverage.known,
        source.coverage.needed,
        target.coverage.known,
        target.coverage.needed
    );

    if !source.not_compared.is_empty() || !target.not_compared.is_empty() {
        println!(
            "not compared: source {:?}, target {:?}",
            source.not_compared, target.not_compared
        );
    }
    let snapshot_bytes = serde_json::to_vec(&source).map(|v| v.len()).unwrap_or(0);
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.trim_start_matches("VmHWM:").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "one site's snapshot as stored: {:.1} MB of JSON; peak memory of this process (both \
         emulators included): {peak}",
        snapshot_bytes as f64 / 1e6
    );

    // A script: one site, then the other.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    let deadline = Instant::now() + budget;
    dr_config_check::snapshot_with(&pc, &plan, Default::default(), deadline).await?;
    let deadline = Instant::now() + budget;
    dr_config_check::snapshot_with(&dc, &plan, Default::default(), deadline).await?;
    let seq = t.elapsed() + compare;
    println!(
        "sequential (one site after the other): {:.2} s; ours / sequential = {:.2}",
        seq.as_secs_f64(),
        (read + compare).as_secs_f64() / seq.as_secs_f64()
    );
    let per_object = source.coverage.needed as f64;
    println!(
        "every per-object read in the check itself ({} per site, 15 req/s): at least {:.0} s",
        source.coverage.needed,
        per_object / 15.0
    );
    primary.shutdown().await;
    dr.shutdown().await;
    Ok(())
}
