//! The fence domain: what "fenced" means per resource, the per-resource record in the ledger
//! (with each resource's prior state), a site's inventory, and the pure planning of what is
//! still to fence, riskiest first. The `shutdown-sweep` step dispatches the plan; activation
//! at the other site, failback and the fence watch read the record.

pub mod data;
pub mod gate;
pub mod handoff;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    databricks::{
        clusters::{Cluster, ClusterFilter, ClusterId, ClusterState},
        jobs::{pause_field, Activation, Job, JobId, PauseStatus, Run, RunFilter, RunId},
        pipelines::{Pipeline, PipelineId, PipelineState},
        pools::{InstancePool, PoolId},
        warehouses::{Warehouse, WarehouseId, WarehouseState},
        ApiError, Family, WorkspaceClient,
    },
    plan::{ActiveRunPolicy, Plan, SiteRole},
    schedule::next_fire,
};

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
    /// Seen last on its way down (TERMINATING, STOPPING): progress, not a failure to act on.
    #[serde(default)]
    pub stopping: bool,
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
    /// When the site first answered an inventory; `None`: never reached (unreachable from the
    /// start), so the record does not know what was live there.
    #[serde(default)]
    pub inventoried_at: Option<DateTime<Utc>>,
}

impl FenceRecord {
    /// A fresh record for a site.
    pub fn new(site: SiteRole) -> Self {
        Self {
            site,
            status: FenceStatus::InProgress,
            attempts: 0,
            resources: BTreeMap::new(),
            last_error: None,
            updated_at: Utc::now(),
            inventoried_at: None,
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

    /// Unconfirmed resources that are only finishing a stop (no action needed, only time).
    pub fn stopping(&self) -> usize {
        self.resources
            .values()
            .filter(|r| !r.confirmed && r.stopping)
            .count()
    }

    /// (confirmed, not yet confirmed).
    pub fn counts(&self) -> (usize, usize) {
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
                    stopping: false,
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
            None | Some((Observed::Fenced, _)) => {
                r.confirmed = true;
                r.stopping = false;
            }
            Some((Observed::Stopping, _)) => {
                r.confirmed = false;
                r.stopping = true;
            }
            Some((Observed::Active, action)) => {
                r.confirmed = false;
                r.stopping = false;
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
    /// Fence watch only: a failback began; the watch ends without sweeping.
    #[serde(default)]
    pub watch_stopped: bool,
    /// Unconfirmed resources that are only finishing a stop.
    #[serde(default)]
    pub stopping: usize,
    /// Everything unconfirmed is only finishing a stop: wait, do not act again.
    #[serde(default)]
    pub stopping_only: bool,
}
