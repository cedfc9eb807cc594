//! Pure: one site's snapshot against the other's — what a run would activate, every
//! difference classified, and what the plan starts missing at the target. Used by the drift
//! check of a run (live snapshots) and the readiness evaluation (stored ones).

use std::collections::{BTreeMap, BTreeSet};

use super::{DriftItem, ObjectRef};
use crate::plan::ObjectKind;
use crate::{
    drift::snapshot::ConfigSnapshot,
    plan::{Direction, Plan},
};

/// Pure: the jobs a run activates at the target — live at the source (the plan's exclusions
/// already left out) and what the start-up runs.
pub fn to_activate(plan: &Plan, source: &ConfigSnapshot) -> BTreeSet<String> {
    source
        .live_activations()
        .map(|(name, _)| name.clone())
        .chain(plan.startup.run_once.iter().cloned())
        .chain(plan.startup.concurrency.iter().map(|c| c.job.clone()))
        .collect()
}

/// Pure: what the plan itself sets at a site, so that it differs between them by design: the
/// start-up's `max_concurrent_runs` of its jobs (set at the target of a failover, left there by
/// a failback).
pub fn set_by_plan(plan: &Plan) -> BTreeMap<ObjectRef, Vec<String>> {
    plan.startup
        .concurrency
        .iter()
        .map(|c| {
            (
                ObjectRef::new(ObjectKind::Job, c.job.clone()),
                vec!["max_concurrent_runs".to_string()],
            )
        })
        .collect()
}

/// Pure: the per-object comparison of `direction`'s source with its target.
pub fn drift_items(
    plan: &Plan,
    direction: Direction,
    source: &ConfigSnapshot,
    target: &ConfigSnapshot,
) -> Vec<DriftItem> {
    let region = super::normalize::RegionMap::for_direction(&plan.drift, direction);
    let mapped = crate::drift::remap(&source.objects, &region);
    let skip: BTreeSet<ObjectKind> = source
        .not_compared
        .keys()
        .chain(target.not_compared.keys())
        .copied()
        .collect();
    crate::drift::compare(
        &mapped,
        &target.objects,
        &to_activate(plan, source),
        &plan.drift,
        &skip,
        &set_by_plan(plan),
    )
}

/// Pure: the comparison as lines (missing at the target, differing, blocking), and the
/// counts. Objects the plan starts or validates missing at the target always block.
pub fn compare(
    plan: &Plan,
    direction: Direction,
    source: Option<&ConfigSnapshot>,
    target: &ConfigSnapshot,
) -> (Vec<DriftItem>, Vec<String>) {
    let items = source
        .map(|s| drift_items(plan, direction, s, target))
        .unwrap_or_default();
    let mut blocking = Vec::new();
    let st = &plan.startup;
    for p in &st.pools {
        if !target.pools.contains_key(&p.name) {
            blocking.push(format!(
                "startup.pools: pool {} does not exist at the target",
                p.name
            ));
        }
    }
    for c in &st.clusters {
        if !target.clusters.contains(c) {
            blocking.push(format!(
                "startup.clusters: cluster {c} does not exist at the target"
            ));
        }
    }
    for w in st.warehouses.iter().chain(plan.validation.warehouse.iter()) {
        if !target.warehouses.contains_key(w) {
            blocking.push(format!("warehouse {w} does not exist at the target"));
        }
    }
    for j in st
        .run_once
        .iter()
        .chain(st.concurrency.iter().map(|c| &c.job))
    {
        if !target.jobs.contains_key(j) {
            blocking.push(format!("startup: job {j} does not exist at the target"));
        }
    }
    blocking.dedup();
    (items, blocking)
}
