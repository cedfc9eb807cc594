//! Cluster policies API 2.0.
//!
//! - `GET /api/2.0/policies/clusters/list` → `{policies: [{policy_id, name, definition,
//!   description?, max_clusters_per_user?, ...}], total_count}`: every policy in one answer
//!   (not paged). `definition` is a JSON document *as a string*; callers parse it.

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{ApiError, Family, WorkspaceClient};

/// A cluster policy (the rest of its fields kept in `extra`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterPolicy {
    pub policy_id: String,
    #[serde(default)]
    pub name: String,
    /// The policy's rules, a JSON object encoded as a string.
    #[serde(default)]
    pub definition: String,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    policies: Vec<ClusterPolicy>,
}

impl WorkspaceClient {
    /// Every cluster policy.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn list_cluster_policies(&self) -> Result<Vec<ClusterPolicy>, ApiError> {
        let r: ListResponse = self
            .get(Family::Other, "/api/2.0/policies/clusters/list", &[])
            .await?;
        Ok(r.policies)
    }
}
