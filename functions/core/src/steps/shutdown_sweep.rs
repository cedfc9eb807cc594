//! `shutdown-sweep`: the seed's failover step 1 — stop the site being fenced from processing
//! data, without assuming it shuts down gracefully. Each invocation:
//!
//! 1. inventories the site (all families concurrently) and merges it into the fence record in
//!    the ledger, capturing each resource's *prior* state before anything is touched (that is
//!    what activation at the other site and failback restore);
//! 2. confirms what is now fenced (by read-back, not from a 200);
//! 3. acts on what is still active, riskiest first (active runs, running clusters, schedules
//!    by next fire time, continuous jobs, triggers, then pools, warehouses, pipelines), all
//!    families in parallel, each held under its rate limit by the client;
//! 4. re-reads and records the outcome per resource, and returns what remains.
//!
//! Within a family, requests leave in the planned order: one dispatcher per family paces them
//! at the family's rate (so the client's limiter never holds competing waiters that could
//! reorder them) with a few in flight. The attempt stops dispatching early enough to read back
//! and record before its deadline; what it did not reach stays unconfirmed for the next call,
//! and what is already fenced is skipped, so a crashed or timed-out attempt repeats no
//! confirmed work. Runs of unpaused continuous jobs are not cancelled: the service replaces a
//! cancelled continuous run at once, and pausing the job (which the sweep does) cancels it.
//!
//! An unreachable site is recorded, not fatal: the state machine waits and calls again.

use std::{
    collections::{BTreeMap, BTreeSet},
    num::NonZeroU32,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use tracing::{info, instrument, warn};

use super::{Deps, StepError};
use crate::{
    databricks::{
        clusters::{Cluster, ClusterFilter, ClusterId, ClusterState},
        jobs::{pause_field, Activation, Job, JobId, PauseStatus, Run, RunFilter, RunId},
        pipelines::{Pipeline, PipelineId, PipelineState},
        pools::{InstancePool, PoolId},
        warehouses::{Warehouse, WarehouseId, WarehouseState},
        ApiError, ErrorKind, Family, WorkspaceClient,
    },
    plan::{ActiveRunPolicy, Plan, SiteRole},
    run::RunContext,
    schedule::next_fire,
};

/// Input: the state document; `sweep` is the previous attempt's output, if any.
#[derive(Debug, Clone, Deserialize)]
pub struct SweepInput {
    /// The run.
    pub run: RunContext,
    /// Which site to fence; defaults to the run direction's source.
    #[serde(default)]
    pub site: Option<SiteRole>,
}

/// What one attempt achieved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepOutput {
    /// The site fenced.
    pub site: Option<SiteRole>,
    /// Attempt number (1-based, from the ledger: survives crashes).
    pub attempt: u32,
    /// Every recorded resource confirmed fenced.
    pub complete: bool,
    /// Attempts exhausted without completion.
    pub gave_up: bool,
    /// Whether the site answered this time.
    pub reachable: bool,
    /// Resources confirmed fenced.
    pub confirmed: usize,
    /// Resources not yet confirmed.
    pub remaining: usize,
    /// Write requests issued in this attempt.
    pub actions: usize,
    /// Resources skipped by the plan's exclusions.
    pub excluded: usize,
    /// Last error, if the site or a resource failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Kinds of fenced resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An active job run.
    Run,
    /// An all-purpose cluster.
    Cluster,
    /// A job's cron schedule.
    Schedule,
    /// A continuous job.
    Continuous,
    /// A job trigger.
    Trigger,
    /// An instance pool's idle instances.
    Pool,
    /// A SQL warehouse.
    Warehouse,
    /// A pipeline.
    Pipeline,
}

/// One resource's fence record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// Kind.
    pub kind: ResourceKind,
    /// Id at the fenced site.
    pub id: String,
    /// Name (how the other site finds its twin).
    pub name: String,
    /// State before Lifeboat touched it (`UNPAUSED`, `RUNNING`, `min_idle=3`, ...).
    pub prior: String,
    /// State wanted.
    pub desired: String,
    /// Verified fenced by a read-back.
    pub confirmed: bool,
    /// Write requests sent for it (over all attempts).
    pub actions: u32,
    /// Last error acting on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Prior numeric value, for pools (`min_idle_instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_value: Option<u32>,
}

/// Status of a site's fence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceStatus {
    /// Still working.
    InProgress,
    /// Every resource confirmed.
    Confirmed,
    /// Attempts exhausted.
    GaveUp,
}

/// `runs/<id>/fence/<site>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FenceRecord {
    /// Site.
    pub site: SiteRole,
    /// Status.
    pub status: FenceStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// Resources by key (`schedule:123`, `cluster:abc`, ...).
    pub resources: BTreeMap<String, ResourceRecord>,
    /// Last site-level error (unreachable, ...).
    #[serde(default)]
    pub last_error: Option<String>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
}

impl FenceRecord {
    fn new(site: SiteRole) -> Self {
        Self {
            site,
            status: FenceStatus::InProgress,
            attempts: 0,
            resources: BTreeMap::new(),
            last_error: None,
            updated_at: Utc::now(),
        }
    }

    /// What was active before the fence, by kind: what the other site should activate, and
    /// what failback restores.
    pub fn restore_set(&self) -> RestoreSet {
        let mut set = RestoreSet::default();
        for r in self.resources.values() {
            // Compute first seen already on its way down was not running before the fence.
            if matches!(
                r.kind,
                ResourceKind::Cluster | ResourceKind::Warehouse | ResourceKind::Pipeline
            ) && matches!(r.prior.as_str(), "TERMINATING" | "STOPPING")
            {
                continue;
            }
            match r.kind {
                ResourceKind::Schedule => {
                    set.activations.push((r.name.clone(), Activation::Schedule))
                }
                ResourceKind::Continuous => set
                    .activations
                    .push((r.name.clone(), Activation::Continuous)),
                ResourceKind::Trigger => {
                    set.activations.push((r.name.clone(), Activation::Trigger))
                }
                ResourceKind::Pool => set.pools.push((r.name.clone(), r.prior_value.unwrap_or(0))),
                ResourceKind::Warehouse => set.warehouses.push(r.name.clone()),
                ResourceKind::Cluster => set.clusters.push(r.name.clone()),
                ResourceKind::Pipeline => set.pipelines.push(r.name.clone()),
                ResourceKind::Run => {}
            }
        }
        set.activations.sort();
        set.pools.sort();
        set.warehouses.sort();
        set.clusters.sort();
        set.pipelines.sort();
        set
    }

    fn counts(&self) -> (usize, usize) {
        let confirmed = self.resources.values().filter(|r| r.confirmed).count();
        (confirmed, self.resources.len() - confirmed)
    }
}

/// What was active at a site before it was fenced, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreSet {
    /// (job name, activation) that were UNPAUSED.
    pub activations: Vec<(String, Activation)>,
    /// (pool name, min_idle) with min_idle > 0.
    pub pools: Vec<(String, u32)>,
    /// Warehouses that were running.
    pub warehouses: Vec<String>,
    /// All-purpose clusters that were running.
    pub clusters: Vec<String>,
    /// Pipelines that were running.
    pub pipelines: Vec<String>,
}

/// Ledger key of a site's fence record for a run.
pub fn fence_key(run: &RunContext, site: SiteRole) -> String {
    fence_key_of(&run.run_id, site)
}

/// Ledger key of a site's fence record for any run (a failback reads its failover's).
pub fn fence_key_of(run_id: &crate::run::RunId, site: SiteRole) -> String {
    let site = match site {
        SiteRole::Primary => "primary",
        SiteRole::Dr => "dr",
    };
    format!("runs/{run_id}/fence/{site}.json")
}

/// A site's live inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// All-purpose clusters (UI/API), any state.
    pub clusters: Vec<Cluster>,
    /// Every job.
    pub jobs: Vec<Job>,
    /// Active runs.
    pub active_runs: Vec<Run>,
    /// Every pool.
    pub pools: Vec<InstancePool>,
    /// Every warehouse.
    pub warehouses: Vec<Warehouse>,
    /// Every pipeline.
    pub pipelines: Vec<Pipeline>,
}

impl Inventory {
    /// Active resources by kind, for the approval evidence.
    pub fn counts(&self) -> Vec<(String, usize)> {
        vec![
            ("active runs".into(), self.active_runs.len()),
            (
                "running clusters".into(),
                self.clusters.iter().filter(|c| c.state.is_active()).count(),
            ),
            (
                "unpaused job schedules/triggers".into(),
                self.jobs.iter().map(|j| j.settings.unpaused().len()).sum(),
            ),
            (
                "warm pools".into(),
                self.pools
                    .iter()
                    .filter(|p| p.min_idle_instances > 0)
                    .count(),
            ),
            (
                "running warehouses".into(),
                self.warehouses
                    .iter()
                    .filter(|w| w.state.is_active())
                    .count(),
            ),
            (
                "running pipelines".into(),
                self.pipelines
                    .iter()
                    .filter(|p| p.state.is_active())
                    .count(),
            ),
        ]
    }
}

/// Lists everything the sweep cares about, all families concurrently.
pub async fn inventory(client: &WorkspaceClient, _plan: &Plan) -> Result<Inventory, ApiError> {
    let clusters = client.all_clusters(ClusterFilter {
        sources: vec![
            crate::databricks::clusters::ClusterSource::Ui,
            crate::databricks::clusters::ClusterSource::Api,
        ],
        ..Default::default()
    });
    let jobs = client.all_jobs();
    let runs = client.all_runs(RunFilter {
        active_only: true,
        job_id: None,
    });
    let pools = client.list_pools();
    let warehouses = client.all_warehouses();
    let pipelines = client.all_pipelines();
    let (clusters, jobs, active_runs, pools, warehouses, pipelines) =
        futures::try_join!(clusters, jobs, runs, pools, warehouses, pipelines)?;
    Ok(Inventory {
        clusters,
        jobs,
        active_runs,
        pools,
        warehouses,
        pipelines,
    })
}

/// One write the sweep decided on.
#[derive(Debug, Clone, PartialEq)]
pub enum FenceAction {
    /// `runs/cancel`.
    CancelRun(RunId),
    /// `clusters/delete` (terminate).
    TerminateCluster(ClusterId),
    /// `jobs/update` with the activation's object resent, paused.
    Pause(JobId, Activation, serde_json::Value),
    /// `instance-pools/edit` with min_idle 0.
    DrainPool(PoolId),
    /// `warehouses/{id}/stop`.
    StopWarehouse(WarehouseId),
    /// `pipelines/{id}/stop`.
    StopPipeline(PipelineId),
}

impl FenceAction {
    /// The rate-limit family the request belongs to.
    pub fn family(&self) -> Family {
        match self {
            FenceAction::CancelRun(_) => Family::RunsWrite,
            FenceAction::TerminateCluster(_) => Family::Clusters,
            FenceAction::Pause(..) => Family::JobsUpdate,
            FenceAction::DrainPool(_) => Family::Pools,
            FenceAction::StopWarehouse(_) => Family::Warehouses,
            FenceAction::StopPipeline(_) => Family::Pipelines,
        }
    }
}

/// A planned action with its record key and priority (lower first).
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// Record key.
    pub key: String,
    /// Sort key: (kind rank, next fire time in ms for schedules).
    pub priority: (u8, i64),
    /// The action.
    pub action: FenceAction,
}

/// Observed state of one resource in the current inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Observed {
    /// Active: needs an action.
    Active,
    /// On its way down (TERMINATING, STOPPING): wait.
    Stopping,
    /// Fenced (or gone).
    Fenced,
}

fn name_of_job(job: &Job) -> String {
    if job.settings.name.is_empty() {
        format!("job-{}", job.job_id)
    } else {
        job.settings.name.clone()
    }
}

/// Pure: merges the inventory into the record (new active resources get their prior state),
/// confirms what is fenced, and returns the actions still needed, riskiest first.
pub fn plan_fence(
    plan: &Plan,
    inventory: &Inventory,
    record: &mut FenceRecord,
    now: DateTime<Utc>,
) -> (Vec<Planned>, usize) {
    let mut observed: BTreeMap<String, (Observed, Option<Planned>)> = BTreeMap::new();
    let mut excluded = 0usize;
    // `match_name` is what the plan's `exclude_names` are compared with (a run's job name).
    let mut seen = |record: &mut FenceRecord,
                    key: String,
                    kind: ResourceKind,
                    id: String,
                    name: String,
                    match_name: &str,
                    tags: &BTreeMap<String, String>,
                    state: Observed,
                    prior: String,
                    prior_value: Option<u32>,
                    planned: Option<Planned>| {
        if plan.excluded(match_name, tags) {
            excluded += 1;
            return;
        }
        if state != Observed::Fenced && !record.resources.contains_key(&key) {
            record.resources.insert(
                key.clone(),
                ResourceRecord {
                    kind,
                    id,
                    name,
                    prior,
                    desired: desired_of(kind).into(),
                    confirmed: false,
                    actions: 0,
                    last_error: None,
                    prior_value,
                },
            );
        }
        observed.insert(key, (state, planned));
    };

    let job_names: BTreeMap<&JobId, (&str, &BTreeMap<String, String>)> = inventory
        .jobs
        .iter()
        .map(|j| (&j.job_id, (j.settings.name.as_str(), &j.settings.tags)))
        .collect();
    // Unpaused continuous jobs: this sweep pauses them, which cancels their run; cancelling
    // the run alone is wasted (the service replaces it at once), so their runs get no
    // `runs/cancel` — they are recorded and confirmed once gone.
    let continuous_live: BTreeSet<&JobId> = inventory
        .jobs
        .iter()
        .filter(|j| j.settings.pause_status(Activation::Continuous) == Some(PauseStatus::Unpaused))
        .map(|j| &j.job_id)
        .collect();
    let no_tags = BTreeMap::new();
    if plan.shutdown.active_runs == ActiveRunPolicy::Cancel {
        for r in &inventory.active_runs {
            let (name, tags) = r
                .job_id
                .as_ref()
                .and_then(|j| job_names.get(j).copied())
                .unwrap_or(("", &no_tags));
            let state = if r.state.life_cycle_state
                == crate::databricks::jobs::LifeCycleState::Terminating
            {
                Observed::Stopping
            } else {
                Observed::Active
            };
            let key = format!("run:{}", r.run_id);
            let by_pause = r
                .job_id
                .as_ref()
                .is_some_and(|j| continuous_live.contains(j));
            seen(
                record,
                key.clone(),
                ResourceKind::Run,
                r.run_id.to_string(),
                format!("{name}#{}", r.run_id),
                name,
                tags,
                state,
                wire(&r.state.life_cycle_state),
                None,
                (!by_pause).then(|| Planned {
                    key,
                    priority: (0, 0),
                    action: FenceAction::CancelRun(r.run_id.clone()),
                }),
            );
        }
    }
    for c in &inventory.clusters {
        let state = match c.state {
            s if s.is_active() => Observed::Active,
            ClusterState::Terminating => Observed::Stopping,
            _ => Observed::Fenced,
        };
        let key = format!("cluster:{}", c.cluster_id);
        seen(
            record,
            key.clone(),
            ResourceKind::Cluster,
            c.cluster_id.to_string(),
            c.cluster_name.clone(),
            &c.cluster_name,
            &c.custom_tags,
            state,
            wire(&c.state),
            None,
            Some(Planned {
                key,
                priority: (1, 0),
                action: FenceAction::TerminateCluster(c.cluster_id.clone()),
            }),
        );
    }
    for j in &inventory.jobs {
        for (activation, kind, rank) in [
            (Activation::Schedule, ResourceKind::Schedule, 2u8),
            (Activation::Continuous, ResourceKind::Continuous, 3),
            (Activation::Trigger, ResourceKind::Trigger, 4),
        ] {
            let Some(status) = j.settings.pause_status(activation) else {
                continue;
            };
            let key = format!("{}:{}", activation.field(), j.job_id);
            let state = if status == PauseStatus::Unpaused {
                Observed::Active
            } else {
                Observed::Fenced
            };
            let when = if activation == Activation::Schedule {
                j.settings
                    .schedule
                    .as_ref()
                    .and_then(|s| next_fire(s, now))
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(i64::MAX)
            } else {
                0
            };
            let planned =
                pause_field(&j.settings, activation, PauseStatus::Paused).map(|v| Planned {
                    key: key.clone(),
                    priority: (rank, when),
                    action: FenceAction::Pause(j.job_id.clone(), activation, v),
                });
            seen(
                record,
                key,
                kind,
                j.job_id.to_string(),
                name_of_job(j),
                &j.settings.name,
                &j.settings.tags,
                state,
                "UNPAUSED".into(),
                None,
                planned,
            );
        }
    }
    for p in &inventory.pools {
        let key = format!("pool:{}", p.instance_pool_id);
        let state = if p.min_idle_instances > 0 {
            Observed::Active
        } else {
            Observed::Fenced
        };
        seen(
            record,
            key.clone(),
            ResourceKind::Pool,
            p.instance_pool_id.to_string(),
            p.instance_pool_name.clone(),
            &p.instance_pool_name,
            &p.custom_tags,
            state,
            format!("min_idle={}", p.min_idle_instances),
            Some(p.min_idle_instances),
            Some(Planned {
                key,
                priority: (5, 0),
                action: FenceAction::DrainPool(p.instance_pool_id.clone()),
            }),
        );
    }
    for w in &inventory.warehouses {
        let key = format!("warehouse:{}", w.id);
        let state = match w.state {
            s if s.is_active() => Observed::Active,
            WarehouseState::Stopping => Observed::Stopping,
            _ => Observed::Fenced,
        };
        let tags = warehouse_tags(w);
        seen(
            record,
            key.clone(),
            ResourceKind::Warehouse,
            w.id.to_string(),
            w.name.clone(),
            &w.name,
            &tags,
            state,
            wire(&w.state),
            None,
            Some(Planned {
                key,
                priority: (6, 0),
                action: FenceAction::StopWarehouse(w.id.clone()),
            }),
        );
    }
    for p in &inventory.pipelines {
        let key = format!("pipeline:{}", p.pipeline_id);
        let state = match p.state {
            s if s.is_active() => Observed::Active,
            PipelineState::Stopping => Observed::Stopping,
            _ => Observed::Fenced,
        };
        seen(
            record,
            key.clone(),
            ResourceKind::Pipeline,
            p.pipeline_id.to_string(),
            p.name.clone(),
            &p.name,
            &BTreeMap::new(),
            state,
            wire(&p.state),
            None,
            Some(Planned {
                key,
                priority: (7, 0),
                action: FenceAction::StopPipeline(p.pipeline_id.clone()),
            }),
        );
    }

    let mut planned = Vec::new();
    for (key, r) in record.resources.iter_mut() {
        match observed.remove(key) {
            // Gone from the site (deleted, or a finished run): nothing left to fence.
            None => r.confirmed = true,
            Some((Observed::Fenced, _)) => r.confirmed = true,
            Some((Observed::Stopping, _)) => r.confirmed = false,
            Some((Observed::Active, action)) => {
                r.confirmed = false;
                if let Some(a) = action {
                    planned.push(a);
                }
            }
        }
    }
    planned.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.key.cmp(&b.key)));
    (planned, excluded)
}

/// A state's wire name (`RUNNING`, `TERMINATING`, ...).
fn wire<T: Serialize + std::fmt::Debug>(state: &T) -> String {
    match serde_json::to_value(state) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{state:?}").to_uppercase(),
    }
}

fn warehouse_tags(w: &Warehouse) -> BTreeMap<String, String> {
    w.extra
        .get("tags")
        .and_then(|t| t.get("custom_tags"))
        .and_then(|t| t.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|kv| {
                    Some((
                        kv.get("key")?.as_str()?.to_string(),
                        kv.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn desired_of(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Run => "TERMINATED",
        ResourceKind::Cluster => "TERMINATED",
        ResourceKind::Schedule | ResourceKind::Continuous | ResourceKind::Trigger => "PAUSED",
        ResourceKind::Pool => "min_idle=0",
        ResourceKind::Warehouse => "STOPPED",
        ResourceKind::Pipeline => "IDLE",
    }
}

async fn perform(client: &WorkspaceClient, action: &FenceAction) -> Result<(), ApiError> {
    let result = match action {
        FenceAction::CancelRun(id) => client.cancel_run(id.clone()).await,
        FenceAction::TerminateCluster(id) => client.terminate_cluster(id).await,
        FenceAction::Pause(id, _, settings) => {
            client.update_job(id.clone(), settings.clone()).await
        }
        FenceAction::DrainPool(id) => client.set_pool_min_idle(id, 0).await.map(|_| ()),
        FenceAction::StopWarehouse(id) => client.stop_warehouse(id).await,
        FenceAction::StopPipeline(id) => client.stop_pipeline(id).await,
    };
    match result {
        // Already gone counts as fenced.
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// Test and benchmark knobs; production uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Simulates a crash: stop after this many actions without recording the outcome.
    pub crash_after_actions: Option<usize>,
    /// Concurrent requests per family (the limiter still holds the rate).
    pub per_family_concurrency: Option<usize>,
}

/// Time kept back from the deadline for the final ledger write.
const LEDGER_RESERVE: Duration = Duration::from_secs(1);

/// The dispatcher paces each family this much below the client's limiter. Paced at exactly the
/// same rate, a request delayed on its way (a busy executor) would leave the client's limiter
/// late for good, and the next request would queue beside it there and could overtake it; the
/// headroom absorbs such delays within a few requests, so the planned order holds.
const PACE_HEADROOM: f64 = 0.97;

/// What became of one dispatched action.
enum Outcome {
    /// The request was answered (or failed for good) before the cut-off.
    Done(Result<(), ApiError>),
    /// Still in flight at the cut-off: it may or may not have taken effect.
    Unknown,
}

/// Runs one sweep attempt.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(
    deps: &Deps,
    input: SweepInput,
    deadline: Instant,
) -> Result<SweepOutput, StepError> {
    handle_with(deps, input, deadline, SweepOptions::default()).await
}

/// [`handle`] with options.
pub async fn handle_with(
    deps: &Deps,
    input: SweepInput,
    deadline: Instant,
    options: SweepOptions,
) -> Result<SweepOutput, StepError> {
    let run = &input.run;
    let role = input.site.unwrap_or(run.direction.roles().0);
    let site = run.plan.site(role);
    let key = fence_key(run, role);
    // Everything that talks to the workspace ends by `hard`, leaving time to record it.
    let hard = deadline.checked_sub(LEDGER_RESERVE).unwrap_or(deadline);
    let mut record = deps
        .ledger
        .get::<FenceRecord>(&key)
        .await?
        .map(|v| v.value)
        .unwrap_or_else(|| FenceRecord::new(role));
    record.attempts += 1;
    let attempt = record.attempts;
    let max_attempts = run.plan.shutdown.max_attempts;
    let client = deps.workspaces.client(site).await?.with_deadline(hard);

    let mut output = SweepOutput {
        site: Some(role),
        attempt,
        ..Default::default()
    };
    let started = Instant::now();
    let listed = match tokio::time::timeout_at(hard.into(), inventory(&client, &run.plan)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::new(
            ErrorKind::DeadlineExceeded,
            "inventory",
            "deadline reached before the inventory completed",
        )),
    };
    let inventory_time = started.elapsed();
    let current = match listed {
        Ok(inv) => inv,
        Err(e) => {
            warn!(error = %e, attempt, "no inventory; fence recorded as unconfirmed");
            record.last_error = Some(e.to_string());
            let (confirmed, remaining) = record.counts();
            record.status = if attempt >= max_attempts {
                FenceStatus::GaveUp
            } else {
                FenceStatus::InProgress
            };
            record.updated_at = Utc::now();
            deps.ledger.put(&key, &record).await?;
            output.reachable = false;
            output.confirmed = confirmed;
            // Unknown resources are outstanding too: never report a fence complete unseen.
            output.remaining = remaining.max(1);
            output.gave_up = record.status == FenceStatus::GaveUp;
            output.last_error = record.last_error.clone();
            return Ok(output);
        }
    };
    output.reachable = true;
    let (planned, excluded) = plan_fence(&run.plan, &current, &mut record, Utc::now());
    output.excluded = excluded;
    // Record the prior states before touching anything.
    record.updated_at = Utc::now();
    deps.ledger.put(&key, &record).await?;

    // New requests stop early enough to leave time for the read-back listing.
    let cutoff = hard
        .checked_sub(inventory_time.mul_f64(1.5))
        .unwrap_or(hard);
    let actions = AtomicUsize::new(0);
    let concurrency = options.per_family_concurrency.unwrap_or(4).max(1);
    let mut by_family: BTreeMap<Family, Vec<Planned>> = BTreeMap::new();
    for p in planned {
        by_family.entry(p.action.family()).or_default().push(p);
    }
    let families = by_family.into_iter().map(|(family, list)| {
        let rate = deps.workspaces.rate_limits.rate(family);
        run_family(
            &client,
            list,
            rate,
            concurrency,
            cutoff,
            hard,
            options.crash_after_actions,
            &actions,
        )
    });
    let results: Vec<(String, Outcome)> = futures::future::join_all(families)
        .await
        .into_iter()
        .flatten()
        .collect();
    if let Some(limit) = options.crash_after_actions {
        if actions.load(Ordering::SeqCst) >= limit {
            return Err(StepError::InvalidInput(format!(
                "simulated crash after {limit} actions"
            )));
        }
    }
    output.actions = results.len();
    for (k, outcome) in results {
        if let Some(rec) = record.resources.get_mut(&k) {
            rec.actions += 1;
            rec.last_error = match outcome {
                Outcome::Done(r) => r.err().map(|e| e.to_string()),
                Outcome::Unknown => {
                    Some("deadline reached with the request in flight; outcome unknown".into())
                }
            };
        }
    }
    // Read back: confirm by observation, not by the 200s.
    record.last_error = None;
    if output.actions > 0 {
        if Instant::now() + inventory_time < hard {
            let listed = tokio::time::timeout_at(hard.into(), inventory(&client, &run.plan)).await;
            match listed {
                Ok(Ok(inv)) => {
                    let _ = plan_fence(&run.plan, &inv, &mut record, Utc::now());
                }
                Ok(Err(e)) => record.last_error = Some(format!("read-back: {e}")),
                Err(_) => {
                    record.last_error = Some("read-back: deadline reached".into());
                }
            }
        } else {
            record.last_error = Some("read-back skipped: too close to the deadline".into());
        }
    }
    let (confirmed, remaining) = record.counts();
    record.status = if remaining == 0 {
        FenceStatus::Confirmed
    } else if attempt >= max_attempts {
        FenceStatus::GaveUp
    } else {
        FenceStatus::InProgress
    };
    record.updated_at = Utc::now();
    deps.ledger.put(&key, &record).await?;
    output.confirmed = confirmed;
    output.remaining = remaining;
    output.complete = remaining == 0;
    output.gave_up = record.status == FenceStatus::GaveUp;
    output.last_error = record.last_error.clone();
    info!(
        attempt,
        confirmed,
        remaining,
        actions = output.actions,
        "sweep attempt done"
    );
    Ok(output)
}

/// Sends one family's actions in their planned order: a sequential dispatcher paced at the
/// family's rate (so the client's limiter never holds more than one waiter and cannot reorder
/// them), up to `concurrency` requests in flight. Stops dispatching at `cutoff` and abandons
/// what is still in flight at `hard`.
#[allow(clippy::too_many_arguments)]
async fn run_family(
    client: &WorkspaceClient,
    list: Vec<Planned>,
    rate: f64,
    concurrency: usize,
    cutoff: Instant,
    hard: Instant,
    crash_after: Option<usize>,
    actions: &AtomicUsize,
) -> Vec<(String, Outcome)> {
    let pacer = (rate > 0.0)
        .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / (rate * PACE_HEADROOM))))
        .flatten()
        .map(|q| RateLimiter::direct(q.allow_burst(NonZeroU32::MIN)));
    let mut in_flight = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    let collect = |joined: Result<(String, Outcome), tokio::task::JoinError>,
                   results: &mut Vec<(String, Outcome)>| {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => warn!(error = %e, "fence action task failed"),
        }
    };
    for p in list {
        while in_flight.len() >= concurrency {
            if let Some(j) = in_flight.join_next().await {
                collect(j, &mut results);
            }
        }
        if let Some(pacer) = &pacer {
            if tokio::time::timeout_at(cutoff.into(), pacer.until_ready())
                .await
                .is_err()
            {
                break;
            }
        }
        if Instant::now() >= cutoff {
            break;
        }
        let done = actions.fetch_add(1, Ordering::SeqCst);
        if crash_after.is_some_and(|limit| done >= limit) {
            break;
        }
        let client = client.clone();
        in_flight.spawn(async move {
            let outcome =
                match tokio::time::timeout_at(hard.into(), perform(&client, &p.action)).await {
                    Ok(r) => Outcome::Done(r),
                    Err(_) => Outcome::Unknown,
                };
            (p.key, outcome)
        });
    }
    while let Some(j) = in_flight.join_next().await {
        collect(j, &mut results);
    }
    results
}
