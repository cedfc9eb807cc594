//! SQL warehouses API 2.0.
//!
//! - `GET /api/2.0/sql/warehouses?page_size&page_token` → `{warehouses[], next_page_token?}`.
//! - `GET /api/2.0/sql/warehouses/{id}`; `POST .../{id}/start` and `.../{id}/stop` → `{}`
//!   (asynchronous: STARTING → RUNNING, STOPPING → STOPPED).

use futures::{stream::BoxStream, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use super::{id_newtype, paginate, ApiError, Family, WorkspaceClient};

id_newtype!(
    /// A SQL warehouse id.
    WarehouseId(String)
);

/// Warehouse state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WarehouseState {
    Starting,
    Running,
    Stopping,
    Stopped,
    Deleting,
    Deleted,
    #[serde(other)]
    Other,
}

impl WarehouseState {
    /// Running or about to run.
    pub fn is_active(self) -> bool {
        matches!(self, WarehouseState::Starting | WarehouseState::Running)
    }
}

/// A SQL warehouse.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: WarehouseId,
    #[serde(default)]
    pub name: String,
    pub state: WarehouseState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_size: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    warehouses: Vec<Warehouse>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl WorkspaceClient {
    /// Streams every warehouse.
    pub fn list_warehouses(&self) -> BoxStream<'static, Result<Warehouse, ApiError>> {
        let client = self.clone();
        paginate(move |token| {
            let client = client.clone();
            let mut query = vec![("page_size", "100".to_string())];
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            async move {
                let r: ListResponse = client
                    .get(Family::Warehouses, "/api/2.0/sql/warehouses", &query)
                    .await?;
                Ok((r.warehouses, r.next_page_token))
            }
        })
    }

    /// Collects [`WorkspaceClient::list_warehouses`].
    pub async fn all_warehouses(&self) -> Result<Vec<Warehouse>, ApiError> {
        self.list_warehouses().try_collect().await
    }

    /// One warehouse.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_warehouse(&self, id: &WarehouseId) -> Result<Warehouse, ApiError> {
        self.get(
            Family::Warehouses,
            &format!("/api/2.0/sql/warehouses/{id}"),
            &[],
        )
        .await
    }

    /// Starts a warehouse.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn start_warehouse(&self, id: &WarehouseId) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .post(
                Family::Warehouses,
                &format!("/api/2.0/sql/warehouses/{id}/start"),
                json!({}),
            )
            .await?;
        Ok(())
    }

    /// Stops a warehouse.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn stop_warehouse(&self, id: &WarehouseId) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .post(
                Family::Warehouses,
                &format!("/api/2.0/sql/warehouses/{id}/stop"),
                json!({}),
            )
            .await?;
        Ok(())
    }
}
