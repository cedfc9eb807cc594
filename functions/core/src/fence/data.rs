//! The data fence's record: which replica buckets deny replication from the old source, what
//! their policies were before, and which source rules were paused — written before any bucket
//! is touched, read by the activation gate (an override needs it confirmed) and by whoever
//! lifts it (failback, abort-and-restore). The step that sets it is `steps::data_fence`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What was done to the source's replication rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum SourceRules {
    /// These enabled rules towards the replica were disabled (ids).
    Disabled(Vec<String>),
    /// No enabled rule pointed at the replica.
    NoneEnabled,
    /// The source bucket did not answer: the replica's deny alone fences.
    Unreachable(String),
}

/// One bucket pair's data fence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketFence {
    /// Pair name in the plan.
    pub name: String,
    /// Replica bucket (holds the deny).
    pub replica: String,
    /// Source bucket.
    pub source: String,
    /// The replica's policy before the fence (`None`: it had none).
    pub prior_policy: Option<String>,
    /// The deny statement was read back from the replica's policy.
    pub confirmed: bool,
    /// What became of the source's rules.
    pub source_rules: SourceRules,
    /// Last error on the replica side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `runs/<id>/data-fence.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFenceRecord {
    /// When first set.
    pub set_at: DateTime<Utc>,
    /// When confirmed on every replica (`None`: not yet).
    #[serde(default)]
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Per bucket pair.
    pub buckets: Vec<BucketFence>,
    /// When lifted.
    #[serde(default)]
    pub removed_at: Option<DateTime<Utc>>,
}

impl DataFenceRecord {
    /// Every replica holds the deny (and there is at least one replica to fence).
    pub fn confirmed(&self) -> bool {
        !self.buckets.is_empty() && self.buckets.iter().all(|b| b.confirmed)
    }
}
