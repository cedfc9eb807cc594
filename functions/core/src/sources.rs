//! The declared external data sources as a run measured them (the seed's failover step 4):
//! one [`SourceStatus`] per source, read by the approval evidence and the run state.

use serde::{Deserialize, Serialize};

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// Label.
    pub name: String,
    /// Reached.
    pub reachable: bool,
    /// Whether it blocks the failover when unreachable.
    pub critical: bool,
    /// Latency, ms.
    pub latency_ms: u64,
    /// Detail.
    pub detail: String,
}

/// All probes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSourcesOutput {
    /// Per source.
    pub sources: Vec<SourceStatus>,
    /// No critical source is unreachable.
    pub all_critical_ok: bool,
}
