//! Clusters API (2.1; the same handlers answer under 2.0).
//!
//! - `GET clusters/list`: `page_size` (default and max 100), `page_token`, repeatable
//!   `filter_by.cluster_sources` / `filter_by.cluster_states`, `filter_by.is_pinned`,
//!   `filter_by.policy_id` → `{clusters, next_page_token?, prev_page_token?}`; the next token is
//!   absent on the last page. Ordered by `cluster_id`.
//! - `GET clusters/get?cluster_id=`: missing → 400 INVALID_PARAMETER_VALUE
//!   `Cluster <id> does not exist`.
//! - `POST clusters/start {cluster_id}` → `{}`: TERMINATED → PENDING → RUNNING; on an active
//!   cluster 400 INVALID_STATE.
//!
//! Transitional states last `lifecycle_delay` (uniform profile) or, under the realistic
//! profile, 180–300 s (start, restart) and 30–120 s (terminate) of emulated time; see
//! [`crate::state::Transition`].
//! - `POST clusters/delete {cluster_id}` → `{}`: terminate, TERMINATING → TERMINATED with
//!   `termination_reason {code: USER_REQUEST, type: SUCCESS}`; no-op when already stopping.
//! - `POST clusters/edit`: replaces the given fields; a running cluster restarts.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
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
pub enum ClusterState {
    Pending,
    Running,
    Restarting,
    Resizing,
    Terminating,
    Terminated,
    Error,
    Unknown,
}

impl ClusterState {
    /// Running or about to be (consumes compute).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ClusterState::Pending
                | ClusterState::Running
                | ClusterState::Restarting
                | ClusterState::Resizing
        )
    }
    fn display(self) -> &'static str {
        match self {
            ClusterState::Pending => "Pending",
            ClusterState::Running => "Running",
            ClusterState::Restarting => "Restarting",
            ClusterState::Resizing => "Resizing",
            ClusterState::Terminating => "Terminating",
            ClusterState::Terminated => "Terminated",
            ClusterState::Error => "Error",
            ClusterState::Unknown => "Unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterSource {
    Ui,
    Api,
    Job,
    Pipeline,
    PipelineMaintenance,
    Sql,
    Models,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Autoscale {
    pub min_workers: u32,
    pub max_workers: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct TerminationReason {
    pub code: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub parameters: BTreeMap<String, String>,
}

/// A cluster as `clusters/get` encodes it (`ClusterDetails`).
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub cluster_id: String,
    pub cluster_name: String,
    pub state: ClusterState,
    pub state_message: String,
    pub cluster_source: ClusterSource,
    pub spark_version: String,
    pub node_type_id: String,
    pub driver_node_type_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_workers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_pool_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_instance_pool_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_tags: BTreeMap<String, String>,
    pub default_tags: BTreeMap<String, String>,
    pub autotermination_minutes: u32,
    pub data_security_mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub single_user_name: Option<String>,
    pub creator_user_name: String,
    pub aws_attributes: Value,
    pub start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terminated_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination_reason: Option<TerminationReason>,
    #[serde(skip)]
    pub is_pinned: bool,
    #[serde(skip)]
    pub transition_at: Option<Instant>,
    /// Reason code recorded when the pending termination completes.
    #[serde(skip)]
    pub stop_reason: &'static str,
}

impl Cluster {
    /// A cluster with realistic defaults; fixtures adjust fields afterwards.
    pub fn new(
        id: String,
        name: &str,
        source: ClusterSource,
        state: ClusterState,
        t0: i64,
    ) -> Self {
        let mut default_tags = BTreeMap::new();
        default_tags.insert("Vendor".into(), "Databricks".into());
        default_tags.insert("Creator".into(), "dr-admin@example.com".into());
        default_tags.insert("ClusterName".into(), name.to_string());
        default_tags.insert("ClusterId".into(), id.clone());
        let terminated = state == ClusterState::Terminated;
        Cluster {
            cluster_id: id,
            cluster_name: name.to_string(),
            state,
            state_message: String::new(),
            cluster_source: source,
            spark_version: "15.4.x-scala2.12".into(),
            node_type_id: "i3.xlarge".into(),
            driver_node_type_id: "i3.xlarge".into(),
            num_workers: Some(2),
            autoscale: None,
            instance_pool_id: None,
            driver_instance_pool_id: None,
            policy_id: None,
            custom_tags: BTreeMap::new(),
            default_tags,
            autotermination_minutes: if source == ClusterSource::Job { 0 } else { 60 },
            data_security_mode: "USER_ISOLATION".into(),
            single_user_name: None,
            creator_user_name: "dr-admin@example.com".into(),
            aws_attributes: json!({"availability": "SPOT_WITH_FALLBACK", "zone_id": "auto",
                "first_on_demand": 1, "spot_bid_price_percent": 100}),
            start_time: t0 - 86_400_000,
            terminated_time: terminated.then_some(t0 - 3_600_000),
            termination_reason: terminated.then(|| TerminationReason {
                code: "INACTIVITY",
                kind: "SUCCESS",
                parameters: BTreeMap::from([(
                    "inactivity_duration_min".to_string(),
                    "60".to_string(),
                )]),
            }),
            is_pinned: false,
            transition_at: None,
            stop_reason: "USER_REQUEST",
        }
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::invalid(format!("Cluster {id} does not exist"))
}

impl World {
    /// `clusters/start`: TERMINATED/ERROR → PENDING (RUNNING after the delay).
    pub fn start_cluster(&mut self, id: &str, now: &Now) -> ApiResult<()> {
        let c = self.clusters.get(id).ok_or_else(|| missing(id))?;
        if c.cluster_source == ClusterSource::Job {
            return Err(ApiError::invalid(format!(
                "Cluster {id} is a job cluster and cannot be started"
            )));
        }
        if !matches!(c.state, ClusterState::Terminated | ClusterState::Error) {
            return Err(ApiError::invalid_state(format!(
                "Cluster {id} is in unexpected state {}.",
                c.state.display()
            )));
        }
        self.begin_cluster_start(id, now);
        Ok(())
    }

    /// Moves a cluster to PENDING regardless of source (jobs and pipelines use it too).
    pub fn begin_cluster_start(&mut self, id: &str, now: &Now) {
        let at = self.schedule_transition(
            now,
            Pending::Cluster(id.to_string()),
            Transition::ClusterStart,
        );
        if let Some(c) = self.clusters.get_mut(id) {
            c.state = ClusterState::Pending;
            c.state_message = "Starting Spark".into();
            c.terminated_time = None;
            c.termination_reason = None;
            c.transition_at = Some(at);
        }
    }

    /// `clusters/delete`: active → TERMINATING (TERMINATED after the delay); else no-op.
    pub fn terminate_cluster(
        &mut self,
        id: &str,
        now: &Now,
        reason: &'static str,
    ) -> ApiResult<()> {
        let c = self.clusters.get(id).ok_or_else(|| missing(id))?;
        if !c.state.is_active() {
            return Ok(());
        }
        let at = self.schedule_transition(
            now,
            Pending::Cluster(id.to_string()),
            Transition::ClusterTerminate,
        );
        if let Some(c) = self.clusters.get_mut(id) {
            c.state = ClusterState::Terminating;
            c.state_message = "Terminating cluster".into();
            c.transition_at = Some(at);
            c.stop_reason = reason;
        }
        Ok(())
    }

    pub(crate) fn cluster_transition(&mut self, id: &str, at: Instant, now: &Now) {
        let Some(c) = self.clusters.get_mut(id) else {
            return;
        };
        if c.transition_at != Some(at) {
            return;
        }
        c.transition_at = None;
        let event = match c.state {
            ClusterState::Pending | ClusterState::Restarting | ClusterState::Resizing => {
                c.state = ClusterState::Running;
                c.state_message = String::new();
                Some(EventKind::ClusterRunning)
            }
            ClusterState::Terminating => {
                c.state = ClusterState::Terminated;
                c.state_message = String::new();
                c.terminated_time = Some(now.emu_ms);
                let mut parameters = BTreeMap::new();
                if c.stop_reason == "USER_REQUEST" {
                    parameters.insert("username".into(), "dr-admin@example.com".into());
                }
                c.termination_reason = Some(TerminationReason {
                    code: c.stop_reason,
                    kind: "SUCCESS",
                    parameters,
                });
                Some(EventKind::ClusterStopped)
            }
            _ => None,
        };
        if let Some(kind) = event {
            let (cid, name) = (c.cluster_id.clone(), c.cluster_name.clone());
            self.timeline
                .record(now, kind, "cluster", cid, &name, json!({}));
        }
    }
}

#[derive(Deserialize)]
struct ClusterIdBody {
    #[serde(default)]
    cluster_id: Option<String>,
}

impl ClusterIdBody {
    fn id(self) -> ApiResult<String> {
        self.cluster_id
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid("Missing required field: cluster_id"))
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(field: &str, v: &str) -> ApiResult<T> {
    serde_json::from_value(Value::String(v.to_string()))
        .map_err(|_| ApiError::invalid(format!("Invalid value for {field}: {v}")))
}

/// `GET /api/2.1/clusters/list`.
#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let sources = p
        .all("filter_by.cluster_sources")
        .into_iter()
        .map(|s| parse_enum::<ClusterSource>("cluster_sources", s))
        .collect::<ApiResult<Vec<_>>>()?;
    let states = p
        .all("filter_by.cluster_states")
        .into_iter()
        .map(|s| parse_enum::<ClusterState>("cluster_states", s))
        .collect::<ApiResult<Vec<_>>>()?;
    let pinned = p
        .get("filter_by.is_pinned")
        .map(|v| v.eq_ignore_ascii_case("true"));
    let policy = p.get("filter_by.policy_id").filter(|s| !s.is_empty());
    let size = p.int("page_size")?.unwrap_or(100).clamp(1, 100) as usize;
    let (w, _) = emu.world();
    let keep = |c: &&Cluster| {
        (sources.is_empty() || sources.contains(&c.cluster_source))
            && (states.is_empty() || states.contains(&c.state))
            && pinned.is_none_or(|pv| c.is_pinned == pv)
            && policy.is_none_or(|pid| c.policy_id.as_deref() == Some(pid))
    };
    // Cursor: "after:<id>" pages forward, "before:<id>" backward.
    let mut page_items: Vec<&Cluster> = match p.get("page_token").filter(|t| !t.is_empty()) {
        Some(t) if page::decode(t, "before").is_ok() => {
            let before = page::decode(t, "before")?;
            let mut v: Vec<&Cluster> = w
                .clusters
                .range(..before)
                .rev()
                .map(|(_, c)| c)
                .filter(keep)
                .take(size)
                .collect();
            v.reverse();
            v
        }
        Some(t) => {
            let after = page::decode(t, "after")?;
            w.clusters
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                .map(|(_, c)| c)
                .filter(keep)
                .take(size)
                .collect()
        }
        None => w.clusters.values().filter(keep).take(size).collect(),
    };
    page_items.truncate(size);
    let mut out = json!({ "clusters": page_items });
    if let (Some(first), Some(last)) = (page_items.first(), page_items.last()) {
        let more_after = w
            .clusters
            .range((
                std::ops::Bound::Excluded(last.cluster_id.clone()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, c)| c)
            .any(|c| keep(&c));
        let more_before = w
            .clusters
            .range(..first.cluster_id.clone())
            .map(|(_, c)| c)
            .any(|c| keep(&c));
        if more_after {
            out["next_page_token"] = json!(page::encode(&format!("after:{}", last.cluster_id)));
        }
        if more_before {
            out["prev_page_token"] = json!(page::encode(&format!("before:{}", first.cluster_id)));
        }
    }
    Ok(Json(out))
}

/// `GET /api/2.1/clusters/get?cluster_id=`.
#[tracing::instrument(skip_all)]
async fn get_cluster(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let id = p.required("cluster_id")?;
    let (w, _) = emu.world();
    let c = w.clusters.get(id).ok_or_else(|| missing(id))?;
    Ok(Json(json!(c)))
}

/// `POST /api/2.1/clusters/start`.
#[tracing::instrument(skip_all)]
async fn start(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_body::<ClusterIdBody>(&body)?.id()?;
    let (mut w, now) = emu.world();
    w.start_cluster(&id, &now)?;
    Ok(Json(json!({})))
}

/// `POST /api/2.1/clusters/delete` (terminate).
#[tracing::instrument(skip_all)]
async fn delete(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let id = parse_body::<ClusterIdBody>(&body)?.id()?;
    let (mut w, now) = emu.world();
    w.terminate_cluster(&id, &now, "USER_REQUEST")?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct EditBody {
    cluster_id: Option<String>,
    cluster_name: Option<String>,
    spark_version: Option<String>,
    node_type_id: Option<String>,
    driver_node_type_id: Option<String>,
    num_workers: Option<u32>,
    autoscale: Option<Autoscale>,
    autotermination_minutes: Option<u32>,
    custom_tags: Option<BTreeMap<String, String>>,
    instance_pool_id: Option<String>,
    policy_id: Option<String>,
    data_security_mode: Option<String>,
    single_user_name: Option<String>,
}

/// `POST /api/2.1/clusters/edit`: replaces the cluster's spec; a running cluster restarts.
#[tracing::instrument(skip_all)]
async fn edit(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: EditBody = parse_body(&body)?;
    let id = b
        .cluster_id
        .clone()
        .ok_or_else(|| ApiError::invalid("Missing required field: cluster_id"))?;
    if b.spark_version.is_none() {
        return Err(ApiError::invalid("Missing required field: spark_version"));
    }
    let (mut w, now) = emu.world();
    let c = w.clusters.get_mut(&id).ok_or_else(|| missing(&id))?;
    if c.cluster_source == ClusterSource::Job {
        return Err(ApiError::invalid(format!("Cannot edit job cluster {id}")));
    }
    if let Some(v) = b.cluster_name {
        c.cluster_name = v;
    }
    if let Some(v) = b.spark_version {
        c.spark_version = v;
    }
    if let Some(v) = b.node_type_id {
        c.node_type_id = v;
    }
    if let Some(v) = b.driver_node_type_id {
        c.driver_node_type_id = v;
    }
    if b.autoscale.is_some() {
        c.autoscale = b.autoscale;
        c.num_workers = None;
    } else if b.num_workers.is_some() {
        c.num_workers = b.num_workers;
        c.autoscale = None;
    }
    if let Some(v) = b.autotermination_minutes {
        c.autotermination_minutes = v;
    }
    c.custom_tags = b.custom_tags.unwrap_or_default();
    c.instance_pool_id = b.instance_pool_id;
    c.policy_id = b.policy_id;
    if let Some(v) = b.data_security_mode {
        c.data_security_mode = v;
    }
    c.single_user_name = b.single_user_name;
    if c.state == ClusterState::Running {
        c.state = ClusterState::Restarting;
        let at =
            w.schedule_transition(&now, Pending::Cluster(id.clone()), Transition::ClusterStart);
        if let Some(c) = w.clusters.get_mut(&id) {
            c.transition_at = Some(at);
        }
    }
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    let mut r = Router::new();
    for v in ["2.0", "2.1"] {
        r = r
            .route(&format!("/api/{v}/clusters/list"), get(list))
            .route(&format!("/api/{v}/clusters/get"), get(get_cluster))
            .route(&format!("/api/{v}/clusters/start"), post(start))
            .route(&format!("/api/{v}/clusters/delete"), post(delete))
            .route(&format!("/api/{v}/clusters/edit"), post(edit));
    }
    r
}
