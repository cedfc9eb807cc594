//! `[[data_sources]]`: external systems the target site depends on (a TCP service, an HTTP
//! endpoint, an S3 bucket), probed during a run; a critical one that is unreachable stops the
//! failover.

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// An external data source to probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// Label.
    pub name: String,
    /// What kind of probe.
    pub kind: DataSourceKind,
    /// `host:port` for tcp, URL for http, bucket name for s3.
    pub target: String,
    /// Whether an unreachable source stops the failover.
    #[serde(default = "yes")]
    pub critical: bool,
}

fn yes() -> bool {
    true
}

/// Probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSourceKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET answering 2xx/3xx.
    Http,
    /// S3 HeadBucket.
    S3,
}

/// Checks each source's target fits its probe (a tcp probe needs `host:port`).
pub(super) fn validate(data_sources: &[DataSource]) -> Result<(), PlanError> {
    for (i, d) in data_sources.iter().enumerate() {
        if d.kind == DataSourceKind::Tcp && !d.target.contains(':') {
            return Err(invalid(
                format!("data_sources[{i}].target"),
                "tcp needs host:port",
            ));
        }
    }
    Ok(())
}
