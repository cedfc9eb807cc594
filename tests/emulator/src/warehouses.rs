//! SQL warehouses API 2.0.
//!
//! - `GET /api/2.0/sql/warehouses?page_size=&page_token=` → `{warehouses?, next_page_token?}`
//!   (all of them when `page_size` is absent), ordered by id.
//! - `GET /api/2.0/sql/warehouses/{id}`; missing → 404 RESOURCE_DOES_NOT_EXIST.
//! - `POST .../{id}/start` → `{}`: STOPPED → STARTING → RUNNING; no-op when starting/running.
//! - `POST .../{id}/stop` → `{}`: RUNNING/STARTING → STOPPING → STOPPED; no-op when stopped.
//! - `POST .../{id}/edit {name?, cluster_size?, auto_stop_mins?, min_num_clusters?,
//!   max_num_clusters?, enable_serverless_compute?, enable_photon?, spot_instance_policy?,
//!   warehouse_type?, tags?: {custom_tags: [{key, value}]}, channel?}` → `{}`: sets the given
//!   fields, keeps the others and the state (a running warehouse's `num_clusters` is clamped
//!   into the new range). Errors (400 INVALID_PARAMETER_VALUE, nothing changed): an unknown
//!   `cluster_size` (2X-Small … 5X-Large), `auto_stop_mins` not 0 or ≥ 10 (the documented rule,
//!   serverless included), `min_num_clusters` < 1 or > min(`max_num_clusters`, 30),
//!   `max_num_clusters` > 40, an unknown `spot_instance_policy` (COST_OPTIMIZED |
//!   RELIABILITY_OPTIMIZED | POLICY_UNSPECIFIED) or `warehouse_type` (CLASSIC | PRO), serverless
//!   on a CLASSIC warehouse, malformed `tags`, an empty name.
//!
//! List and get carry every field: `id, name, state, cluster_size, min_num_clusters,
//! max_num_clusters, num_clusters, num_active_sessions, auto_stop_mins, warehouse_type,
//! enable_serverless_compute, enable_photon, spot_instance_policy, channel, tags {custom_tags},
//! health, creator_name, jdbc_url, odbc_params`.
//!
//! STARTING/STOPPING last `lifecycle_delay` (uniform profile) or, under the realistic profile,
//! 60–180 s / 30–60 s of emulated time; see [`crate::state::Transition`].

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::Now;
use crate::error::{page, parse_body, ApiError, ApiResult, Params};
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

/// The t-shirt sizes of a SQL warehouse.
pub const CLUSTER_SIZES: &[&str] = &[
    "2X-Small", "X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large",
    "4X-Large", "5X-Large",
];

#[derive(Deserialize)]
struct EditBody {
    name: Option<String>,
    cluster_size: Option<String>,
    auto_stop_mins: Option<i64>,
    min_num_clusters: Option<i64>,
    max_num_clusters: Option<i64>,
    enable_serverless_compute: Option<bool>,
    enable_photon: Option<bool>,
    spot_instance_policy: Option<String>,
    warehouse_type: Option<String>,
    tags: Option<Value>,
    channel: Option<Value>,
}

/// Checks `{custom_tags: [{key, value}]}`.
fn check_tags(tags: &Value) -> ApiResult<()> {
    let bad = || ApiError::invalid(format!("Invalid tags: {tags}"));
    let obj = tags.as_object().ok_or_else(bad)?;
    match obj.get("custom_tags") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(list)) => {
            let ok = list.iter().all(|t| {
                t.get("key")
                    .and_then(Value::as_str)
                    .is_some_and(|k| !k.is_empty())
                    && t.get("value").is_none_or(Value::is_string)
            });
            if ok {
                Ok(())
            } else {
                Err(bad())
            }
        }
        Some(_) => Err(bad()),
    }
}

fn to_u32(v: i64, field: &str) -> ApiResult<u32> {
    u32::try_from(v).map_err(|_| ApiError::invalid(format!("Invalid {field}: {v}")))
}

/// `POST /api/2.0/sql/warehouses/{id}/edit` (see the module doc).
#[tracing::instrument(skip_all)]
async fn edit(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: EditBody = parse_body(&body)?;
    if let Some(n) = &b.name {
        if n.trim().is_empty() || n.chars().count() > 100 {
            return Err(ApiError::invalid(
                "Warehouse name must be between 1 and 100 characters",
            ));
        }
    }
    if let Some(size) = &b.cluster_size {
        if !CLUSTER_SIZES.contains(&size.as_str()) {
            return Err(ApiError::invalid(format!(
                "Invalid cluster_size: {size}; must be one of {}",
                CLUSTER_SIZES.join(", ")
            )));
        }
    }
    let auto_stop = match b.auto_stop_mins {
        Some(m) if m != 0 && m < 10 => {
            return Err(ApiError::invalid(format!(
                "Invalid auto_stop_mins: {m}; must be 0 or at least 10"
            )))
        }
        Some(m) => Some(to_u32(m, "auto_stop_mins")?),
        None => None,
    };
    let spot = match b.spot_instance_policy.as_deref() {
        None => None,
        Some(p @ ("COST_OPTIMIZED" | "RELIABILITY_OPTIMIZED" | "POLICY_UNSPECIFIED")) => {
            Some(p.to_string())
        }
        Some(p) => {
            return Err(ApiError::invalid(format!(
                "Invalid spot_instance_policy: {p}"
            )))
        }
    };
    let wtype = match b.warehouse_type.as_deref() {
        None => None,
        Some(t @ ("CLASSIC" | "PRO")) => Some(t.to_string()),
        Some(t) => return Err(ApiError::invalid(format!("Invalid warehouse_type: {t}"))),
    };
    if let Some(t) = &b.tags {
        check_tags(t)?;
    }
    let (mut w, _) = emu.world();
    let wh = w.warehouses.get_mut(&id).ok_or_else(|| missing(&id))?;
    let min = match b.min_num_clusters {
        Some(m) => to_u32(m, "min_num_clusters")?,
        None => wh.min_num_clusters,
    };
    let max = match b.max_num_clusters {
        Some(m) => to_u32(m, "max_num_clusters")?,
        None => wh.max_num_clusters,
    };
    if min < 1 || min > max || min > 30 {
        return Err(ApiError::invalid(format!(
            "Invalid min_num_clusters: {min}; must be at least 1 and at most min(max_num_clusters ({max}), 30)"
        )));
    }
    if max > 40 {
        return Err(ApiError::invalid(format!(
            "Invalid max_num_clusters: {max}; must be at most 40"
        )));
    }
    let serverless = b
        .enable_serverless_compute
        .unwrap_or(wh.enable_serverless_compute);
    let new_type = wtype.clone().unwrap_or_else(|| wh.warehouse_type.clone());
    if serverless && new_type == "CLASSIC" {
        return Err(ApiError::invalid(
            "Serverless compute requires warehouse_type PRO",
        ));
    }
    if let Some(n) = b.name {
        wh.name = n;
    }
    if let Some(size) = b.cluster_size {
        wh.cluster_size = size;
    }
    if let Some(m) = auto_stop {
        wh.auto_stop_mins = m;
    }
    wh.min_num_clusters = min;
    wh.max_num_clusters = max;
    if wh.state == WarehouseState::Running {
        wh.num_clusters = wh.num_clusters.clamp(min, max);
    }
    wh.enable_serverless_compute = serverless;
    wh.warehouse_type = new_type;
    if let Some(p) = b.enable_photon {
        wh.enable_photon = p;
    }
    if let Some(p) = spot {
        wh.spot_instance_policy = p;
    }
    if let Some(t) = b.tags {
        wh.tags = if t.get("custom_tags").is_none_or(Value::is_null) {
            json!({"custom_tags": []})
        } else {
            t
        };
    }
    if let Some(c) = b.channel {
        wh.channel = c;
    }
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/sql/warehouses", get(list))
        .route("/api/2.0/sql/warehouses/{id}", get(get_wh))
        .route("/api/2.0/sql/warehouses/{id}/start", post(start))
        .route("/api/2.0/sql/warehouses/{id}/stop", post(stop))
        .route("/api/2.0/sql/warehouses/{id}/edit", post(edit))
}
