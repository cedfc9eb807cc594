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
