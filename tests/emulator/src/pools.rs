//! Instance pools API 2.0.
//!
//! - `GET instance-pools/list` → `{instance_pools: [...]}` (no pagination).
//! - `GET instance-pools/get?instance_pool_id=`; missing → 400 INVALID_PARAMETER_VALUE.
//! - `POST instance-pools/edit` → `{}`: requires `instance_pool_id, instance_pool_name,
//!   node_type_id` (which may not change); replaces `min_idle_instances, max_capacity,
//!   idle_instance_autotermination_minutes, custom_tags` (absent → defaults). `stats.idle_count`
//!   converges to `min_idle_instances` after the transition delay (`lifecycle_delay`, or 60–180 s
//!   emulated under the realistic profile; `pending_idle_count` meanwhile).

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::Now;
use crate::error::{parse_body, ApiError, ApiResult, Params};
use crate::state::{Pending, Shared, Transition, World};
use crate::timeline::EventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PoolState {
    Active,
    Stopped,
    Deleted,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct PoolStats {
    pub used_count: u32,
    pub idle_count: u32,
    pub pending_used_count: u32,
    pub pending_idle_count: u32,
}

/// An instance pool as `instance-pools/get` encodes it.
#[derive(Debug, Clone, Serialize)]
pub struct Pool {
    pub instance_pool_id: String,
    pub instance_pool_name: String,
    pub node_type_id: String,
    pub min_idle_instances: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
    pub idle_instance_autotermination_minutes: u32,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_tags: BTreeMap<String, String>,
    pub default_tags: BTreeMap<String, String>,
    pub aws_attributes: Value,
    pub preloaded_spark_versions: Vec<String>,
    pub enable_elastic_disk: bool,
    pub state: PoolState,
    pub stats: PoolStats,
    #[serde(skip)]
    pub transition_at: Option<Instant>,
}

impl Pool {
    pub fn new(id: String, name: &str, node_type: &str, min_idle: u32, max: u32) -> Self {
        let mut default_tags = BTreeMap::new();
        default_tags.insert("Vendor".into(), "Databricks".into());
        default_tags.insert(
            "DatabricksInstancePoolCreatorId".into(),
            "4242424242424242".into(),
        );
        default_tags.insert("DatabricksInstancePoolId".into(), id.clone());
        Pool {
            instance_pool_id: id,
            instance_pool_name: name.to_string(),
            node_type_id: node_type.to_string(),
            min_idle_instances: min_idle,
            max_capacity: Some(max),
            idle_instance_autotermination_minutes: 30,
            custom_tags: BTreeMap::new(),
            default_tags,
            aws_attributes: json!({"availability": "SPOT", "zone_id": "auto", "spot_bid_price_percent": 100}),
            preloaded_spark_versions: vec!["15.4.x-scala2.12".into()],
            enable_elastic_disk: true,
            state: PoolState::Active,
            stats: PoolStats {
                idle_count: min_idle,
                ..PoolStats::default()
            },
            transition_at: None,
        }
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::invalid(format!("Can't find instance pool with id: {id}"))
}

impl World {
    pub(crate) fn pool_transition(&mut self, id: &str, at: Instant) {
        if let Some(p) = self.pools.get_mut(id) {
            if p.transition_at == Some(at) {
                p.transition_at = None;
                let target = p.min_idle_instances.min(p.max_capacity.unwrap_or(u32::MAX));
                p.stats.idle_count = target;
                p.stats.pending_idle_count = 0;
            }
        }
    }

    /// Sets min idle, records the change and converges the idle count after the delay.
    pub fn set_pool_min_idle(&mut self, id: &str, min_idle: u32, now: &Now) {
        let Some(p) = self.pools.get_mut(id) else {
            return;
        };
        let from = p.min_idle_instances;
        p.min_idle_instances = min_idle;
        if from == min_idle {
            return;
        }
        p.stats.pending_idle_count = min_idle.saturating_sub(p.stats.idle_count);
        let name = p.instance_pool_name.clone();
        let at =
            self.schedule_transition(now, Pending::Pool(id.to_string()), Transition::PoolResize);
        if let Some(p) = self.pools.get_mut(id) {
            p.transition_at = Some(at);
        }
        self.timeline.record(
            now,
            EventKind::PoolMinIdleChanged,
            "pool",
            id,
            &name,
            json!({"from": from, "to": min_idle}),
        );
    }
}

#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>) -> ApiResult<Json<Value>> {
    let (w, _) = emu.world();
    let pools: Vec<&Pool> = w.pools.values().collect();
    Ok(Json(json!({ "instance_pools": pools })))
}

#[tracing::instrument(skip_all)]
async fn get_pool(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let id = p.required("instance_pool_id")?;
    let (w, _) = emu.world();
    let pool = w.pools.get(id).ok_or_else(|| missing(id))?;
    Ok(Json(json!(pool)))
}

#[derive(Deserialize)]
struct EditBody {
    instance_pool_id: Option<String>,
    instance_pool_name: Option<String>,
    node_type_id: Option<String>,
    #[serde(default)]
    min_idle_instances: Option<u32>,
    #[serde(default)]
    max_capacity: Option<u32>,
    #[serde(default)]
    idle_instance_autotermination_minutes: Option<u32>,
    #[serde(default)]
    custom_tags: Option<BTreeMap<String, String>>,
}

/// `POST /api/2.0/instance-pools/edit`.
#[tracing::instrument(skip_all)]
async fn edit(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: EditBody = parse_body(&body)?;
    let req = |v: Option<String>, f: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid(format!("Missing required field: {f}")))
    };
    let id = req(b.instance_pool_id, "instance_pool_id")?;
    let name = req(b.instance_pool_name, "instance_pool_name")?;
    let node = req(b.node_type_id, "node_type_id")?;
    let (mut w, now) = emu.world();
    let pool = w.pools.get_mut(&id).ok_or_else(|| missing(&id))?;
    if pool.node_type_id != node {
        return Err(ApiError::invalid(format!(
            "Instance pool node type cannot be changed (was {}, requested {node})",
            pool.node_type_id
        )));
    }
    let min_idle = b.min_idle_instances.unwrap_or(0);
    if let Some(max) = b.max_capacity {
        if min_idle > max {
            return Err(ApiError::invalid(
                "min_idle_instances cannot be greater than max_capacity",
            ));
        }
    }
    pool.instance_pool_name = name;
    pool.max_capacity = b.max_capacity;
    pool.idle_instance_autotermination_minutes =
        b.idle_instance_autotermination_minutes.unwrap_or(60);
    pool.custom_tags = b.custom_tags.unwrap_or_default();
    w.set_pool_min_idle(&id, min_idle, &now);
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/instance-pools/list", get(list))
        .route("/api/2.0/instance-pools/get", get(get_pool))
        .route("/api/2.0/instance-pools/edit", post(edit))
}
