//! SQL warehouses API 2.0.
//!
//! - `GET /api/2.0/sql/warehouses?page_size=&page_token=` → `{warehouses?, next_page_token?}`
//!   (all of them when `page_size` is absent), ordered by id.
//! - `GET /api/2.0/sql/warehouses/{id}`; missing → 404 RESOURCE_DOES_NOT_EXIST.
//! - `POST .../{id}/start` → `{}`: STOPPED → STARTING → RUNNING; no-op when starting/running.
//! - `POST .../{id}/stop` → `{}`: RUNNING/STARTING → STOPPING → STOPPED; no-op when stopped.
//!
//! STARTING/STOPPING last `lifecycle_delay` (uniform profile) or, under the realistic profile,
//! 60–180 s / 30–60 s of emulated time; see [`crate::state::Transition`].

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::Now;
use crate::error::{page, ApiError, ApiResult, Params};
use crate::state::{Pending, Shared, Transition, World};
use crate::timeline::EventKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WarehouseState {
    Starting,
    Running,
    Stopping,
    Stopped,
    Deleting,
    Deleted,
}

#[derive(Debug, Clone, Serialize)]
pub struct Warehouse {
    pub id: String,
    pub name: String,
    pub state: WarehouseState,
    pub cluster_size: String,
    pub min_num_clusters: u32,
    pub max_num_clusters: u32,
    pub num_clusters: u32,
    pub num_active_sessions: u32,
    pub auto_stop_mins: u32,
    pub warehouse_type: String,
    pub enable_serverless_compute: bool,
    pub enable_photon: bool,
    pub spot_instance_policy: String,
    pub channel: Value,
    pub tags: Value,
    pub health: Value,
    pub creator_name: String,
    pub jdbc_url: String,
    pub odbc_params: Value,
    #[serde(skip)]
    pub transition_at: Option<Instant>,
}

impl Warehouse {
    pub fn new(id: String, name: &str, size: &str, running: bool, serverless: bool) -> Self {
        Warehouse {
            jdbc_url: format!(
                "jdbc:spark://emulator:443/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/{id}"
            ),
            odbc_params: json!({"hostname": "emulator", "path": format!("/sql/1.0/warehouses/{id}"),
                "protocol": "https", "port": 443}),
            id,
            name: name.to_string(),
            state: if running {
                WarehouseState::Running
            } else {
                WarehouseState::Stopped
            },
            cluster_size: size.to_string(),
            min_num_clusters: 1,
            max_num_clusters: 2,
            num_clusters: u32::from(running),
            num_active_sessions: 0,
            auto_stop_mins: if serverless { 10 } else { 45 },
            warehouse_type: "PRO".into(),
            enable_serverless_compute: serverless,
            enable_photon: true,
            spot_instance_policy: "COST_OPTIMIZED".into(),
            channel: json!({"name": "CHANNEL_NAME_CURRENT"}),
            tags: json!({"custom_tags": []}),
            health: json!({"status": "HEALTHY"}),
            creator_name: "dr-admin@example.com".into(),
            transition_at: None,
        }
    }

    pub fn set_tags(&mut self, tags: &BTreeMap<String, String>) {
        let list: Vec<Value> = tags
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        self.tags = json!({ "custom_tags": list });
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Unable to find warehouse with id {id}"))
}

impl World {
    /// Starts a stopped warehouse (no-op when already starting or running).
    pub fn start_warehouse(&mut self, id: &str, now: &Now) -> ApiResult<()> {
        let wh = self.warehouses.get(id).ok_or_else(|| missing(id))?;
        if matches!(wh.state, WarehouseState::Running | WarehouseState::Starting) {
            return Ok(());
        }
        let at = self.schedule_transition(
            now,
            Pending::Warehouse(id.to_string()),
            Transition::WarehouseStart,
        );
        if let Some(wh) = self.warehouses.get_mut(id) {
            wh.state = WarehouseState::Starting;
            wh.transition_at = Some(at);
        }
        Ok(())
    }

    pub fn stop_warehouse(&mut self, id: &str, now: &Now) -> ApiResult<()> {
        let wh = self.warehouses.get(id).ok_or_else(|| missing(id))?;
        if !matches!(wh.state, WarehouseState::Running | WarehouseState::Starting) {
            return Ok(());
        }
        let at = self.schedule_transition(
            now,
            Pending::Warehouse(id.to_string()),
            Transition::WarehouseStop,
        );
        if let Some(wh) = self.warehouses.get_mut(id) {
            wh.state = WarehouseState::Stopping;
            wh.transition_at = Some(at);
        }
        Ok(())
    }

    pub(crate) fn warehouse_transition(&mut self, id: &str, at: Instant, now: &Now) {
        let Some(wh) = self.warehouses.get_mut(id) else {
            return;
        };
        if wh.transition_at != Some(at) {
            return;
        }
        wh.transition_at = None;
        let kind = match wh.state {
            WarehouseState::Starting => {
                wh.state = WarehouseState::Running;
                wh.num_clusters = wh.min_num_clusters.max(1);
                EventKind::WarehouseRunning
            }
            WarehouseState::Stopping => {
                wh.state = WarehouseState::Stopped;
                wh.num_clusters = 0;
                EventKind::WarehouseStopped
            }
            _ => return,
        };
        let name = wh.name.clone();
        self.timeline
            .record(now, kind, "warehouse", id, &name, json!({}));
    }
}

#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let size = p.int("page_size")?.filter(|s| *s > 0).map(|s| s as usize);
    let offset = page::decode_offset(p.get("page_token"), "wh")?;
    let (w, _) = emu.world();
    let total = w.warehouses.len();
    let take = size.unwrap_or(usize::MAX);
    let items: Vec<&Warehouse> = w.warehouses.values().skip(offset).take(take).collect();
    let mut out = json!({});
    if !items.is_empty() {
        out["warehouses"] = json!(items);
    }
    let end = offset.saturating_add(items.len());
    if end < total && size.is_some() {
        out["next_page_token"] = json!(page::encode_offset("wh", end));
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_wh(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (w, _) = emu.world();
    let wh = w.warehouses.get(&id).ok_or_else(|| missing(&id))?;
    Ok(Json(json!(wh)))
}

#[tracing::instrument(skip_all)]
async fn start(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (mut w, now) = emu.world();
    w.start_warehouse(&id, &now)?;
    Ok(Json(json!({})))
}

#[tracing::instrument(skip_all)]
async fn stop(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (mut w, now) = emu.world();
    w.stop_warehouse(&id, &now)?;
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/sql/warehouses", get(list))
        .route("/api/2.0/sql/warehouses/{id}", get(get_wh))
        .route("/api/2.0/sql/warehouses/{id}/start", post(start))
        .route("/api/2.0/sql/warehouses/{id}/stop", post(stop))
}
