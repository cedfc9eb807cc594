//! Per-job handoff: the sweep publishes each activation it has confirmed fenced (paused, read
//! back) as soon as it is, in small append-only chunks under
//! `runs/<id>/fence/<site>-handoff/`; activation at the other site lists the chunks after the
//! last one it read (`start-after`: O(new chunks), not O(workspace)) and activates those jobs
//! at once. The RTO of a 10,000-job workspace is then bounded by the source's fence, not by
//! fence + activation. The fence record stays the source of truth at the end of each attempt;
//! chunks only make confirmations visible earlier.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

/// Prefix of a site's handoff chunks for a run.
pub fn chunk_prefix(run_id: &RunId, site: SiteRole) -> String {
    let site = match site {
        SiteRole::Primary => "primary",
        SiteRole::Dr => "dr",
    };
    format!("runs/{run_id}/fence/{site}-handoff/")
}

/// Key of a new chunk: sortable by time, unique per writer.
pub fn chunk_key(
    run_id: &RunId,
    site: SiteRole,
    at: DateTime<Utc>,
    attempt: u32,
    n: u64,
) -> String {
    format!(
        "{}{}-a{attempt:04}-{n:06}.json",
        chunk_prefix(run_id, site),
        at.format("%Y%m%dT%H%M%S%.6fZ")
    )
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
        .list_after(&chunk_prefix(run_id, site), after)
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
