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
use tracing::instrument;

use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    databricks::{
        clusters::{ClusterFilter, ClusterState},
        pipelines::PipelineState,
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
    /// Readiness drills: start (or stop again) only the validation warehouse.
    #[serde(default)]
    pub readiness: Option<ReadinessAction>,
}

/// What a readiness drill asks of start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessAction {
    /// Start the plan's validation warehouse at DR.
    Start,
    /// Stop it again if the drill started it.
    Stop,
}

/// What start-up brings up at the target, by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// (pool, min_idle).
    pub pools: Vec<(String, u32)>,
    /// All-purpose clusters.
    pub clusters: Vec<String>,
    /// SQL warehouses.
    pub warehouses: Vec<String>,
    /// Pipelines.
    pub pipelines: Vec<String>,
}

/// Pure: the plan's start-up list, plus — for a failback — what was active at the primary
/// before the failover (the plan's values win for pools it names).
pub fn targets(plan: &crate::plan::Startup, restore: Option<&crate::fence::RestoreSet>) -> Targets {
    let mut t = Targets {
        pools: plan
            .pools
            .iter()
            .map(|p| (p.name.clone(), p.min_idle))
            .collect(),
        clusters: plan.clusters.clone(),
        warehouses: plan.warehouses.clone(),
        pipelines: Vec::new(),
    };
    if let Some(r) = restore {
        for (name, min_idle) in &r.pools {
            if !t.pools.iter().any(|(n, _)| n == name) {
                t.pools.push((name.clone(), *min_idle));
            }
        }
        for (list, more) in [
            (&mut t.clusters, &r.clusters),
            (&mut t.warehouses, &r.warehouses),
            (&mut t.pipelines, &r.pipelines),
        ] {
            for name in more {
                if !list.contains(name) {
                    list.push(name.clone());
                }
            }
        }
    }
    t
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReadinessRecord {
    warehouse: String,
    started_by_drill: bool,
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

/// Starts what the plan names and reports readiness.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: StartupInput) -> Result<StartupOutput, StepError> {
    let run = &input.run;
    let (_, target_role) = run.direction.roles();
    let key = keys::startup(&run.run_id);
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
    if let Some(action) = input.readiness {
        return readiness(deps, run, &client, action, started_at).await;
    }
    let restore = match &run.restore_from {
        Some(previous) => Some(
            deps.ledger
                .get::<crate::fence::FenceRecord>(&keys::fence(previous, target_role))
                .await?
                .ok_or_else(|| {
                    StepError::Refused(format!(
                        "run {previous} has no fence record to restore from"
                    ))
                })?
                .value
                .restore_set(),
        ),
        None => None,
    };
    let want = targets(plan, restore.as_ref());

    let pools = client.list_pools().await?;
    for (name, min_idle) in &want.pools {
        let pool = pools
            .iter()
            .find(|p| &p.instance_pool_name == name)
            .ok_or_else(|| missing("pool", name))?;
        if pool.min_idle_instances != *min_idle {
            client
                .set_pool_min_idle(&pool.instance_pool_id, *min_idle)
                .await?;
            actions.push(format!(
                "pool {name}: min_idle {} -> {min_idle}",
                pool.min_idle_instances
            ));
        }
    }
    let clusters = client.all_clusters(ClusterFilter::default()).await?;
    for name in &want.clusters {
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
    for name in &want.warehouses {
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
    if !want.pipelines.is_empty() {
        let pipelines = client.all_pipelines().await?;
        for name in &want.pipelines {
            let p = pipelines
                .iter()
                .find(|p| &p.name == name)
                .ok_or_else(|| missing("pipeline", name))?;
            match p.state {
                PipelineState::Running => {}
                PipelineState::Idle | PipelineState::Failed => {
                    client.start_pipeline_update(&p.pipeline_id).await?;
                    actions.push(format!("pipeline {name}: start update"));
                    pending.push(format!("pipeline {name}"));
                }
                other => pending.push(format!("pipeline {name} ({other:?})")),
            }
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

/// Readiness drills: one warehouse up for validation, then down again — only if the drill
/// started it (a warehouse already running at DR is left as found).
async fn readiness(
    deps: &Deps,
    run: &RunContext,
    client: &crate::databricks::WorkspaceClient,
    action: ReadinessAction,
    started_at: chrono::DateTime<Utc>,
) -> Result<StartupOutput, StepError> {
    let name = run.plan.validation.warehouse.clone().ok_or_else(|| {
        StepError::Refused("a readiness drill needs validation.warehouse in the plan".into())
    })?;
    let w = client
        .all_warehouses()
        .await?
        .into_iter()
        .find(|w| w.name == name)
        .ok_or_else(|| {
            StepError::Refused(format!("warehouse {name} does not exist at the DR site"))
        })?;
    let key = keys::readiness_drill(&run.run_id);
    let mut actions = Vec::new();
    let mut pending = Vec::new();
    match action {
        ReadinessAction::Start => {
            let record = ReadinessRecord {
                warehouse: name.clone(),
                started_by_drill: w.state == WarehouseState::Stopped,
            };
            // The first look decides whether the drill owns the warehouse.
            let owned = match deps.ledger.create(&key, &record).await? {
                Written::Ok(_) => record.started_by_drill,
                Written::Conflict => deps
                    .ledger
                    .get::<ReadinessRecord>(&key)
                    .await?
                    .is_some_and(|r| r.value.started_by_drill),
            };
            match w.state {
                WarehouseState::Running => {}
                WarehouseState::Stopped if owned => {
                    client.start_warehouse(&w.id).await?;
                    actions.push(format!("warehouse {name}: start (readiness)"));
                    pending.push(format!("warehouse {name}"));
                }
                other => pending.push(format!("warehouse {name} ({other:?})")),
            }
        }
        ReadinessAction::Stop => {
            let owned = deps
                .ledger
                .get::<ReadinessRecord>(&key)
                .await?
                .is_some_and(|r| r.value.started_by_drill);
            if owned && w.state.is_active() {
                client.stop_warehouse(&w.id).await?;
                actions.push(format!("warehouse {name}: stop (readiness)"));
            }
        }
    }
    let elapsed_seconds = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
    let ready = pending.is_empty();
    Ok(StartupOutput {
        ready,
        timed_out: !ready && elapsed_seconds > f64::from(run.plan.startup.ready_timeout_seconds),
        pending,
        actions,
        elapsed_seconds,
    })
}
