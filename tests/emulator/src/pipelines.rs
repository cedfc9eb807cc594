//! Pipelines API 2.0 (Lakeflow Declarative Pipelines / DLT).
//!
//! - `GET /api/2.0/pipelines`: `max_results` 1–100 (default 25), `page_token`, `filter`
//!   (only `name LIKE '<pattern>'` with `%` wildcards is understood; other filters are ignored)
//!   → `{statuses?, next_page_token?}`.
//! - `GET /api/2.0/pipelines/{id}` → `{pipeline_id, name, state, cluster_id?, spec,
//!   latest_updates, ...}`; missing → 404 RESOURCE_DOES_NOT_EXIST.
//! - `POST /api/2.0/pipelines/{id}/stop` → `{}`: active → STOPPING → IDLE (its cluster is
//!   terminated); no-op when idle.
//! - `POST /api/2.0/pipelines/{id}/updates` → `{update_id, request_id}`: IDLE → STARTING →
//!   RUNNING; 409 RESOURCE_CONFLICT when an update is already active.
//!
//! STARTING/STOPPING last `lifecycle_delay` (uniform profile) or, under the realistic profile,
//! 60–180 s / 10–60 s of emulated time; see [`crate::state::Transition`]. The pipeline's
//! cluster follows its own (cluster) durations.

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
    pub target: String,
    /// (update_id, state, creation emulated ms), newest first.
    pub updates: Vec<(String, &'static str, i64)>,
    pub transition_at: Option<Instant>,
}

impl Pipeline {
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
        v["last_modified"] = json!(self.updates.first().map(|u| u.2).unwrap_or(0));
        v["spec"] = json!({
            "id": self.pipeline_id,
            "name": self.name,
            "continuous": self.continuous,
            "development": false,
            "photon": true,
            "edition": "ADVANCED",
            "channel": "CURRENT",
            "catalog": self.catalog,
            "target": self.target,
            "clusters": [{"label": "default", "autoscale": {"min_workers": 1, "max_workers": 4, "mode": "ENHANCED"}}],
            "libraries": [{"notebook": {"path": format!("/Shared/pipelines/{}", self.name)}}],
        });
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

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/pipelines", get(list))
        .route("/api/2.0/pipelines/{id}", get(get_pipeline))
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
