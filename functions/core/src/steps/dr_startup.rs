//! `dr-startup`: the seed's failover steps 6–8 at the target — warm pools (min_idle), start
//! clusters and SQL warehouses, set job concurrency — then report readiness. The state machine
//! calls it again after a wait until everything is ready or time is up.
//!
//! The seed's "run relevant jobs" (step 8) processes data, so it runs behind the same fence
//! gate as the schedules, in `activate-schedules`: a one-time run at DR must not race a
//! still-running twin at the primary.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use tracing::instrument;

use super::{Deps, StepError};
use crate::{
    databricks::{
        clusters::{ClusterFilter, ClusterState},
        warehouses::WarehouseState,
    },
    ledger::Written,
    run::RunContext,
};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct StartupInput {
    /// The run.
    pub run: RunContext,
}

/// Output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartupOutput {
    /// Everything started and ready.
    pub ready: bool,
    /// Ready timeout passed.
    pub timed_out: bool,
    /// What is not ready yet.
    pub pending: Vec<String>,
    /// Write requests issued in this invocation.
    pub actions: Vec<String>,
    /// Seconds since the first invocation.
    pub elapsed_seconds: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StartupRecord {
    started_at: DateTime<Utc>,
}

/// Idempotency token for a run-once job of a run (≤ 64 chars, stable across retries).
pub fn idempotency_token(run: &RunContext, job: &str) -> String {
    let digest = Sha256::digest(format!("{}/{job}", run.run_id).as_bytes());
    format!("lifeboat-{}", &hex::encode(digest)[..48])
}

/// Starts what the plan names and reports readiness.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: StartupInput) -> Result<StartupOutput, StepError> {
    let run = &input.run;
    let (_, target_role) = run.direction.roles();
    let key = format!("{}/startup.json", run.prefix());
    let first = StartupRecord {
        started_at: Utc::now(),
    };
    let started_at = match deps.ledger.create(&key, &first).await? {
        Written::Ok(_) => first.started_at,
        Written::Conflict => deps
            .ledger
            .get::<StartupRecord>(&key)
            .await?
            .map_or(first.started_at, |r| r.value.started_at),
    };
    let client = deps.workspaces.client(run.plan.site(target_role)).await?;
    let plan = &run.plan.startup;
    let mut actions = Vec::new();
    let mut pending = Vec::new();
    let missing = |what: &str, name: &str| {
        StepError::Refused(format!("{what} {name} does not exist at the target"))
    };

    let pools = client.list_pools().await?;
    for want in &plan.pools {
        let pool = pools
            .iter()
            .find(|p| p.instance_pool_name == want.name)
            .ok_or_else(|| missing("pool", &want.name))?;
        if pool.min_idle_instances != want.min_idle {
            client
                .set_pool_min_idle(&pool.instance_pool_id, want.min_idle)
                .await?;
            actions.push(format!(
                "pool {}: min_idle {} -> {}",
                want.name, pool.min_idle_instances, want.min_idle
            ));
        }
    }
    let clusters = client.all_clusters(ClusterFilter::default()).await?;
    for name in &plan.clusters {
        let c = clusters
            .iter()
            .find(|c| &c.cluster_name == name)
            .ok_or_else(|| missing("cluster", name))?;
        match c.state {
            ClusterState::Running => {}
            ClusterState::Terminated | ClusterState::Error => {
                client.start_cluster(&c.cluster_id).await?;
                actions.push(format!("cluster {name}: start"));
                pending.push(format!("cluster {name}"));
            }
            other => pending.push(format!("cluster {name} ({other:?})")),
        }
    }
    let warehouses = client.all_warehouses().await?;
    for name in &plan.warehouses {
        let w = warehouses
            .iter()
            .find(|w| &w.name == name)
            .ok_or_else(|| missing("warehouse", name))?;
        match w.state {
            WarehouseState::Running => {}
            WarehouseState::Stopped => {
                client.start_warehouse(&w.id).await?;
                actions.push(format!("warehouse {name}: start"));
                pending.push(format!("warehouse {name}"));
            }
            other => pending.push(format!("warehouse {name} ({other:?})")),
        }
    }
    let jobs = if plan.concurrency.is_empty() {
        Vec::new()
    } else {
        client.all_jobs().await?
    };
    for c in &plan.concurrency {
        let job = jobs
            .iter()
            .find(|j| j.settings.name == c.job)
            .ok_or_else(|| missing("job", &c.job))?;
        if job.settings.max_concurrent_runs != Some(c.max_concurrent_runs) {
            client
                .update_job(
                    job.job_id.clone(),
                    json!({"max_concurrent_runs": c.max_concurrent_runs}),
                )
                .await?;
            actions.push(format!(
                "job {}: max_concurrent_runs -> {}",
                c.job, c.max_concurrent_runs
            ));
        }
    }
    let elapsed_seconds = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
    let ready = pending.is_empty();
    Ok(StartupOutput {
        ready,
        timed_out: !ready && elapsed_seconds > f64::from(plan.ready_timeout_seconds),
        pending,
        actions,
        elapsed_seconds,
    })
}
