//! Benchmark of the per-Delta-table RPO check (see `BENCHMARKS.md`, "Per-table RPO"). Not a
//! test: it prints the rows of the table there.
//!
//! ```text
//! cargo run --release -p lifeboat --example delta_rpo_bench                 # 10, 1,000, 100,000 commits; 50 tables
//! cargo run --release -p lifeboat --example delta_rpo_bench -- 10 1000      # chosen sizes only
//! ```
//!
//! Each table has a checkpoint every 100 commits (delta-rs' default) and its replica lacks the
//! data files of the last two commits. The full log (every commit JSON and checkpoint) is
//! written; data files only for the commits after the last checkpoint — the check never looks
//! at the others. "Full listing" is what a reader without `start-after` pays to find the tip.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use lifeboat::{
    drill,
    local::{delta_tables::SyntheticTable, moto::repo_root, LocalEnv, LocalOptions},
};
use lifeboat_core::{
    delta::s3::{TableLocation, TableReader},
    plan::{DeltaTable, Direction},
    run::{RunContext, RunId, RunKind, Trigger, TriggerSource},
};
use serde_json::json;

const ROUNDS: usize = 5;
const CHECKPOINT_INTERVAL: u64 = 100;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn full_listing(s3: &aws_sdk_s3::Client, at: &TableLocation) -> Result<(u32, usize)> {
    let mut pages = s3
        .list_objects_v2()
        .bucket(&at.bucket)
        .prefix(at.log_prefix())
        .into_paginator()
        .send();
    let (mut requests, mut keys) = (0, 0);
    while let Some(page) = pages.next().await {
        requests += 1;
        keys += page?.contents().len();
    }
    Ok((requests, keys))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().context("sizes are commit counts"))
        .collect::<Result<_>>()?;
    let sizes = if sizes.is_empty() {
        vec![10, 1_000, 100_000]
    } else {
        sizes
    };
    let env = LocalEnv::start(LocalOptions::default()).await?;
    let mut plan = drill::load_plan(&repo_root()?.join("lifeboat.toml"))?;
    env.provision(&mut plan).await?;
    let pair = plan.replication.buckets[0].clone();
    let s3 = &env.aws.s3;

    println!("| commits | objects in the log | requests per check | median wall (ms) | full listing: requests | full listing: median (ms) | consistent version |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &sizes {
        let table = SyntheticTable {
            commits: n,
            checkpoint_interval: CHECKPOINT_INTERVAL,
            last_commit: Utc::now(),
            interval: chrono::Duration::seconds(1),
            data_since: (n - 1) / CHECKPOINT_INTERVAL * CHECKPOINT_INTERVAL,
        };
        let replica = TableLocation::parse(&format!("s3://{}/bench/t{n}", pair.replica))
            .map_err(anyhow::Error::msg)?;
        let started = Instant::now();
        let written = table.write(s3, &replica, n - 1, &[n - 1, n - 2]).await?;
        eprintln!(
            "wrote {written} objects for {n} commits in {:.0?}",
            started.elapsed()
        );
        let mut walls = Vec::new();
        let mut requests = 0;
        let mut version = None;
        for _ in 0..ROUNDS {
            let reader = TableReader::new(s3, &replica);
            let t = Instant::now();
            let got = reader.read_replica().await?;
            walls.push(t.elapsed());
            requests = got.requests;
            version = got.consistency.version;
        }
        let mut full_walls = Vec::new();
        let mut full = (0, 0);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            full = full_listing(s3, &replica).await?;
            full_walls.push(t.elapsed());
        }
        println!(
            "| {n} | {} | {requests} | {:.1} | {} | {:.1} | {} |",
            full.1,
            median(walls).as_secs_f64() * 1000.0,
            full.0,
            median(full_walls).as_secs_f64() * 1000.0,
            version.map(|v| v.to_string()).unwrap_or_default(),
        );
    }

    // 50 tables through the step itself (8 at a time, the source read alongside), checkpointed
    // every 10 commits as Databricks writes them (Spark's default `delta.checkpointInterval`),
    // 4 commits since the last checkpoint, the newest two not yet at the replica.
    let tables = 50u64;
    for i in 0..tables {
        let table = SyntheticTable {
            commits: 25,
            checkpoint_interval: 10,
            last_commit: Utc::now(),
            interval: chrono::Duration::seconds(1),
            data_since: 0,
        };
        let path = format!("bench/many/t{i}");
        for (bucket, missing) in [(&pair.source, vec![]), (&pair.replica, vec![24, 23])] {
            let at = TableLocation::parse(&format!("s3://{bucket}/{path}"))
                .map_err(anyhow::Error::msg)?;
            table.write(s3, &at, 24, &missing).await?;
        }
        plan.replication.tables.push(DeltaTable {
            name: format!("t{i:02}"),
            bucket: Some(pair.name.clone()),
            path: Some(path),
            source: None,
            replica: None,
            rpo_minutes: None,
        });
    }
    plan.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = Utc::now();
    let run: RunContext = serde_json::from_value(json!({
        "run_id": RunId::generate(RunKind::Drill, now),
        "kind": RunKind::Drill,
        "direction": Direction::Failover,
        "plan": plan,
        "trigger": Trigger {
            source: TriggerSource::Operator,
            summary: "delta rpo bench".into(),
            declared_at: now,
            event_arn: None,
            incident_started_at: None,
        },
    }))?;
    let mut walls = Vec::new();
    let mut out = None;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        out = Some(lifeboat_core::replication::measure(&env.deps, &run).await?);
        walls.push(t.elapsed());
    }
    let out = out.context("measured")?;
    let requests: u32 = out.tables.iter().map(|t| t.requests).sum();
    println!(
        "\n{} tables (+ the plan's {}): median {:.0} ms for the whole check (bucket canaries included), {} S3 requests ({:.1} per table, replica and source), every bench table at version {}",
        tables,
        out.tables.len() as u64 - tables,
        median(walls).as_secs_f64() * 1000.0,
        requests,
        f64::from(requests) / out.tables.len() as f64,
        out.tables
            .iter()
            .filter(|t| t.name.starts_with('t'))
            .filter_map(|t| t.consistent_version)
            .min()
            .unwrap_or_default(),
    );
    env.stop().await;
    Ok(())
}
