//! The DR plan (`lifeboat.toml`): one declarative file describing both sites and everything a
//! failover does. Parsing is strict — unknown keys, wrong types and contradictions are refused
//! before anything runs, with an error naming the key — because a half-executed plan with a
//! typo is worse than none.
//!
//! One file per section of the plan, each holding the section's types and its validation side
//! by side, so a key and its check are written and reviewed together. This module holds the
//! plan as a whole, the order its sections are checked in (the first error found is the one
//! reported), and what spans sections: directions and site roles. Every section's public items
//! are re-exported here, so callers name `plan::Site`, not the file it lives in.
//!
//! Secrets never live here: sites name a Secrets Manager secret id, resolved at run time.

mod approval;
mod dns;
mod drift;
mod managed_dr;
mod monitoring;
mod replication;
mod shutdown;
mod sites;
mod sources;
mod startup;
mod validation;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use approval::{
    Approval, Notifications, MAX_APPROVAL_TIMEOUT_SECONDS, MAX_EMAIL_APPROVERS,
    MIN_APPROVAL_TIMEOUT_SECONDS,
};
pub use dns::{
    ClientSetting, ClientSettingKind, ClusterEndpoint, Dns, RoutingControlPlan, SwitchMode,
};
pub use drift::{DriftRules, ObjectKind};
pub use managed_dr::ManagedDr;
pub use monitoring::{DeepProbes, Monitoring, STATUS_IO_API};
pub use replication::{
    BucketPair, DeltaTable, Replication, RpoBreachPolicy, TableLocations, MAX_DELTA_TABLES,
};
pub use shutdown::{ActiveRunPolicy, Shutdown};
pub use sites::{Site, SiteAuth, Sites};
pub use sources::{DataSource, DataSourceKind};
pub use startup::{ConcurrencyOverride, PoolWarmup, Startup};
pub use validation::{AclObjectType, ExpectedAcl, Validation, ValidationQuery};

/// Why a plan was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// TOML syntax, an unknown key or a wrong type.
    #[error("plan {source_name}: {message}")]
    Parse {
        /// File name or other origin.
        source_name: String,
        /// The parser's message, which names the key and shows the line.
        message: String,
    },
    /// A value that parses but cannot be right.
    #[error("plan key `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Name of the protected platform; part of lock and run ids.
    pub name: String,
    /// RTO/RPO objectives.
    pub objectives: Objectives,
    /// The two sites.
    pub sites: Sites,
    /// Health signals that may start a failover.
    #[serde(default)]
    pub monitoring: Monitoring,
    /// What to check for data freshness.
    #[serde(default)]
    pub replication: Replication,
    /// How to fence a site.
    #[serde(default)]
    pub shutdown: Shutdown,
    /// What to start at the target.
    #[serde(default)]
    pub startup: Startup,
    /// DNS record and parameters clients read. Absent (not `null`) when unset: the state
    /// machines' `IsPresent` choices read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// External data sources that must be reachable.
    #[serde(default)]
    pub data_sources: Vec<DataSource>,
    /// Proof that the target works.
    #[serde(default)]
    pub validation: Validation,
    /// Who decides, and how long they have.
    #[serde(default)]
    pub approval: Approval,
    /// Who hears about it.
    #[serde(default)]
    pub notifications: Notifications,
    /// Databricks Managed Disaster Recovery: the failover group Lifeboat fails over (and back)
    /// between fencing and start-up, and whose replication point is an RPO source. Absent (not
    /// `null`) when unset, like `dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_dr: Option<ManagedDr>,
    /// What configuration drift between the sites blocks a run, what only warns, what is not
    /// compared, and the region-specific values that differ by design.
    #[serde(default)]
    pub drift: DriftRules,
}

/// Objectives the report measures against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery time objective, minutes.
    pub rto_minutes: u32,
    /// Default recovery point objective, minutes (per bucket/table overrides allowed).
    pub rpo_minutes: u32,
    /// The trend flags a phase of a run as a regression when it took more than this many times
    /// its median over the earlier runs.
    #[serde(default = "default_regression_factor")]
    pub regression_factor: f64,
}

fn default_regression_factor() -> f64 {
    1.5
}

impl Objectives {
    /// Checks the objectives a report can measure against.
    fn validate(&self) -> Result<(), PlanError> {
        if self.rto_minutes == 0 {
            return Err(invalid("objectives.rto_minutes", "must be greater than 0"));
        }
        if !(1.0..=100.0).contains(&self.regression_factor) {
            return Err(invalid(
                "objectives.regression_factor",
                "must be 1.0–100.0 (times the phase's median)",
            ));
        }
        Ok(())
    }
}

impl Plan {
    /// Parses and validates a plan; nothing is acted on unless this succeeds.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Plan, PlanError> {
        let plan: Plan = toml::from_str(text).map_err(|e| PlanError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks contradictions and values no parser catches, section by section. Only the first
    /// error is reported, so the order is part of the behaviour: `[startup]` is checked in two
    /// steps (its pools and overrides before `[validation]`, its poll interval after `[dns]`).
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.name.trim().is_empty() || self.name.len() > 40 {
            return Err(invalid("name", "must be 1–40 characters"));
        }
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name",
                "only letters, digits, '-' and '_' are allowed",
            ));
        }
        self.objectives.validate()?;
        self.sites.validate()?;
        self.replication.validate()?;
        self.startup.validate_targets()?;
        self.validation.validate()?;
        sources::validate(&self.data_sources)?;
        if let Some(dns) = &self.dns {
            dns.validate()?;
        }
        self.startup.validate_poll()?;
        self.shutdown.validate()?;
        self.monitoring.validate()?;
        self.drift.validate()?;
        self.approval.validate()?;
        managed_dr::validate(&self.sites, self.managed_dr.as_ref())
    }

    /// A site by role.
    pub fn site(&self, role: SiteRole) -> &Site {
        match role {
            SiteRole::Primary => &self.sites.primary,
            SiteRole::Dr => &self.sites.dr,
        }
    }

    /// The site a direction fences and the one it activates.
    pub fn sites_for(&self, direction: Direction) -> (&Site, &Site) {
        match direction {
            Direction::Failover => (&self.sites.primary, &self.sites.dr),
            Direction::Failback => (&self.sites.dr, &self.sites.primary),
        }
    }

    /// Whether a resource with this name and these tags is excluded from the sweep.
    pub fn excluded(&self, name: &str, tags: &BTreeMap<String, String>) -> bool {
        self.shutdown.exclude_names.iter().any(|n| n == name)
            || self
                .shutdown
                .exclude_tags
                .iter()
                .any(|(k, v)| tags.get(k) == Some(v))
    }
}

/// Which way a run moves production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Primary → DR.
    Failover,
    /// DR → primary.
    Failback,
}

/// Names the two sites in ledger keys and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteRole {
    /// The primary workspace.
    Primary,
    /// The DR workspace.
    Dr,
}

impl Direction {
    /// (site fenced, site activated).
    pub fn roles(self) -> (SiteRole, SiteRole) {
        match self {
            Direction::Failover => (SiteRole::Primary, SiteRole::Dr),
            Direction::Failback => (SiteRole::Dr, SiteRole::Primary),
        }
    }
}

#[cfg(test)]
mod test_support {
    //! What the section tests share: the example plan, edits of it, the runner of a table of
    //! edits and what each must give, and the example and settings of the properties.

    use proptest::prelude::ProptestConfig;

    use super::{Plan, PlanError};

    /// The repository's example plan, which every edit starts from.
    pub(super) const EXAMPLE: &str = include_str!("../../../../lifeboat.toml");

    /// `(from, to)`: replace a line of the example.
    pub(super) type Edit = (&'static str, String);
    /// A case: name, edits, and the refused key with a fragment of the reason (`None`: valid).
    pub(super) type Row = (
        &'static str,
        Vec<Edit>,
        Option<(&'static str, &'static str)>,
    );

    /// The example with each `(from, to)` applied; `from` must occur exactly once.
    fn edited(edits: &[Edit]) -> String {
        let mut text = EXAMPLE.to_string();
        for (from, to) in edits {
            assert_eq!(text.matches(from).count(), 1, "{from}");
            text = text.replace(from, to);
        }
        text
    }

    /// Runs a table of edits: each row's plan is refused with its key and a reason containing
    /// its fragment, or (`None`) accepted.
    pub(super) fn check_rows(rows: Vec<Row>) {
        for (name, edits, want) in rows {
            let got = Plan::from_toml(&edited(&edits), name);
            match (want, got) {
                (None, Ok(_)) => {}
                (None, Err(e)) => panic!("{name}: refused: {e}"),
                (Some((key, reason)), Err(PlanError::Invalid { key: k, reason: r })) => {
                    assert_eq!(k, key, "{name}: {r}");
                    assert!(r.contains(reason), "{name}: {r}");
                }
                (Some(_), other) => panic!("{name}: {other:?}"),
            }
        }
    }

    /// The example, parsed.
    pub(super) fn example() -> Plan {
        Plan::from_toml(EXAMPLE, "lifeboat.toml").unwrap()
    }

    /// How the properties run: without regression files.
    pub(super) fn proptest_config() -> ProptestConfig {
        // No regression files: they would be written into the source tree.
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::EXAMPLE;
    use super::*;

    #[test]
    fn example_plan_is_valid() {
        let plan = Plan::from_toml(EXAMPLE, "lifeboat.toml").unwrap();
        assert_eq!(plan.name, "sales-platform");
        assert_eq!(plan.sites_for(Direction::Failover).1.region, "us-west-2");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let typo = EXAMPLE.replace("rpo_minutes = 15", "rpo_minuts = 15");
        let err = Plan::from_toml(&typo, "lifeboat.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rpo_minuts"), "{err}");
        let typo = EXAMPLE.replace("active_runs = \"cancel\"", "active_runs = \"cancle\"");
        let err = Plan::from_toml(&typo, "lifeboat.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cancle"), "{err}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let bad = EXAMPLE.replace("rto_minutes = 30", "rto_minutes = \"thirty\"");
        let err = Plan::from_toml(&bad, "lifeboat.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rto_minutes"), "{err}");
    }

    #[test]
    fn contradictions_are_refused_naming_the_key() {
        let same = EXAMPLE.replace("region = \"us-west-2\"", "region = \"us-east-1\"");
        match Plan::from_toml(&same, "p").unwrap_err() {
            PlanError::Invalid { key, .. } => assert_eq!(key, "sites.dr.region"),
            other => panic!("{other}"),
        }
        let both = EXAMPLE.replace(
            "expect_rows = [[\"50\"]]",
            "expect_rows = [[\"50\"]]\nexpect_min_rows = 1",
        );
        match Plan::from_toml(&both, "p").unwrap_err() {
            PlanError::Invalid { key, .. } => assert_eq!(key, "validation.queries[0]"),
            other => panic!("{other}"),
        }
        let zero = EXAMPLE.replace("max_concurrent_runs = 2", "max_concurrent_runs = 0");
        match Plan::from_toml(&zero, "p").unwrap_err() {
            PlanError::Invalid { key, .. } => {
                assert_eq!(key, "startup.concurrency[0].max_concurrent_runs")
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn no_secret_values_in_plans() {
        // Sites name secrets; a literal token field is an unknown key.
        let leak = EXAMPLE.replace(
            "auth = { type = \"pat\", secret_id = \"lifeboat/primary-token\" }",
            "auth = { type = \"pat\", token = \"abc\" }",
        );
        assert!(Plan::from_toml(&leak, "p").is_err());
    }

    #[test]
    fn exclusions_by_name_and_tag() {
        let plan = Plan::from_toml(EXAMPLE, "p").unwrap();
        let mut tags = BTreeMap::new();
        assert!(!plan.excluded("Nightly Sales ETL", &tags));
        tags.insert("lifeboat".to_string(), "exclude".to_string());
        assert!(plan.excluded("Nightly Sales ETL", &tags));
    }

    #[test]
    fn repository_plans_are_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("lifeboat.toml")];
        for entry in std::fs::read_dir(root.join("plans")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
        assert!(files.len() > 1, "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = Plan::from_toml(&text, &path.display().to_string()) {
                panic!("{e}");
            }
        }
    }

    mod properties {
        use super::*;
        use crate::plan::test_support::proptest_config;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(proptest_config())]

            #[test]
            fn from_toml_never_panics(text in any::<String>()) {
                let _ = Plan::from_toml(&text, "p");
            }

            #[test]
            fn from_toml_never_panics_on_a_spliced_example(
                insert in prop_oneof![any::<String>(), "[\\[\\]{}=\",.:#'\\\\ \\na-z0-9_-]{0,24}"],
                at in any::<prop::sample::Index>(),
            ) {
                let bounds: Vec<usize> = EXAMPLE
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(EXAMPLE.len()))
                    .collect();
                let at = bounds[at.index(bounds.len())];
                let text = format!("{}{insert}{}", &EXAMPLE[..at], &EXAMPLE[at..]);
                let _ = Plan::from_toml(&text, "p");
            }
        }
    }
}
