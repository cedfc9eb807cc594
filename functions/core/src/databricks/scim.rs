//! SCIM `GET /api/2.0/preview/scim/v2/Me` → the calling identity (camelCase SCIM user). The
//! cheapest proof that a workspace accepts our credentials: validation's "simulated auth".

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{ApiError, Family, WorkspaceClient};

/// The calling identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScimUser {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub user_name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub active: bool,
}

impl WorkspaceClient {
    /// Who the client is authenticated as.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn me(&self) -> Result<ScimUser, ApiError> {
        self.get(Family::Scim, "/api/2.0/preview/scim/v2/Me", &[])
            .await
    }
}
