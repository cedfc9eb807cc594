//! `[drift]`: which configuration differences between the sites block a run, which only warn,
//! which are not compared, and the region-specific values that differ by design. The comparison
//! itself is `crate::drift`'s; the plan holds the rules and the object kinds they name.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// `[drift]`: rules over the per-object comparison (`crate::drift`). A selector is a kind
/// (`job`, `cluster_policy`, `pool`, `cluster`, `warehouse`, `pipeline`, `secret_scope`,
/// `repo`, `folder`, `catalog`, `schema`) or a kind and a dotted field path in its normal form
/// (`job.tags`, `pool.node_type_id`, `job.tasks.main.libraries`); it covers everything under it.
/// Without a selector, drift blocks when a job to be activated is the object or uses it, and
/// warns otherwise; the most specific selector wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftRules {
    /// Selectors whose drift blocks, used or not (e.g. `["warehouse"]`).
    #[serde(default)]
    pub block: Vec<String>,
    /// Selectors whose drift only warns, even where a job to be activated uses it (e.g.
    /// `["job.tags", "job.email_notifications"]`).
    #[serde(default)]
    pub warn: Vec<String>,
    /// Selectors not compared at all.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Node types that differ by region: the primary's → DR's (reversed for a failback).
    #[serde(default)]
    pub node_types: BTreeMap<String, String>,
    /// Other values that differ by region, as prefixes: the primary's → DR's (bucket URLs,
    /// instance profile ARNs, paths; reversed for a failback).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Seconds a failover's drift check spends on per-object reads (ACLs, pipeline specs,
    /// grants) beyond the listings; what it does not reach comes from the scheduled
    /// snapshots' cache. 0–60, default 5.
    #[serde(default = "default_detail_seconds")]
    pub detail_seconds: u32,
}

fn default_detail_seconds() -> u32 {
    5
}

impl Default for DriftRules {
    /// No selectors, no region values, the default per-object budget (as an absent `[drift]`).
    fn default() -> Self {
        DriftRules {
            block: Vec::new(),
            warn: Vec::new(),
            ignore: Vec::new(),
            node_types: BTreeMap::new(),
            values: BTreeMap::new(),
            detail_seconds: default_detail_seconds(),
        }
    }
}

impl DriftRules {
    /// The `ignore` selectors of one kind, as field paths (`""`: the whole object).
    pub fn ignore_for(&self, kind: ObjectKind) -> Vec<String> {
        self.ignore
            .iter()
            .filter_map(|s| {
                let (k, field) = s.split_once('.').unwrap_or((s.as_str(), ""));
                (k == kind.name()).then(|| field.to_string())
            })
            .collect()
    }

    /// Checks each selector names a kind, and the maps are usable.
    pub fn validate(&self) -> Result<(), PlanError> {
        for (list, name) in [
            (&self.block, "block"),
            (&self.warn, "warn"),
            (&self.ignore, "ignore"),
        ] {
            for (i, s) in list.iter().enumerate() {
                let key = format!("drift.{name}[{i}]");
                let kind = s.split('.').next().unwrap_or_default();
                if ObjectKind::parse(kind).is_none() {
                    return Err(invalid(
                        key,
                        format!(
                            "{s:?} does not start with a kind (one of {})",
                            ObjectKind::ALL.map(|k| k.name()).join(", ")
                        ),
                    ));
                }
                if s.split('.').any(str::is_empty) || s.chars().any(char::is_control) {
                    return Err(invalid(key, format!("{s:?} has an empty path segment")));
                }
            }
        }
        for (map, name) in [(&self.node_types, "node_types"), (&self.values, "values")] {
            for (from, to) in map {
                if from.trim().is_empty() || to.trim().is_empty() {
                    return Err(invalid(
                        format!("drift.{name}.{from:?}"),
                        "both the primary's and DR's value must be given",
                    ));
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for to in map.values() {
                if !seen.insert(to) {
                    return Err(invalid(
                        format!("drift.{name}"),
                        format!("two values map to {to:?}: a failback could not map it back"),
                    ));
                }
            }
        }
        if self.detail_seconds > 60 {
            return Err(invalid(
                "drift.detail_seconds",
                "must be 0–60 (the check runs inside a 120 s Lambda)",
            ));
        }
        Ok(())
    }
}

/// The kinds of workspace object the drift check compares, as the `[drift]` selectors name
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A job (its settings, not its activation state).
    Job,
    /// A cluster policy.
    ClusterPolicy,
    /// An instance pool.
    Pool,
    /// An all-purpose cluster.
    Cluster,
    /// A SQL warehouse.
    Warehouse,
    /// A DLT / Lakeflow pipeline.
    Pipeline,
    /// A secret scope: its key names and ACL, never a value.
    SecretScope,
    /// A Git folder (repo), by path.
    Repo,
    /// A workspace folder a job's notebooks or files sit in (outside repos).
    Folder,
    /// A Unity Catalog catalog and its grants.
    Catalog,
    /// A Unity Catalog schema and its grants.
    Schema,
}

impl ObjectKind {
    /// Every kind, in report order.
    pub const ALL: [ObjectKind; 11] = [
        ObjectKind::Job,
        ObjectKind::ClusterPolicy,
        ObjectKind::Pool,
        ObjectKind::Cluster,
        ObjectKind::Warehouse,
        ObjectKind::Pipeline,
        ObjectKind::SecretScope,
        ObjectKind::Repo,
        ObjectKind::Folder,
        ObjectKind::Catalog,
        ObjectKind::Schema,
    ];

    /// The name used in reports and in the plan's `[drift]` selectors.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Job => "job",
            ObjectKind::ClusterPolicy => "cluster_policy",
            ObjectKind::Pool => "pool",
            ObjectKind::Cluster => "cluster",
            ObjectKind::Warehouse => "warehouse",
            ObjectKind::Pipeline => "pipeline",
            ObjectKind::SecretScope => "secret_scope",
            ObjectKind::Repo => "repo",
            ObjectKind::Folder => "folder",
            ObjectKind::Catalog => "catalog",
            ObjectKind::Schema => "schema",
        }
    }

    /// The kind a selector's first segment names.
    pub fn parse(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::test_support::EXAMPLE;
    use crate::plan::Plan;

    #[test]
    fn drift_rules_name_the_key_of_each_mistake() {
        let with =
            |section: &str| Plan::from_toml(&format!("{EXAMPLE}\n[drift]\n{section}\n"), "t");
        // (section, key, reason)
        let cases = [
            (
                "block = [\"jobs\"]",
                "drift.block[0]",
                "does not start with a kind",
            ),
            (
                "warn = [\"job.tags\", \"poool\"]",
                "drift.warn[1]",
                "does not start with a kind",
            ),
            (
                "ignore = [\"job..tags\"]",
                "drift.ignore[0]",
                "empty path segment",
            ),
            (
                "node_types = { \"i3.xlarge\" = \"\" }",
                "drift.node_types.\"i3.xlarge\"",
                "both",
            ),
            (
                "values = { \"s3://a/\" = \"s3://x/\", \"s3://b/\" = \"s3://x/\" }",
                "drift.values",
                "could not map it back",
            ),
            ("detail_seconds = 61", "drift.detail_seconds", "0–60"),
        ];
        for (section, want_key, why) in cases {
            match with(section) {
                Err(PlanError::Invalid { key, reason }) => {
                    assert_eq!(key, want_key, "{section}");
                    assert!(reason.contains(why), "{section}: {reason}");
                }
                other => panic!("{section}: {other:?}"),
            }
        }
        let ok = with("block = [\"warehouse\"]\nwarn = [\"job.tags\"]\nignore = [\"catalog\"]\nnode_types = { \"i3.xlarge\" = \"i3en.xlarge\" }").unwrap();
        assert_eq!(ok.drift.detail_seconds, 5);
        assert_eq!(
            ok.drift.ignore_for(ObjectKind::Catalog),
            vec![String::new()]
        );
        assert_eq!(
            ok.drift.node_types.get("i3.xlarge").map(String::as_str),
            Some("i3en.xlarge")
        );
        // A typo in a key of the section is refused by name.
        match with("blocks = []") {
            Err(e) => assert!(e.to_string().contains("blocks"), "{e}"),
            Ok(_) => panic!("a typo was accepted"),
        }
        // Without the section: the defaults.
        assert_eq!(
            Plan::from_toml(EXAMPLE, "t").unwrap().drift,
            DriftRules::default()
        );
    }
}
