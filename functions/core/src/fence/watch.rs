//! The fence watch: a fence outlives the run that began it. When the run's bounded sweep loop
//! gives up (the primary unreachable), a small state machine (`statemachine/fence-watch.asl.json`)
//! keeps sweeping at the plan's interval until every resource of the old site is confirmed
//! fenced — hours later if the primary returns with live schedules — and records when; it stops
//! when a failback begins (which restores that site instead).

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
}

/// Pure: the fence watch's execution name (an execution name is at most 80 characters).
pub fn fence_watch_name(run: &crate::run::RunId) -> String {
    let name = format!("{run}-fence-watch");
    if name.len() <= 80 {
        return name;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(run.0.as_bytes());
    let head: String = run.0.chars().take(40).collect();
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
            assert!(fence_watch_name(id).len() <= 80, "{}", fence_watch_name(id));
        }
        assert_ne!(fence_watch_name(&a), fence_watch_name(&b));
    }
}
