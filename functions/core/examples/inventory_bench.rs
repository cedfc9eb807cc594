//! Inventory benchmark: how close does the client get to the rate-limit bound?
//!
//! Starts the emulator with the `large` fixture (10,000 jobs, 1,000 clusters, 100 pools,
//! 50 warehouses, 200 pipelines) and the real per-family rate limits, then inventories it the
//! way the shutdown sweep does: all-purpose clusters (sources UI + API), jobs (no task
//! expansion), active runs, pools, warehouses and pipelines, all families concurrently.
//!
//! For each family it prints the requests the emulator saw, the items returned, the family's
//! limit and its bound (requests ÷ limit: the least time those requests can take at that
//! rate). Families are limited independently and listed in parallel, so the inventory's bound
//! is the largest family bound; the ratio wall ÷ bound says how close the client gets to it.
//! For comparison it then runs the same listings one after the other, as a script would.
//!
//! ```text
//! cargo run -p lifeboat-core --example inventory_bench            # debug build
//! cargo run --release -p lifeboat-core --example inventory_bench  # optimised
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use databricks_emulator::{EmulatorConfig, Fixture};
use lifeboat_core::databricks::clusters::{ClusterFilter, ClusterSource};
use lifeboat_core::databricks::jobs::RunFilter;
use lifeboat_core::databricks::{
    ApiError, ClientConfig, Credentials, Family, RateLimits, WorkspaceClient,
};
use lifeboat_core::secret::Secret;
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Items returned per family, in table order.
type Counts = Vec<(&'static str, usize)>;

/// The families an inventory touches, in table order (emulator family names).
const FAMILIES: [&str; 6] = [
    "clusters",
    "jobs_read",
    "runs_read",
    "pools",
    "warehouses",
    "pipelines",
];

fn all_purpose() -> ClusterFilter {
    ClusterFilter {
        sources: vec![ClusterSource::Ui, ClusterSource::Api],
        ..ClusterFilter::default()
    }
}

fn active_runs() -> RunFilter {
    RunFilter {
        active_only: true,
        job_id: None,
    }
}

/// Every family at once, as the sweep does.
async fn concurrent(client: &WorkspaceClient) -> Result<Counts, ApiError> {
    let (clusters, jobs, runs, pools, warehouses, pipelines) = futures::try_join!(
        client.all_clusters(all_purpose()),
        client.all_jobs(),
        client.all_runs(active_runs()),
        client.list_pools(),
        client.all_warehouses(),
        client.all_pipelines(),
    )?;
    Ok(vec![
        ("clusters", clusters.len()),
        ("jobs_read", jobs.len()),
        ("runs_read", runs.len()),
        ("pools", pools.len()),
        ("warehouses", warehouses.len()),
        ("pipelines", pipelines.len()),
    ])
}

/// The same listings one after the other.
async fn sequential(client: &WorkspaceClient) -> Result<Counts, ApiError> {
    let clusters = client.all_clusters(all_purpose()).await?.len();
    let jobs = client.all_jobs().await?.len();
    let runs = client.all_runs(active_runs()).await?.len();
    let pools = client.list_pools().await?.len();
    let warehouses = client.all_warehouses().await?.len();
    let pipelines = client.all_pipelines().await?.len();
    Ok(vec![
        ("clusters", clusters),
        ("jobs_read", jobs),
        ("runs_read", runs),
        ("pools", pools),
        ("warehouses", warehouses),
        ("pipelines", pipelines),
    ])
}

/// Whether two inventories returned the same number of items per family. Active runs are
/// excepted: the fixture's schedules keep firing (and runs ending) between inventories.
fn same_items(a: &Counts, b: &Counts) -> bool {
    let stable = |c: &Counts| -> Counts {
        c.iter()
            .filter(|(family, _)| *family != "runs_read")
            .copied()
            .collect()
    };
    stable(a) == stable(b)
}

struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    async fn get(&self, path: &str) -> Result<Value, BoxError> {
        let url = format!("{}/__emulator/{path}", self.base);
        Ok(self
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, BoxError> {
        let url = format!("{}/__emulator/{path}", self.base);
        Ok(self
            .http
            .post(url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }
}

/// One measured inventory: wall time, per-family requests from the emulator, 429s.
struct Measured {
    wall: Duration,
    counts: Counts,
    requests: BTreeMap<String, u64>,
    server_429s: u64,
    client_429s: u64,
}

async fn measure<F, Fut>(
    admin: &Admin,
    client: &WorkspaceClient,
    run: F,
) -> Result<Measured, BoxError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Counts, ApiError>>,
{
    admin.post("requests/clear", json!({})).await?;
    let before = client.stats();
    let started = Instant::now();
    let counts = run().await?;
    let wall = started.elapsed();
    let stats = admin.get("stats").await?;
    let requests = stats["by_family"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Measured {
        wall,
        counts,
        requests,
        server_429s: stats["rate_limited_total"].as_u64().unwrap_or(0),
        client_429s: client.stats().rate_limited - before.rate_limited,
    })
}

/// The default configuration: the published per-family limits, the production retry policy.
/// `limited: false` turns the client-side limiter off (rate 0 = unlimited), like a plain script
/// that only reacts to the server's 429 + `Retry-After`.
fn client(url: &str, pat: &str, limited: bool) -> Result<WorkspaceClient, ApiError> {
    let mut config = ClientConfig::new(url, Credentials::Pat(Secret::new(pat)));
    if !limited {
        config.rate_limits = RateLimits(Family::ALL.iter().map(|f| (*f, 0.0)).collect());
    }
    WorkspaceClient::new(config)
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
    let emu = databricks_emulator::start(EmulatorConfig::new(Fixture::Large, pat.clone())).await?;
    let admin = Admin {
        http: lifeboat_core::http::client(),
        base: emu.url().to_string(),
    };
    // `POST config {}` changes nothing and answers with the live limits.
    let limits = admin.post("config", json!({})).await?["rate_limits"].clone();
    let state = admin.get("state").await?;
    let len = |k: &str| state[k].as_array().map_or(0, Vec::len);
    println!(
        "large fixture ({profile} build): {} jobs, {} clusters, {} pools, {} warehouses, \
         {} pipelines, {} active runs; emulator up in {:.2} s",
        len("jobs"),
        len("clusters"),
        len("pools"),
        len("warehouses"),
        len("pipelines"),
        state["active_runs"],
        started.elapsed().as_secs_f64()
    );

    let ours = client(emu.url(), &pat, true)?;
    let conc = measure(&admin, &ours, || concurrent(&ours)).await?;

    // Let every server bucket refill (each holds one second's worth) before the next run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let script = client(emu.url(), &pat, true)?;
    let seq = measure(&admin, &script, || sequential(&script)).await?;

    tokio::time::sleep(Duration::from_secs(2)).await;
    let plain = client(emu.url(), &pat, false)?;
    let naive = measure(&admin, &plain, || sequential(&plain)).await?;

    println!();
    println!("| family | requests | items | limit (req/s) | bound (s) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    let mut max_bound = 0.0_f64;
    let mut max_family = "";
    for (family, items) in &conc.counts {
        let requests = conc.requests.get(*family).copied().unwrap_or(0);
        let limit = limits[*family].as_f64().unwrap_or(0.0);
        let bound = if limit > 0.0 {
            requests as f64 / limit
        } else {
            0.0
        };
        if bound > max_bound {
            max_bound = bound;
            max_family = family;
        }
        println!("| {family} | {requests} | {items} | {limit} | {bound:.2} |");
    }
    let other: u64 = conc
        .requests
        .iter()
        .filter(|(k, _)| !FAMILIES.contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum();
    println!();
    println!(
        "concurrent (ours): wall {:.2} s; bound {max_bound:.2} s ({max_family}); \
         wall / bound = {:.2}; 429s received: {} (emulator counted {}); other requests: {other}",
        conc.wall.as_secs_f64(),
        conc.wall.as_secs_f64() / max_bound,
        conc.client_429s,
        conc.server_429s,
    );
    let seq_total: u64 = seq.requests.values().sum();
    println!(
        "sequential (script): wall {:.2} s; {seq_total} requests; 429s received: {}; \
         same items: {}",
        seq.wall.as_secs_f64(),
        seq.client_429s,
        same_items(&seq.counts, &conc.counts),
    );
    let naive_total: u64 = naive.requests.values().sum();
    println!(
        "sequential, no client limiter (429-driven script): wall {:.2} s; {naive_total} requests; \
         429s received: {}; same items: {}",
        naive.wall.as_secs_f64(),
        naive.client_429s,
        same_items(&naive.counts, &conc.counts),
    );
    println!(
        "ours / sequential wall = {:.2} ({:.2}x faster); ours / 429-driven script = {:.2}",
        conc.wall.as_secs_f64() / seq.wall.as_secs_f64(),
        seq.wall.as_secs_f64() / conc.wall.as_secs_f64(),
        conc.wall.as_secs_f64() / naive.wall.as_secs_f64(),
    );
    emu.shutdown().await;
    Ok(())
}
