//! Per-job handoff: the sweep publishes each activation it has confirmed fenced (paused, read
//! back) as soon as it is, in small append-only chunks under
//! `runs/<id>/fence/<site>-handoff/`; activation at the other site lists the chunks after the
//! last one it read (`start-after`: O(new chunks), not O(workspace)) and activates those jobs
//! at once. The RTO of a 10,000-job workspace is then bounded by the source's fence, not by
//! fence + activation. The fence record stays the source of truth at the end of each attempt;
//! chunks only make confirmations visible earlier.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ledger::keys;
use crate::{
    databricks::jobs::Activation,
    ledger::{Ledger, LedgerError},
    plan::SiteRole,
    run::RunId,
};
use std::collections::BTreeMap;

use super::gate::Gate;

/// One activation confirmed fenced at the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandoffEntry {
    /// Fence record key (`schedule:<job id>`, ...).
    pub key: String,
    /// Job name (how the target finds its twin).
    pub name: String,
    /// Which activation.
    pub activation: Activation,
    /// When the read-back confirmed it paused.
    pub confirmed_at: DateTime<Utc>,
}

/// One chunk object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HandoffChunk {
    /// Entries, in confirmation order.
    pub entries: Vec<HandoffEntry>,
}

/// Reads the chunks written after `after` (a chunk key), in order; returns the entries and the
/// last key read.
pub async fn read_since(
    ledger: &Ledger,
    run_id: &RunId,
    site: SiteRole,
    after: Option<&str>,
) -> Result<(Vec<HandoffEntry>, Option<String>), LedgerError> {
    let keys = ledger
        .list_after(&keys::handoff_prefix(run_id, site), after)
        .await?;
    let mut entries = Vec::new();
    let mut last = after.map(str::to_string);
    for key in keys {
        if let Some(chunk) = ledger.get::<HandoffChunk>(&key).await? {
            entries.extend(chunk.value.entries);
        }
        last = Some(key);
    }
    Ok((entries, last))
}

/// What became of one activation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum ActivationOutcome {
    /// Unpaused by this run.
    Activated,
    /// Already live at the target (a resumed invocation, or someone else): no write sent.
    AlreadyLive,
    /// The target has no job of that name: left behind.
    Missing,
    /// The target's job lacks that schedule/trigger/continuous setting: left behind.
    NotDefined,
    /// The target refused the write: left behind, with its error.
    Failed(String),
}

impl ActivationOutcome {
    /// Whether the activation is live at the target.
    pub fn live(&self) -> bool {
        matches!(self, Self::Activated | Self::AlreadyLive)
    }
}

/// One activation's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationEntry {
    /// Job name.
    pub name: String,
    /// Which activation.
    pub activation: Activation,
    /// Outcome.
    #[serde(flatten)]
    pub outcome: ActivationOutcome,
    /// When it was confirmed fenced at the source (per-job handoff), if it went that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fenced_at: Option<DateTime<Utc>>,
    /// When this outcome was recorded.
    pub at: DateTime<Utc>,
}

/// `runs/<id>/activation.json` (or `activation-restore.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActivationRecord {
    /// By `<activation>:<job name>`.
    pub entries: BTreeMap<String, ActivationEntry>,
    /// Last handoff chunk read.
    #[serde(default)]
    pub handoff_cursor: Option<String>,
    /// One-time runs started (job name → run id).
    #[serde(default)]
    pub runs: BTreeMap<String, u64>,
    /// Whether everything was handled.
    #[serde(default)]
    pub complete: bool,
}

/// Output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivationOutput {
    /// Every activation handled and the whole gate open: the state machine goes on.
    pub activated: bool,
    /// Not yet (the state machine waits and calls again).
    pub waiting: bool,
    /// The whole-site gate's verdict.
    pub gate: Gate,
    /// Activations unpaused by this run (all invocations).
    pub unpaused: usize,
    /// Already live at the target.
    #[serde(default)]
    pub already_live: usize,
    /// Activations not yet handled.
    #[serde(default)]
    pub pending: usize,
    /// Named failures: live at the source, not live at the target.
    pub missing: Vec<String>,
    /// Per-job handoff gap (fenced at the source → live at the target), ms: (median, p99).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_gap_ms: Option<(u64, u64)>,
    /// One line for the report.
    pub summary: String,
    /// One-time runs started at the target (job name → run id), idempotently.
    #[serde(default)]
    pub runs: BTreeMap<String, u64>,
}
