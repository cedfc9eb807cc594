//! A site's configuration snapshot: what must match between the sites (jobs with their
//! activations, and every object in normal form), by name. Taken by `dr-config-check` whenever the
//! site answers and kept in the ledger, so a failover with the primary gone still knows what
//! was live there.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    databricks::jobs::Activation,
    drift::{collect::Coverage, Objects},
    plan::ObjectKind,
};

/// The configuration that must match between sites, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigSnapshot {
    /// When taken.
    pub taken_at: Option<DateTime<Utc>>,
    /// Job name → (cron expression or "", task count).
    pub jobs: BTreeMap<String, (String, usize)>,
    /// Pool name → node type.
    pub pools: BTreeMap<String, String>,
    /// Warehouse name → size.
    pub warehouses: BTreeMap<String, String>,
    /// All-purpose cluster names.
    pub clusters: BTreeSet<String>,
    /// Job name → the activations it defines (schedule, continuous, trigger) and whether each
    /// is live: what the source would hand over, and what the target can take.
    #[serde(default)]
    pub activations: BTreeMap<String, Vec<(Activation, bool)>>,
    /// Every object in normal form (`crate::drift`), region values unmapped.
    #[serde(default)]
    pub objects: Objects,
    /// Kinds that could not be read, and why (not compared).
    #[serde(default)]
    pub not_compared: BTreeMap<ObjectKind, String>,
    /// How much of the per-object configuration (ACLs, pipeline specs) it holds.
    #[serde(default)]
    pub coverage: Coverage,
}

impl ConfigSnapshot {
    /// Job name → activations live (UNPAUSED) in this snapshot.
    pub fn live_activations(&self) -> impl Iterator<Item = (&String, Activation)> {
        live(&self.activations)
    }
}

/// A snapshot as read by those that need only when it was taken and what was live (the
/// activation fallback, the snapshot schedule): the per-object forms — 11 MB for 10,000 jobs —
/// are skipped while parsing, not built.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct SnapshotHead {
    /// When taken.
    #[serde(default)]
    pub taken_at: Option<DateTime<Utc>>,
    /// As [`ConfigSnapshot::activations`].
    #[serde(default)]
    pub activations: BTreeMap<String, Vec<(Activation, bool)>>,
}

impl SnapshotHead {
    /// Job name → activations live (UNPAUSED) in this snapshot.
    pub fn live_activations(&self) -> impl Iterator<Item = (&String, Activation)> {
        live(&self.activations)
    }
}

fn live(
    activations: &BTreeMap<String, Vec<(Activation, bool)>>,
) -> impl Iterator<Item = (&String, Activation)> {
    activations.iter().flat_map(|(name, list)| {
        list.iter()
            .filter(|(_, live)| *live)
            .map(move |(a, _)| (name, *a))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_reads_what_the_full_snapshot_holds_of_time_and_activations() {
        let full = ConfigSnapshot {
            taken_at: Some(Utc::now()),
            activations: [(
                "etl".to_string(),
                vec![(Activation::Schedule, true), (Activation::Trigger, false)],
            )]
            .into(),
            objects: [(
                ObjectKind::Job,
                [("etl".to_string(), serde_json::json!({"tasks": {"a": {}}}))].into(),
            )]
            .into(),
            ..Default::default()
        };
        let head: SnapshotHead =
            serde_json::from_slice(&serde_json::to_vec(&full).unwrap()).unwrap();
        assert_eq!(head.taken_at, full.taken_at);
        assert_eq!(
            head.live_activations().collect::<Vec<_>>(),
            full.live_activations().collect::<Vec<_>>()
        );
    }
}
