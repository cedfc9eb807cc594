//! Planning the fence, pure: what a site's inventory shows of each family (runs, clusters, job
//! activations, pools, warehouses, pipelines) as [`Sighting`]s, merged into the fence record —
//! new active resources get their prior state recorded before anything acts on them, fenced or
//! vanished ones are confirmed, those on their way down wait — and the writes still needed,
//! riskiest first: runs, then clusters, schedules by next fire time, continuous jobs,
//! triggers, pools, warehouses, pipelines.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{FenceAction, FenceRecord, Inventory, ResourceKind, ResourceRecord};
use crate::{
    databricks::{
        clusters::ClusterState,
        jobs::{pause_field, Activation, Job, JobId, LifeCycleState, PauseStatus},
        pipelines::PipelineState,
        warehouses::{Warehouse, WarehouseState},
    },
    plan::{ActiveRunPolicy, Plan},
    schedule::next_fire,
};

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
pub enum Observed {
    /// Active: needs an action.
    Active,
    /// On its way down (TERMINATING, STOPPING): wait.
    Stopping,
    /// Fenced (or gone).
    Fenced,
}

/// One resource as the inventory shows it: how it is recorded, whether it is active, and the
/// write that would fence it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// Record key (`cluster:abc`, `schedule:123`, ...).
    pub key: String,
    /// Kind.
    pub kind: ResourceKind,
    /// Id at the site.
    pub id: String,
    /// Name recorded (how the other site finds its twin).
    pub name: String,
    /// What the plan's `shutdown.exclude_names` is compared with (a run's job name).
    pub match_name: String,
    /// What `shutdown.exclude_tags` is compared with.
    pub tags: BTreeMap<String, String>,
    /// Active, stopping or fenced.
    pub state: Observed,
    /// Its state now, recorded as the prior state when first seen active.
    pub prior: String,
    /// Its numeric prior (pools' `min_idle_instances`).
    pub prior_value: Option<u32>,
    /// The write that fences it (`None`: nothing to send; e.g. a continuous job's run, which
    /// pausing the job cancels).
    pub action: Option<Planned>,
}

/// Pure: merges the inventory into the record (new active resources get their prior state),
/// confirms what is fenced, and returns the actions still needed, riskiest first, and how many
/// resources the plan's exclusions skipped.
pub fn plan_fence(
    plan: &Plan,
    inventory: &Inventory,
    record: &mut FenceRecord,
    now: DateTime<Utc>,
) -> (Vec<Planned>, usize) {
    merge(plan, record, sightings(plan, inventory, now))
}

/// Pure: every resource of the inventory the fence cares about.
pub fn sightings(plan: &Plan, inventory: &Inventory, now: DateTime<Utc>) -> Vec<Sighting> {
    let mut out = Vec::new();
    if plan.shutdown.active_runs == ActiveRunPolicy::Cancel {
        out.extend(runs(inventory));
    }
    out.extend(clusters(inventory));
    out.extend(activations(inventory, now));
    out.extend(pools(inventory));
    out.extend(warehouses(inventory));
    out.extend(pipelines(inventory));
    out
}

/// Pure: the sightings merged into the record; the actions still needed (sorted by priority,
/// then key) and the number of sightings the plan excludes.
pub fn merge(
    plan: &Plan,
    record: &mut FenceRecord,
    sightings: Vec<Sighting>,
) -> (Vec<Planned>, usize) {
    let mut observed: BTreeMap<String, (Observed, Option<Planned>)> = BTreeMap::new();
    let mut excluded = 0usize;
    for s in sightings {
        if plan.excluded(&s.match_name, &s.tags) {
            excluded += 1;
            continue;
        }
        if s.state != Observed::Fenced && !record.resources.contains_key(&s.key) {
            record.resources.insert(
                s.key.clone(),
                ResourceRecord {
                    kind: s.kind,
                    id: s.id,
                    name: s.name,
                    prior: s.prior,
                    desired: desired_of(s.kind).into(),
                    confirmed: false,
                    actions: 0,
                    last_error: None,
                    prior_value: s.prior_value,
                    stopping: false,
                },
            );
        }
        observed.insert(s.key, (s.state, s.action));
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
                planned.extend(action);
            }
        }
    }
    planned.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.key.cmp(&b.key)));
    (planned, excluded)
}

/// Active runs. An unpaused continuous job's run gets no `runs/cancel`: the sweep pauses the
/// job, which cancels its run, and cancelling the run alone is wasted (the service replaces it
/// at once) — it is recorded and confirmed once gone.
fn runs(inventory: &Inventory) -> Vec<Sighting> {
    let jobs: BTreeMap<&JobId, &Job> = inventory.jobs.iter().map(|j| (&j.job_id, j)).collect();
    let continuous_live: BTreeSet<&JobId> = inventory
        .jobs
        .iter()
        .filter(|j| j.settings.pause_status(Activation::Continuous) == Some(PauseStatus::Unpaused))
        .map(|j| &j.job_id)
        .collect();
    inventory
        .active_runs
        .iter()
        .map(|r| {
            let job = r.job_id.as_ref().and_then(|j| jobs.get(j));
            let name = job.map_or("", |j| j.settings.name.as_str());
            let key = format!("run:{}", r.run_id);
            let by_pause = r
                .job_id
                .as_ref()
                .is_some_and(|j| continuous_live.contains(j));
            Sighting {
                key: key.clone(),
                kind: ResourceKind::Run,
                id: r.run_id.to_string(),
                name: format!("{name}#{}", r.run_id),
                match_name: name.to_string(),
                tags: job.map(|j| j.settings.tags.clone()).unwrap_or_default(),
                state: if r.state.life_cycle_state == LifeCycleState::Terminating {
                    Observed::Stopping
                } else {
                    Observed::Active
                },
                prior: wire(&r.state.life_cycle_state),
                prior_value: None,
                action: (!by_pause).then(|| Planned {
                    key,
                    priority: (0, 0),
                    action: FenceAction::CancelRun(r.run_id.clone()),
                }),
            }
        })
        .collect()
}

/// All-purpose clusters.
fn clusters(inventory: &Inventory) -> Vec<Sighting> {
    inventory
        .clusters
        .iter()
        .map(|c| {
            let key = format!("cluster:{}", c.cluster_id);
            Sighting {
                key: key.clone(),
                kind: ResourceKind::Cluster,
                id: c.cluster_id.to_string(),
                name: c.cluster_name.clone(),
                match_name: c.cluster_name.clone(),
                tags: c.custom_tags.clone(),
                state: match c.state {
                    s if s.is_active() => Observed::Active,
                    ClusterState::Terminating => Observed::Stopping,
                    _ => Observed::Fenced,
                },
                prior: wire(&c.state),
                prior_value: None,
                action: Some(Planned {
                    key,
                    priority: (1, 0),
                    action: FenceAction::TerminateCluster(c.cluster_id.clone()),
                }),
            }
        })
        .collect()
}

/// Each job's schedule, continuous setting and trigger; schedules ordered by their next fire
/// time (the one that would fire first is paused first).
fn activations(inventory: &Inventory, now: DateTime<Utc>) -> Vec<Sighting> {
    let mut out = Vec::new();
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
            let when = match (activation, &j.settings.schedule) {
                (Activation::Schedule, Some(s)) => next_fire(s, now)
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(i64::MAX),
                (Activation::Schedule, None) => i64::MAX,
                _ => 0,
            };
            let action =
                pause_field(&j.settings, activation, PauseStatus::Paused).map(|v| Planned {
                    key: key.clone(),
                    priority: (rank, when),
                    action: FenceAction::Pause(j.job_id.clone(), activation, v),
                });
            out.push(Sighting {
                key,
                kind,
                id: j.job_id.to_string(),
                name: name_of_job(j),
                match_name: j.settings.name.clone(),
                tags: j.settings.tags.clone(),
                state: if status == PauseStatus::Unpaused {
                    Observed::Active
                } else {
                    Observed::Fenced
                },
                prior: "UNPAUSED".into(),
                prior_value: None,
                action,
            });
        }
    }
    out
}

/// Instance pools holding idle instances.
fn pools(inventory: &Inventory) -> Vec<Sighting> {
    inventory
        .pools
        .iter()
        .map(|p| {
            let key = format!("pool:{}", p.instance_pool_id);
            Sighting {
                key: key.clone(),
                kind: ResourceKind::Pool,
                id: p.instance_pool_id.to_string(),
                name: p.instance_pool_name.clone(),
                match_name: p.instance_pool_name.clone(),
                tags: p.custom_tags.clone(),
                state: if p.min_idle_instances > 0 {
                    Observed::Active
                } else {
                    Observed::Fenced
                },
                prior: format!("min_idle={}", p.min_idle_instances),
                prior_value: Some(p.min_idle_instances),
                action: Some(Planned {
                    key,
                    priority: (5, 0),
                    action: FenceAction::DrainPool(p.instance_pool_id.clone()),
                }),
            }
        })
        .collect()
}

/// SQL warehouses.
fn warehouses(inventory: &Inventory) -> Vec<Sighting> {
    inventory
        .warehouses
        .iter()
        .map(|w| {
            let key = format!("warehouse:{}", w.id);
            Sighting {
                key: key.clone(),
                kind: ResourceKind::Warehouse,
                id: w.id.to_string(),
                name: w.name.clone(),
                match_name: w.name.clone(),
                tags: warehouse_tags(w),
                state: match w.state {
                    s if s.is_active() => Observed::Active,
                    WarehouseState::Stopping => Observed::Stopping,
                    _ => Observed::Fenced,
                },
                prior: wire(&w.state),
                prior_value: None,
                action: Some(Planned {
                    key,
                    priority: (6, 0),
                    action: FenceAction::StopWarehouse(w.id.clone()),
                }),
            }
        })
        .collect()
}

/// Pipelines.
fn pipelines(inventory: &Inventory) -> Vec<Sighting> {
    inventory
        .pipelines
        .iter()
        .map(|p| {
            let key = format!("pipeline:{}", p.pipeline_id);
            Sighting {
                key: key.clone(),
                kind: ResourceKind::Pipeline,
                id: p.pipeline_id.to_string(),
                name: p.name.clone(),
                match_name: p.name.clone(),
                tags: BTreeMap::new(),
                state: match p.state {
                    s if s.is_active() => Observed::Active,
                    PipelineState::Stopping => Observed::Stopping,
                    _ => Observed::Fenced,
                },
                prior: wire(&p.state),
                prior_value: None,
                action: Some(Planned {
                    key,
                    priority: (7, 0),
                    action: FenceAction::StopPipeline(p.pipeline_id.clone()),
                }),
            }
        })
        .collect()
}

fn name_of_job(job: &Job) -> String {
    if job.settings.name.is_empty() {
        format!("job-{}", job.job_id)
    } else {
        job.settings.name.clone()
    }
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

/// The state a fenced resource of this kind is in.
pub fn desired_of(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Run => "TERMINATED",
        ResourceKind::Cluster => "TERMINATED",
        ResourceKind::Schedule | ResourceKind::Continuous | ResourceKind::Trigger => "PAUSED",
        ResourceKind::Pool => "min_idle=0",
        ResourceKind::Warehouse => "STOPPED",
        ResourceKind::Pipeline => "IDLE",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::plan::SiteRole;

    fn plan() -> Plan {
        Plan::from_toml(include_str!("../../../../lifeboat.toml"), "lifeboat.toml")
            .expect("the example plan")
    }

    fn inventory(v: Value) -> Inventory {
        let field = |k: &str| v.get(k).cloned().unwrap_or(json!([]));
        Inventory {
            clusters: serde_json::from_value(field("clusters")).unwrap(),
            jobs: serde_json::from_value(field("jobs")).unwrap(),
            active_runs: serde_json::from_value(field("runs")).unwrap(),
            pools: serde_json::from_value(field("pools")).unwrap(),
            warehouses: serde_json::from_value(field("warehouses")).unwrap(),
            pipelines: serde_json::from_value(field("pipelines")).unwrap(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-08T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    /// (what the inventory shows, the record before as (confirmed, stopping) of its key or
    /// none, the action planned, the record after as (confirmed, stopping), excluded?)
    #[test]
    fn each_family_is_planned_recorded_and_confirmed_as_its_state_says() {
        type Row = (
            &'static str,
            Value,
            &'static str,
            Option<&'static str>,
            Option<(bool, bool)>,
            usize,
        );
        let rows: Vec<Row> = vec![
            (
                "running cluster: terminate",
                json!({"clusters": [{"cluster_id": "c1", "cluster_name": "etl", "state": "RUNNING"}]}),
                "cluster:c1",
                Some("TerminateCluster"),
                Some((false, false)),
                0,
            ),
            (
                "terminating cluster: wait, do not act again",
                json!({"clusters": [{"cluster_id": "c1", "cluster_name": "etl", "state": "TERMINATING"}]}),
                "cluster:c1",
                None,
                Some((false, true)),
                0,
            ),
            (
                "terminated cluster never seen active: nothing recorded",
                json!({"clusters": [{"cluster_id": "c1", "cluster_name": "etl", "state": "TERMINATED"}]}),
                "cluster:c1",
                None,
                None,
                0,
            ),
            (
                "excluded by tag: skipped and counted",
                json!({"clusters": [{"cluster_id": "c1", "cluster_name": "etl", "state": "RUNNING",
                                  "custom_tags": {"lifeboat": "exclude"}}]}),
                "cluster:c1",
                None,
                None,
                1,
            ),
            (
                "unpaused schedule: pause",
                json!({"jobs": [{"job_id": 7, "settings": {"name": "nightly",
                 "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC",
                              "pause_status": "UNPAUSED"}}}]}),
                "schedule:7",
                Some("Pause"),
                Some((false, false)),
                0,
            ),
            (
                "paused schedule: fenced",
                json!({"jobs": [{"job_id": 7, "settings": {"name": "nightly",
                 "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "UTC",
                              "pause_status": "PAUSED"}}}]}),
                "schedule:7",
                None,
                None,
                0,
            ),
            (
                "active run of a plain job: cancel",
                json!({"jobs": [{"job_id": 7, "settings": {"name": "adhoc"}}],
                    "runs": [{"run_id": 70, "job_id": 7, "state": {"life_cycle_state": "RUNNING"}}]}),
                "run:70",
                Some("CancelRun"),
                Some((false, false)),
                0,
            ),
            (
                "run of a live continuous job: recorded, left to the pause",
                json!({"jobs": [{"job_id": 8, "settings": {"name": "stream",
                                  "continuous": {"pause_status": "UNPAUSED"}}}],
                    "runs": [{"run_id": 80, "job_id": 8, "state": {"life_cycle_state": "RUNNING"}}]}),
                "run:80",
                None,
                Some((false, false)),
                0,
            ),
            (
                "warm pool: drain, prior min_idle kept",
                json!({"pools": [{"instance_pool_id": "p1", "instance_pool_name": "general",
                               "min_idle_instances": 3}]}),
                "pool:p1",
                Some("DrainPool"),
                Some((false, false)),
                0,
            ),
            (
                "stopping warehouse: wait",
                json!({"warehouses": [{"id": "w1", "name": "bi", "state": "STOPPING"}]}),
                "warehouse:w1",
                None,
                Some((false, true)),
                0,
            ),
            (
                "running pipeline: stop",
                json!({"pipelines": [{"pipeline_id": "dlt1", "name": "orders", "state": "RUNNING"}]}),
                "pipeline:dlt1",
                Some("StopPipeline"),
                Some((false, false)),
                0,
            ),
        ];
        let plan = plan();
        for (name, inv, key, want_action, want_record, want_excluded) in rows {
            let mut record = FenceRecord::new(SiteRole::Primary);
            let (planned, excluded) = plan_fence(&plan, &inventory(inv), &mut record, now());
            let action = planned.iter().find(|p| p.key == key).map(|p| {
                format!("{:?}", p.action)
                    .split('(')
                    .next()
                    .unwrap_or("")
                    .to_string()
            });
            assert_eq!(action.as_deref(), want_action, "{name}");
            let after = record.resources.get(key).map(|r| (r.confirmed, r.stopping));
            assert_eq!(after, want_record, "{name}");
            assert_eq!(excluded, want_excluded, "{name}");
        }
    }

    #[test]
    fn a_resource_gone_or_fenced_since_the_last_attempt_is_confirmed_and_its_prior_kept() {
        let plan = plan();
        let mut record = FenceRecord::new(SiteRole::Primary);
        let warm = json!({"pools": [{"instance_pool_id": "p1", "instance_pool_name": "general",
                                     "min_idle_instances": 3}],
                          "clusters": [{"cluster_id": "c1", "cluster_name": "etl", "state": "RUNNING"}]});
        plan_fence(&plan, &inventory(warm), &mut record, now());
        // Next attempt: the pool drained, the cluster deleted.
        let after = json!({"pools": [{"instance_pool_id": "p1", "instance_pool_name": "general",
                                      "min_idle_instances": 0}]});
        let (planned, _) = plan_fence(&plan, &inventory(after), &mut record, now());
        assert!(planned.is_empty());
        let pool = &record.resources["pool:p1"];
        assert!(pool.confirmed && pool.prior_value == Some(3) && pool.prior == "min_idle=3");
        assert!(record.resources["cluster:c1"].confirmed);
        // And back up (a zombie primary): no longer confirmed, acted on again, prior unchanged.
        let (planned, _) = plan_fence(
            &plan,
            &inventory(json!({"pools": [{"instance_pool_id": "p1",
                "instance_pool_name": "general", "min_idle_instances": 5}]})),
            &mut record,
            now(),
        );
        assert_eq!(planned.len(), 1);
        let pool = &record.resources["pool:p1"];
        assert!(!pool.confirmed && pool.prior_value == Some(3));
    }

    #[test]
    fn the_riskiest_go_first_and_schedules_by_next_fire_time() {
        let plan = plan();
        let schedule = |id: u64, cron: &str| {
            json!({"job_id": id, "settings": {"name": format!("job{id}"),
                "schedule": {"quartz_cron_expression": cron, "timezone_id": "UTC",
                             "pause_status": "UNPAUSED"}}})
        };
        let inv = json!({
            "pipelines": [{"pipeline_id": "d", "name": "d", "state": "RUNNING"}],
            "warehouses": [{"id": "w", "name": "w", "state": "RUNNING"}],
            "pools": [{"instance_pool_id": "p", "instance_pool_name": "p", "min_idle_instances": 1}],
            "jobs": [schedule(1, "0 0 23 * * ?"), schedule(2, "0 30 10 * * ?"),
                     {"job_id": 3, "settings": {"name": "t", "trigger":
                         {"file_arrival": {"url": "s3://b/"}, "pause_status": "UNPAUSED"}}},
                     {"job_id": 4, "settings": {"name": "c", "continuous": {"pause_status": "UNPAUSED"}}},
                     {"job_id": 5, "settings": {"name": "plain"}}],
            "clusters": [{"cluster_id": "c", "cluster_name": "c", "state": "RUNNING"}],
            "runs": [{"run_id": 50, "job_id": 5, "state": {"life_cycle_state": "RUNNING"}}],
        });
        let mut record = FenceRecord::new(SiteRole::Primary);
        let (planned, _) = plan_fence(&plan, &inventory(inv), &mut record, now());
        let order: Vec<&str> = planned.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            order,
            [
                "run:50",
                "cluster:c",
                // 10:30 today fires before 23:00.
                "schedule:2",
                "schedule:1",
                "continuous:4",
                "trigger:3",
                "pool:p",
                "warehouse:w",
                "pipeline:d"
            ]
        );
    }
}
