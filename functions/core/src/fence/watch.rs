//! The fence watch: a fence outlives the run that began it. When the run's bounded sweep loop
//! gives up (the primary unreachable), a small state machine (`statemachine/fence-watch.asl.json`)
//! keeps sweeping at the plan's interval until every resource of the old site is confirmed
//! fenced — days or weeks later if the primary returns with live schedules — and records when;
//! it stops when a failback begins (which restores that site instead).
//!
//! A Standard execution fails at 25,000 history events (about 2,700 sweeps, a day at 30 s), so
//! the watch never runs that long: after [`WatchSettings::max_sweeps`] sweeps (the deployment's
//! `FENCE_WATCH_MAX_SWEEPS`, see [`crate::kernel::config::sweeps_per_execution`]) it starts its next
//! generation (the same machine, named `<watch>-g<n>`, with its state) and ends cleanly — the
//! continue-as-new AWS recommends. The record names the current execution and keeps the chain.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `runs/<id>/fence-watch.json`: the fence addendum of a run whose fence outlived it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FenceWatchRecord {
    /// When the watch was started.
    pub started_at: DateTime<Utc>,
    /// Its execution.
    pub execution_arn: Option<String>,
    /// When every resource of the old site was confirmed fenced.
    #[serde(default)]
    pub confirmed_at: Option<DateTime<Utc>>,
    /// When it stopped without confirmation (a failback began), and why.
    #[serde(default)]
    pub stopped: Option<(DateTime<Utc>, String)>,
    /// Sweep attempts by the watch.
    #[serde(default)]
    pub attempts: u32,
    /// The current execution's generation (0: the first).
    #[serde(default)]
    pub generation: u32,
    /// The executions of the chain, oldest first (the last [`CHAIN_KEPT`]).
    #[serde(default)]
    pub executions: Vec<String>,
}

/// Executions of the chain the record keeps (one per `max_sweeps` sweeps: a week at the
/// defaults is about 40).
pub const CHAIN_KEPT: usize = 100;

impl FenceWatchRecord {
    /// The record of a watch just started.
    pub fn started(execution_arn: String) -> Self {
        FenceWatchRecord {
            started_at: Utc::now(),
            execution_arn: Some(execution_arn.clone()),
            confirmed_at: None,
            stopped: None,
            attempts: 0,
            generation: 0,
            executions: vec![execution_arn],
        }
    }

    /// Records the next generation: it is the current execution now.
    pub fn continued(&mut self, execution_arn: String, generation: u32) {
        if self.executions.last() != Some(&execution_arn) {
            self.executions.push(execution_arn.clone());
        }
        if self.executions.len() > CHAIN_KEPT {
            let drop = self.executions.len() - CHAIN_KEPT;
            self.executions.drain(..drop);
        }
        self.execution_arn = Some(execution_arn);
        self.generation = self.generation.max(generation);
    }
}

/// The watch's own state, carried from one execution to the next (`$.watch`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchSettings {
    /// This execution's generation.
    pub generation: u32,
    /// Sweeps after which the watch continues as a new execution.
    pub max_sweeps: u32,
    /// Sweeps made by this execution.
    pub sweeps: u32,
    /// The execution name of generation 0; generation `n` is `<name>-g<n>`.
    pub name: String,
}

/// Pure: the fence watch's execution name — at most 72 characters, so that a generation's
/// `-g<n>` suffix keeps it within the 80 of an execution name.
pub fn fence_watch_name(run: &crate::run::RunId) -> String {
    let name = format!("{run}-fence-watch");
    if name.len() <= 72 {
        return name;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(run.0.as_bytes());
    let head: String = run.0.chars().take(32).collect();
    format!("{head}-{}-fence-watch", &hex::encode(digest)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunId;

    #[test]
    fn watch_names_fit_the_execution_name_limit_and_stay_distinct() {
        let short = RunId("failover-1".into());
        assert_eq!(fence_watch_name(&short), "failover-1-fence-watch");
        let a = RunId("a".repeat(80));
        let b = RunId(format!("{}b", "a".repeat(79)));
        for id in [&a, &b] {
            let name = fence_watch_name(id);
            assert!(name.len() <= 72, "{name}");
            assert!(format!("{name}-g{}", u32::MAX).len() <= 80);
        }
        assert_ne!(fence_watch_name(&a), fence_watch_name(&b));
    }

    #[test]
    fn the_chain_names_the_current_execution_and_stays_bounded() {
        let mut r = FenceWatchRecord::started("arn:g0".into());
        for g in 1..=150u32 {
            r.continued(format!("arn:g{g}"), g);
            r.continued(format!("arn:g{g}"), g); // a retried record: no duplicate
        }
        assert_eq!(r.execution_arn.as_deref(), Some("arn:g150"));
        assert_eq!(r.generation, 150);
        assert_eq!(r.executions.len(), CHAIN_KEPT);
        assert_eq!(r.executions.last().map(String::as_str), Some("arn:g150"));
    }
}
