//! Pipelines API 2.0 (Lakeflow Declarative Pipelines / DLT).
//!
//! - `GET /api/2.0/pipelines`: `max_results` 1–100 (default 25), `page_token`, `filter`
//!   (only `name LIKE '<pattern>'` with `%` wildcards is understood; other filters are ignored)
//!   → `{statuses?, next_page_token?}`.
//! - `GET /api/2.0/pipelines/{id}` → `{pipeline_id, name, state, cluster_id?, spec,
//!   latest_updates, last_modified, ...}`; missing → 404 RESOURCE_DOES_NOT_EXIST. `spec` =
//!   `{id, name, catalog, target | schema, libraries?: [{notebook: {path}} | {file: {path}} |
//!   ...], configuration?: {string: string}, clusters?: [{label, num_workers | autoscale,
//!   node_type_id?, policy_id?, ...}], continuous, development, photon, channel, edition}`.
//! - `PUT /api/2.0/pipelines/{id}` (edit; the body is the spec, `id` optional but equal to the
//!   path's) → `{}`: replaces `libraries`, `configuration`, `clusters`, `target`/`schema`,
//!   `continuous`, `development`, `photon`, `channel` (default CURRENT), `edition` (default
//!   ADVANCED) — absent ones take those defaults; `name` and `catalog` are kept when absent.
//!   Errors (400 INVALID_PARAMETER_VALUE): another `id`, both `target` and `schema`, a library
//!   that is not one object of `notebook|file|glob|jar|whl|maven` (a `notebook`/`file` without
//!   an absolute `path`), a cluster that is not an object or repeats a label, an unknown
//!   `edition` (CORE|PRO|ADVANCED) or `channel` (CURRENT|PREVIEW). `expected_last_modified`
//!   other than `last_modified` → 409 RESOURCE_CONFLICT. Sets `last_modified` (emulated ms).
//! - `POST /api/2.0/pipelines/{id}/stop` → `{}`: active → STOPPING → IDLE (its cluster is
//!   terminated); no-op when idle.
//! - `POST /api/2.0/pipelines/{id}/updates` → `{update_id, request_id}`: IDLE → STARTING →
//!   RUNNING; 409 RESOURCE_CONFLICT when an update is already active.
//!
//! STARTING/STOPPING last `lifecycle_delay` (uniform profile) or, under the realistic profile,
//! 60–180 s / 10–60 s of emulated time; see [`crate::state::Transition`]. The pipeline's
//! cluster follows its own (cluster) durations.

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
pub enum PipelineState {
    Idle,
    Running,
    Starting,
    Stopping,
    Deploying,
    Recovering,
    Resetting,
    Failed,
    Deleted,
}

#[derive(Debug, Clone)]
pub struct Pipeline {
    pub pipeline_id: String,
    pub name: String,
    pub state: PipelineState,
    pub continuous: bool,
    pub cluster_id: Option<String>,
    pub catalog: String,
    /// The legacy target schema; exclusive with `schema`.
    pub target: Option<String>,
    pub schema: Option<String>,
    /// Library specs as the API carries them (`{"notebook": {"path": ..}}`, ...).
    pub libraries: Vec<Value>,
    pub configuration: BTreeMap<String, String>,
    /// Cluster specs (`{"label": "default", "num_workers": .., ...}`).
    pub clusters: Vec<Value>,
    pub development: bool,
    pub photon: bool,
    pub channel: String,
    pub edition: String,
    /// Emulated ms of the last settings change.
    pub last_modified: i64,
    /// (update_id, state, creation emulated ms), newest first.
    pub updates: Vec<(String, &'static str, i64)>,
    pub transition_at: Option<Instant>,
}

impl Pipeline {
    /// A pipeline with the spec defaults (catalog `main`, target `sales`, no libraries,
    /// configuration or clusters, channel CURRENT, edition ADVANCED, photon); fixtures fill in
    /// the rest.
    pub fn new(
        pipeline_id: String,
        name: &str,
        state: PipelineState,
        continuous: bool,
        last_modified: i64,
    ) -> Self {
        Pipeline {
            pipeline_id,
            name: name.to_string(),
            state,
            continuous,
            cluster_id: None,
            catalog: "main".into(),
            target: Some("sales".into()),
            schema: None,
            libraries: Vec::new(),
            configuration: BTreeMap::new(),
            clusters: Vec::new(),
            development: false,
            photon: true,
            channel: "CURRENT".into(),
            edition: "ADVANCED".into(),
            last_modified,
            updates: Vec::new(),
            transition_at: None,
        }
    }

    /// The `spec` object of `GET /api/2.0/pipelines/{id}`.
    pub fn spec_json(&self) -> Value {
        let mut spec = json!({
            "id": self.pipeline_id,
            "name": self.name,
            "continuous": self.continuous,
            "development": self.development,
            "photon": self.photon,
            "edition": self.edition,
            "channel": self.channel,
            "catalog": self.catalog,
        });
        if let Some(t) = &self.target {
            spec["target"] = json!(t);
        }
        if let Some(s) = &self.schema {
            spec["schema"] = json!(s);
        }
        if !self.libraries.is_empty() {
            spec["libraries"] = json!(self.libraries);
        }
        if !self.configuration.is_empty() {
            spec["configuration"] = json!(self.configuration);
        }
        if !self.clusters.is_empty() {
            spec["clusters"] = json!(self.clusters);
        }
        spec
    }

    fn latest_updates(&self) -> Value {
        Value::Array(
            self.updates
                .iter()
                .take(5)
                .map(|(id, st, t)| {
                    json!({"update_id": id, "state": st,
                        "creation_time": chrono::DateTime::from_timestamp_millis(*t)
                            .map(|d| d.to_rfc3339()).unwrap_or_default()})
                })
                .collect(),
        )
    }

    fn status_json(&self) -> Value {
        let mut v = json!({
            "pipeline_id": self.pipeline_id,
            "name": self.name,
            "state": self.state,
            "creator_user_name": "dr-admin@example.com",
            "run_as_user_name": "dr-admin@example.com",
            "health": "HEALTHY",
            "latest_updates": self.latest_updates(),
        });
        if let Some(c) = &self.cluster_id {
            v["cluster_id"] = json!(c);
        }
        v
    }

    pub fn to_json(&self) -> Value {
        let mut v = self.status_json();
        v["last_modified"] = json!(self.last_modified);
        v["spec"] = self.spec_json();
        v
    }

    fn is_active(&self) -> bool {
        !matches!(
            self.state,
            PipelineState::Idle | PipelineState::Failed | PipelineState::Deleted
        )
    }
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Pipeline {id} does not exist."))
}

impl World {
    pub fn stop_pipeline(&mut self, id: &str, now: &Now) -> ApiResult<()> {
        let p = self.pipelines.get(id).ok_or_else(|| missing(id))?;
        if !p.is_active() || p.state == PipelineState::Stopping {
            return Ok(());
        }
        let at = self.schedule_transition(
            now,
            Pending::Pipeline(id.to_string()),
            Transition::PipelineStop,
        );
        let cluster = match self.pipelines.get_mut(id) {
            Some(p) => {
                p.state = PipelineState::Stopping;
                p.transition_at = Some(at);
                if let Some(u) = p.updates.first_mut() {
                    u.1 = "CANCELED";
                }
                p.cluster_id.clone()
            }
            None => None,
        };
        if let Some(c) = cluster {
            let _ = self.terminate_cluster(&c, now, "USER_REQUEST");
        }
        Ok(())
    }

    pub fn start_pipeline_update(&mut self, id: &str, now: &Now) -> ApiResult<String> {
        let p = self.pipelines.get(id).ok_or_else(|| missing(id))?;
        if p.is_active() {
            return Err(ApiError::conflict(format!(
                "Pipeline {id} has an active update"
            )));
        }
        let update_id = uuid_from(&mut self.rng);
        let at = self.schedule_transition(
            now,
            Pending::Pipeline(id.to_string()),
            Transition::PipelineStart,
        );
        let cluster = match self.pipelines.get_mut(id) {
            Some(p) => {
                p.state = PipelineState::Starting;
                p.transition_at = Some(at);
                p.updates
                    .insert(0, (update_id.clone(), "INITIALIZING", now.emu_ms));
                p.cluster_id.clone()
            }
            None => None,
        };
        if let Some(c) = cluster {
            if self.clusters.get(&c).is_some_and(|c| !c.state.is_active()) {
                self.begin_cluster_start(&c, now);
            }
        }
        Ok(update_id)
    }

    pub(crate) fn pipeline_transition(&mut self, id: &str, at: Instant, now: &Now) {
        let Some(p) = self.pipelines.get_mut(id) else {
            return;
        };
        if p.transition_at != Some(at) {
            return;
        }
        p.transition_at = None;
        let kind = match p.state {
            PipelineState::Starting => {
                p.state = PipelineState::Running;
                if let Some(u) = p.updates.first_mut() {
                    u.1 = "RUNNING";
                }
                EventKind::PipelineRunning
            }
            PipelineState::Stopping => {
                p.state = PipelineState::Idle;
                EventKind::PipelineStopped
            }
            _ => return,
        };
        let name = p.name.clone();
        self.timeline
            .record(now, kind, "pipeline", id, &name, json!({}));
    }
}

/// A random UUID string from the world's seeded RNG.
pub fn uuid_from(rng: &mut rand_chacha::ChaCha8Rng) -> String {
    use rand::Rng;
    uuid::Builder::from_random_bytes(rng.random())
        .into_uuid()
        .to_string()
}

/// `name LIKE 'pattern'` with `%` wildcards, case-insensitive.
fn like_filter(filter: &str) -> Option<String> {
    let f = filter.trim();
    let lower = f.to_lowercase();
    let rest = lower.strip_prefix("name")?.trim_start();
    let rest = rest.strip_prefix("like")?.trim();
    let pat = rest.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(pat.to_string())
}

fn like_match(pat: &str, s: &str) -> bool {
    let s = s.to_lowercase();
    let parts: Vec<&str> = pat.split('%').collect();
    if parts.len() == 1 {
        return s == pat;
    }
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            if !s.starts_with(part) {
                return false;
            }
            pos = part.len();
        } else if i == parts.len() - 1 {
            return s.len() >= pos + part.len() && s[pos..].ends_with(part);
        } else {
            match s[pos..].find(part) {
                Some(idx) => pos += idx + part.len(),
                None => return false,
            }
        }
    }
    true
}

#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let max = match p.int("max_results")? {
        None | Some(0) => 25,
        Some(m) if (1..=100).contains(&m) => m as usize,
        Some(m) => {
            return Err(ApiError::invalid(format!(
                "max_results must be between 1 and 100, got {m}"
            )))
        }
    };
    let offset = page::decode_offset(p.get("page_token"), "pl")?;
    let pat = p.get("filter").and_then(like_filter);
    let (w, _) = emu.world();
    let mut it = w
        .pipelines
        .values()
        .filter(|pl| pat.as_ref().is_none_or(|pt| like_match(pt, &pl.name)))
        .skip(offset);
    let items: Vec<Value> = it.by_ref().take(max).map(Pipeline::status_json).collect();
    let more = it.next().is_some();
    let mut out = json!({});
    let n = items.len();
    if n > 0 {
        out["statuses"] = Value::Array(items);
    }
    if more {
        out["next_page_token"] = json!(page::encode_offset("pl", offset + n));
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_pipeline(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (w, _) = emu.world();
    let p = w.pipelines.get(&id).ok_or_else(|| missing(&id))?;
    Ok(Json(p.to_json()))
}

#[tracing::instrument(skip_all)]
async fn stop(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (mut w, now) = emu.world();
    w.stop_pipeline(&id, &now)?;
    Ok(Json(json!({})))
}

#[tracing::instrument(skip_all)]
async fn start_update(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let (mut w, now) = emu.world();
    let update_id = w.start_pipeline_update(&id, &now)?;
    let request_id = uuid_from(&mut w.rng);
    Ok(Json(
        json!({"update_id": update_id, "request_id": request_id}),
    ))
}

#[derive(Deserialize)]
struct EditBody {
    id: Option<String>,
    pipeline_id: Option<String>,
    name: Option<String>,
    catalog: Option<String>,
    target: Option<String>,
    schema: Option<String>,
    #[serde(default)]
    libraries: Vec<Value>,
    #[serde(default)]
    configuration: BTreeMap<String, String>,
    #[serde(default)]
    clusters: Vec<Value>,
    #[serde(default)]
    continuous: bool,
    #[serde(default)]
    development: bool,
    #[serde(default)]
    photon: bool,
    channel: Option<String>,
    edition: Option<String>,
    expected_last_modified: Option<i64>,
}

const LIBRARY_KINDS: &[&str] = &["notebook", "file", "glob", "jar", "whl", "maven"];

/// Checks one library spec (see the module doc).
fn check_library(lib: &Value) -> ApiResult<()> {
    let bad = || ApiError::invalid(format!("Invalid library specification: {lib}"));
    let obj = lib.as_object().filter(|o| o.len() == 1).ok_or_else(bad)?;
    let (kind, v) = obj.iter().next().ok_or_else(bad)?;
    if !LIBRARY_KINDS.contains(&kind.as_str()) {
        return Err(bad());
    }
    if matches!(kind.as_str(), "notebook" | "file") {
        let path = v.get("path").and_then(Value::as_str).unwrap_or("");
        if !path.starts_with('/') {
            return Err(ApiError::invalid(format!(
                "Invalid library specification: {kind}.path must be an absolute workspace path, got {lib}"
            )));
        }
    }
    Ok(())
}

/// Checks the cluster specs and gives each its label (default `default`).
fn check_clusters(clusters: Vec<Value>) -> ApiResult<Vec<Value>> {
    let mut labels = Vec::new();
    let mut out = Vec::with_capacity(clusters.len());
    for mut c in clusters {
        let Some(obj) = c.as_object_mut() else {
            return Err(ApiError::invalid(format!(
                "Invalid cluster specification: {c}"
            )));
        };
        let label = match obj.get("label") {
            None => "default".to_string(),
            Some(Value::String(l)) => l.to_lowercase(),
            Some(other) => {
                return Err(ApiError::invalid(format!("Invalid cluster label: {other}")))
            }
        };
        if labels.contains(&label) {
            return Err(ApiError::invalid(format!(
                "Duplicate cluster label: {label}"
            )));
        }
        if obj.get("num_workers").is_some_and(|n| n.as_u64().is_none()) {
            return Err(ApiError::invalid(format!(
                "Invalid num_workers in cluster {label}"
            )));
        }
        obj.insert("label".into(), json!(label));
        labels.push(label);
        out.push(c);
    }
    Ok(out)
}

/// One of `allowed` (case-insensitive) or `default` when absent.
fn choice(v: Option<String>, field: &str, allowed: &[&str], default: &str) -> ApiResult<String> {
    match v.filter(|s| !s.is_empty()) {
        None => Ok(default.to_string()),
        Some(s) => allowed
            .iter()
            .find(|a| a.eq_ignore_ascii_case(&s))
            .map(|a| a.to_string())
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Invalid {field}: {s}; must be one of {}",
                    allowed.join(", ")
                ))
            }),
    }
}

/// `PUT /api/2.0/pipelines/{id}`: edits the spec (see the module doc).
#[tracing::instrument(skip_all)]
async fn edit(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: EditBody = parse_body(&body)?;
    for other in [&b.id, &b.pipeline_id].into_iter().flatten() {
        if !other.is_empty() && *other != id {
            return Err(ApiError::invalid(format!(
                "The pipeline id in the body ({other}) does not match the path ({id})"
            )));
        }
    }
    let (target, schema) = match (
        b.target.filter(|s| !s.is_empty()),
        b.schema.filter(|s| !s.is_empty()),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Only one of target and schema can be specified",
            ))
        }
        pair => pair,
    };
    for lib in &b.libraries {
        check_library(lib)?;
    }
    let clusters = check_clusters(b.clusters)?;
    let edition = choice(
        b.edition,
        "edition",
        &["CORE", "PRO", "ADVANCED"],
        "ADVANCED",
    )?;
    let channel = choice(b.channel, "channel", &["CURRENT", "PREVIEW"], "CURRENT")?;
    let (mut w, now) = emu.world();
    let p = w.pipelines.get_mut(&id).ok_or_else(|| missing(&id))?;
    if let Some(expected) = b.expected_last_modified {
        if expected != p.last_modified {
            return Err(ApiError::conflict(format!(
                "Pipeline {id} was modified at {} (expected {expected})",
                p.last_modified
            )));
        }
    }
    if let Some(n) = b.name.filter(|s| !s.is_empty()) {
        p.name = n;
    }
    if let Some(c) = b.catalog.filter(|s| !s.is_empty()) {
        p.catalog = c;
    }
    p.target = target;
    p.schema = schema;
    p.libraries = b.libraries;
    p.configuration = b.configuration;
    p.clusters = clusters;
    p.continuous = b.continuous;
    p.development = b.development;
    p.photon = b.photon;
    p.edition = edition;
    p.channel = channel;
    p.last_modified = now.emu_ms.max(p.last_modified + 1);
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/pipelines", get(list))
        .route("/api/2.0/pipelines/{id}", get(get_pipeline).put(edit))
        .route("/api/2.0/pipelines/{id}/stop", post(stop))
        .route("/api/2.0/pipelines/{id}/updates", post(start_update))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like() {
        assert_eq!(
            like_filter("name LIKE '%orders%'").as_deref(),
            Some("%orders%")
        );
        assert!(like_match("%orders%", "Orders Bronze-Silver"));
        assert!(like_match("cust%", "Customer CDC"));
        assert!(!like_match("cust%", "Orders"));
    }
}
