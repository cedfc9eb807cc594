//! Workspace API 2.0: `GET /api/2.0/workspace/list?path=` →
//! `{objects?: [{object_type: NOTEBOOK|DIRECTORY|REPO|FILE|LIBRARY, path, object_id,
//! language?}]}` — the direct children of a directory; a missing path answers 404
//! `RESOURCE_DOES_NOT_EXIST`.

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{ApiError, Family, WorkspaceClient};

/// One workspace object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceObject {
    #[serde(default)]
    pub object_type: String,
    pub path: String,
    #[serde(default)]
    pub object_id: Option<i64>,
    #[serde(default)]
    pub language: Option<String>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    objects: Vec<WorkspaceObject>,
}

impl WorkspaceClient {
    /// The direct children of `path`.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn list_workspace(&self, path: &str) -> Result<Vec<WorkspaceObject>, ApiError> {
        let r: ListResponse = self
            .get(
                Family::Other,
                "/api/2.0/workspace/list",
                &[("path", path.to_string())],
            )
            .await?;
        Ok(r.objects)
    }
}
