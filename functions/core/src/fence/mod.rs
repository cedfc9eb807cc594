//! The fence domain: what "fenced" means per resource, the per-resource record in the ledger
//! (with each resource's prior state), a site's inventory, and the pure planning of what is
//! still to fence, riskiest first. The `shutdown-sweep` step dispatches the plan; activation
//! at the other site, failback and the fence watch read the record.

pub mod data;
pub mod gate;
pub mod handoff;
pub mod planning;
pub mod watch;

pub use planning::{plan_fence, Planned};

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    databricks::{
        clusters::{Cluster, ClusterFilter, ClusterId},
        jobs::{Activation, Job, JobId, Run, RunFilter, RunId},
        pipelines::{Pipeline, PipelineId},
        pools::{InstancePool, PoolId},
        warehouses::{Warehouse, WarehouseId},
        ApiError, Family, WorkspaceClient,
    },
    plan::{Plan, SiteRole},
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
