//! Instance pools API 2.0.
//!
//! - `GET /api/2.0/instance-pools/list` → `{instance_pools[]}`: no pagination.
//! - `GET /api/2.0/instance-pools/get?instance_pool_id=`.
//! - `POST /api/2.0/instance-pools/edit` replaces the editable fields: the client reads the pool
//!   first and resends all of them, changing only what the caller asked for.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use super::{id_newtype, ApiError, Family, Tags, WorkspaceClient};

id_newtype!(
    /// An instance pool id.
    PoolId(String)
);

/// Pool state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PoolState {
    Active,
    Stopped,
    Deleted,
    #[serde(other)]
    Other,
}

/// An instance pool (fields Lifeboat reads or must resend on edit).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstancePool {
    pub instance_pool_id: PoolId,
    pub instance_pool_name: String,
    #[serde(default)]
    pub node_type_id: String,
    #[serde(default)]
    pub min_idle_instances: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_instance_autotermination_minutes: Option<u32>,
    #[serde(default)]
    pub custom_tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PoolState>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    instance_pools: Vec<InstancePool>,
}

impl WorkspaceClient {
    /// Every pool (the API does not paginate this list).
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn list_pools(&self) -> Result<Vec<InstancePool>, ApiError> {
        let r: ListResponse = self
            .get(Family::Pools, "/api/2.0/instance-pools/list", &[])
            .await?;
        Ok(r.instance_pools)
    }

    /// One pool.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_pool(&self, id: &PoolId) -> Result<InstancePool, ApiError> {
        self.get(
            Family::Pools,
            "/api/2.0/instance-pools/get",
            &[("instance_pool_id", id.0.clone())],
        )
        .await
    }

    /// Sends `edit` with all editable fields of `pool` (the API replaces them).
    #[instrument(skip(self, pool), fields(host = %self.host(), pool = %pool.instance_pool_id))]
    pub async fn edit_pool(&self, pool: &InstancePool) -> Result<(), ApiError> {
        let mut body = json!({
            "instance_pool_id": pool.instance_pool_id,
            "instance_pool_name": pool.instance_pool_name,
            "node_type_id": pool.node_type_id,
            "min_idle_instances": pool.min_idle_instances,
            "custom_tags": pool.custom_tags,
        });
        if let Some(m) = pool.max_capacity {
            body["max_capacity"] = json!(m);
        }
        if let Some(m) = pool.idle_instance_autotermination_minutes {
            body["idle_instance_autotermination_minutes"] = json!(m);
        }
        let _: serde_json::Value = self
            .post(Family::Pools, "/api/2.0/instance-pools/edit", body)
            .await?;
        Ok(())
    }

    /// Reads the pool, sets `min_idle_instances`, and edits it back with everything else intact.
    /// Returns the previous value.
    pub async fn set_pool_min_idle(&self, id: &PoolId, min_idle: u32) -> Result<u32, ApiError> {
        let mut pool = self.get_pool(id).await?;
        let previous = pool.min_idle_instances;
        if previous != min_idle {
            pool.min_idle_instances = min_idle;
            self.edit_pool(&pool).await?;
        }
        Ok(previous)
    }
}
