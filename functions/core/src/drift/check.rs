//! The drift check's report as a run keeps it (`$.results.config`): what is missing or differs
//! at the target, what blocks, what would be left behind — read by the approval evidence and
//! the run state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::collect::Coverage;

/// Entries shown per list in the step's output; the full comparison is in the ledger (the
/// state machine's 256 KB payload limit: 10,000 differing jobs would not fit).
pub const SHOWN: usize = 50;

/// The drift report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigCheckOutput {
    /// `live`, `snapshot` or `none`.
    pub compared_with: String,
    /// Objects at the source missing at the target (the first [`SHOWN`]).
    pub missing_at_target: Vec<String>,
    /// Fields that differ, each named (the first [`SHOWN`]).
    pub differing: Vec<String>,
    /// What blocks the run (the first [`SHOWN`]): drift in what a job to be activated uses,
    /// the plan's `drift.block`, objects the plan starts or validates missing at the target.
    pub blocking: Vec<String>,
    /// Activations live at the source the target cannot take over (none left behind): each is
    /// shown before approval and counted against the run's verdict.
    #[serde(default)]
    pub left_behind: Vec<String>,
    /// Age of the source snapshot compared with, seconds (0 when live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_age_seconds: Option<i64>,
    /// Counts and coverage of the per-object comparison.
    #[serde(default)]
    pub summary: DriftSummary,
    /// Why the live read of the source failed (then a snapshot is compared, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_error: Option<String>,
    /// Blocking drift an operator accepted when starting the run: who, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<String>,
    /// No blocking issue.
    pub ok: bool,
}

/// Counts of the whole comparison (the lists above are cut at [`SHOWN`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriftSummary {
    /// Objects missing at the target.
    pub missing: usize,
    /// Differing fields.
    pub differing: usize,
    /// Blocking items.
    pub blocking: usize,
    /// Per kind: (items, blocking).
    pub by_kind: BTreeMap<String, (usize, usize)>,
    /// Per-object reads (ACLs, pipeline specs) known at the source and at the target.
    pub source_coverage: Coverage,
    /// At the target.
    pub target_coverage: Coverage,
    /// Kinds not compared, and why.
    pub not_compared: Vec<String>,
    /// Activations the target cannot take over (the list above is cut at [`SHOWN`]).
    #[serde(default)]
    pub left_behind: usize,
    /// Ledger key of every item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
}
