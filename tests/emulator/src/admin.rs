//! The admin API under `/__emulator/` (no auth; never faulted, rate limited or cut by the
//! outage switch).
//!
//! - `GET timeline` → `{events: [{seq, wall_ms, emulated_ms, kind, resource_type,
//!   resource_id, name, detail}]}`.
//! - `GET requests` → `{requests: [{seq, wall_ms, method, path, query, status, family,
//!   body}]}` for every `/api/` request (429s, injected faults and dropped connections — status
//!   0 — included; `secrets/put` values shown as `[REDACTED]`). `POST requests/clear` empties
//!   the log and zeroes the stats.
//! - `GET stats` → `{requests_total, by_family, rate_limited_total, faults_injected_total}`.
//! - `POST faults` (one rule, see [`crate::faults::FaultRule`], or `{rules: [...]}`),
//!   `GET faults`, `DELETE faults`.
//! - `POST outage {enabled}`: while enabled every `/api/`, `/oidc/` and `/.well-known/`
//!   connection is dropped without a response.
//! - `POST config {rate_limits?: {family: rate|null}, clock_speed?, lifecycle_delay_ms?,
//!   run_duration_ms?, lifecycle_profile?: "uniform"|"realistic", fail_runs?}`: live changes
//!   (`null` rate = unlimited; `fail_runs: true` makes runs that complete from then on end
//!   FAILED); answers like `GET config`. A new profile or delay applies to transitions that
//!   start afterwards; queued ones keep their due time. An unknown profile → 400
//!   MALFORMED_REQUEST and nothing is changed.
//! - `GET config` → `{rate_limits, clock_speed, lifecycle_delay_ms, run_duration_ms,
//!   lifecycle_profile, fail_runs}` (the values in force).
//! - `GET state` → compact inventory: `{jobs, clusters, pools, warehouses, pipelines,
//!   policies: [{policy_id, name}], secret_scopes: [name], repos: [{id, path, branch}],
//!   catalogs: [name], active_runs, emulated_ms}`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::config::LifecycleProfile;
use crate::error::{parse_body, ApiError, ApiResult};
use crate::faults::FaultRule;
use crate::state::{lock, Emulator, RequestLog, Shared, World};
use crate::timeline::EventKind;

#[tracing::instrument(skip_all)]
async fn timeline(State(emu): State<Shared>) -> Json<Value> {
    let (w, _) = emu.world();
    Json(json!({ "events": w.timeline.events }))
}

#[tracing::instrument(skip_all)]
async fn requests(State(emu): State<Shared>) -> Json<Value> {
    let log = lock(&emu.log);
    Json(json!({ "requests": log.records }))
}

#[tracing::instrument(skip_all)]
async fn clear_requests(State(emu): State<Shared>) -> Json<Value> {
    let mut log = lock(&emu.log);
    let next = log.next_seq;
    *log = RequestLog {
        next_seq: next,
        ..RequestLog::default()
    };
    Json(json!({}))
}

#[tracing::instrument(skip_all)]
async fn stats(State(emu): State<Shared>) -> Json<Value> {
    let log = lock(&emu.log);
    Json(json!({
        "requests_total": log.total,
        "by_family": log.by_family,
        "rate_limited_total": log.rate_limited_total,
        "faults_injected_total": log.faults_injected_total,
    }))
}

#[tracing::instrument(skip_all)]
async fn add_fault(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let v: Value = parse_body(&body)?;
    let rules: Vec<FaultRule> = match v.get("rules") {
        Some(r) => serde_json::from_value(r.clone()),
        None => serde_json::from_value(v).map(|r| vec![r]),
    }
    .map_err(|e| ApiError::malformed(format!("Invalid fault rule: {e}")))?;
    let mut f = lock(&emu.faults);
    for r in rules {
        f.add(r);
    }
    Ok(Json(json!({ "rules": f.rules() })))
}

#[tracing::instrument(skip_all)]
async fn list_faults(State(emu): State<Shared>) -> Json<Value> {
    Json(json!({ "rules": lock(&emu.faults).rules() }))
}

#[tracing::instrument(skip_all)]
async fn clear_faults(State(emu): State<Shared>) -> Json<Value> {
    lock(&emu.faults).clear();
    Json(json!({}))
}

#[derive(Deserialize)]
struct OutageBody {
    enabled: bool,
    /// The whole region is down, scheduler included (default: only the API is cut, and the
    /// site keeps running its schedules — a "zombie" primary).
    #[serde(default)]
    region_down: bool,
}

/// `POST outage {enabled, region_down?}`. With `region_down`, the timeline records
/// `outage_started` / `outage_ended` and no schedule fires in between.
#[tracing::instrument(skip_all)]
async fn outage(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: OutageBody = parse_body(&body)?;
    let region_down = b.enabled && b.region_down;
    {
        // Bring the world up to date under the old setting first: fires due while the region
        // was down are skipped, not replayed when it returns.
        let (mut w, now) = emu.world();
        if w.region_down != region_down {
            w.region_down = region_down;
            let kind = if region_down {
                EventKind::OutageStarted
            } else {
                EventKind::OutageEnded
            };
            let id = w.workspace_id;
            w.timeline
                .record(&now, kind, "workspace", id, "", json!({}));
        }
    }
    emu.outage.store(b.enabled, Ordering::SeqCst);
    Ok(Json(
        json!({ "enabled": b.enabled, "region_down": region_down }),
    ))
}

#[tracing::instrument(skip_all)]
async fn get_outage(State(emu): State<Shared>) -> Json<Value> {
    let region_down = lock(&emu.world).region_down;
    Json(json!({ "enabled": emu.outage.load(Ordering::SeqCst), "region_down": region_down }))
}

#[derive(Deserialize)]
struct ConfigBody {
    #[serde(default)]
    rate_limits: Option<Map<String, Value>>,
    #[serde(default)]
    clock_speed: Option<f64>,
    #[serde(default)]
    lifecycle_delay_ms: Option<u64>,
    #[serde(default)]
    run_duration_ms: Option<u64>,
    #[serde(default)]
    lifecycle_profile: Option<LifecycleProfile>,
    #[serde(default)]
    fail_runs: Option<bool>,
}

/// The live configuration as `GET`/`POST config` answer it.
fn config_json(emu: &Emulator, w: &World) -> Value {
    let limits = lock(&emu.limiter).limits.clone();
    json!({
        "rate_limits": limits,
        "clock_speed": w.clock.speed(),
        "lifecycle_delay_ms": w.lifecycle_delay.as_millis() as u64,
        "run_duration_ms": w.run_duration_ms,
        "lifecycle_profile": w.lifecycle_profile,
        "fail_runs": w.fail_runs,
    })
}

#[tracing::instrument(skip_all)]
async fn get_config(State(emu): State<Shared>) -> Json<Value> {
    let (w, _) = emu.world();
    Json(config_json(&emu, &w))
}

#[tracing::instrument(skip_all)]
async fn config(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: ConfigBody = parse_body(&body)?;
    if let Some(rl) = b.rate_limits {
        let mut limiter = lock(&emu.limiter);
        let mut limits = limiter.limits.clone();
        for (family, rate) in rl {
            let rate = match rate {
                Value::Null => 0.0,
                v => v.as_f64().ok_or_else(|| {
                    ApiError::malformed(format!("rate for {family} must be a number"))
                })?,
            };
            if !limits.set(&family, rate) {
                return Err(ApiError::invalid(format!(
                    "Unknown rate-limit family: {family}"
                )));
            }
        }
        limiter.set_limits(limits);
    }
    let (mut w, _) = emu.world();
    if let Some(s) = b.clock_speed {
        // Fire times are in emulated ms, so they stay valid at the new pace.
        w.clock.set_speed(s);
    }
    if let Some(d) = b.lifecycle_delay_ms {
        w.lifecycle_delay = Duration::from_millis(d);
    }
    if let Some(d) = b.run_duration_ms {
        w.run_duration_ms = i64::try_from(d).unwrap_or(i64::MAX);
    }
    if let Some(p) = b.lifecycle_profile {
        w.lifecycle_profile = p;
    }
    if let Some(f) = b.fail_runs {
        w.fail_runs = f;
    }
    Ok(Json(config_json(&emu, &w)))
}

#[tracing::instrument(skip_all)]
async fn state(State(emu): State<Shared>) -> Json<Value> {
    let (w, now) = emu.world();
    let jobs: Vec<Value> = w
        .jobs
        .values()
        .map(|j| {
            json!({
                "job_id": j.job_id,
                "name": j.settings.name,
                "schedule_pause_status": j.settings.schedule.as_ref().map(|s| s.pause_status),
                "continuous_pause_status": j.settings.continuous.as_ref().map(|s| s.pause_status),
                "trigger_pause_status": j.settings.trigger.as_ref().map(|s| s.pause_status),
                "max_concurrent_runs": j.settings.max_concurrent_runs,
                "tags": j.settings.tags,
            })
        })
        .collect();
    let clusters: Vec<Value> = w
        .clusters
        .values()
        .map(|c| {
            json!({"cluster_id": c.cluster_id, "cluster_name": c.cluster_name,
            "state": c.state, "cluster_source": c.cluster_source, "custom_tags": c.custom_tags})
        })
        .collect();
    let pools: Vec<Value> = w
        .pools
        .values()
        .map(|p| {
            json!({"instance_pool_id": p.instance_pool_id,
            "instance_pool_name": p.instance_pool_name, "min_idle_instances": p.min_idle_instances})
        })
        .collect();
    let warehouses: Vec<Value> = w
        .warehouses
        .values()
        .map(|x| json!({"id": x.id, "name": x.name, "state": x.state}))
        .collect();
    let pipelines: Vec<Value> = w
        .pipelines
        .values()
        .map(|p| json!({"pipeline_id": p.pipeline_id, "name": p.name, "state": p.state}))
        .collect();
    let policies: Vec<Value> = w
        .policies
        .values()
        .map(|p| json!({"policy_id": p.policy_id, "name": p.name}))
        .collect();
    let repos: Vec<Value> = w
        .repos
        .values()
        .map(|r| json!({"id": r.id, "path": r.path, "branch": r.branch}))
        .collect();
    Json(json!({
        "role": w.role,
        "workspace_id": w.workspace_id,
        "emulated_ms": now.emu_ms,
        "jobs": jobs,
        "clusters": clusters,
        "pools": pools,
        "warehouses": warehouses,
        "pipelines": pipelines,
        "policies": policies,
        "secret_scopes": w.secret_scopes.keys().collect::<Vec<_>>(),
        "repos": repos,
        "catalogs": w.catalogs.keys().collect::<Vec<_>>(),
        "active_runs": w.active_runs.len(),
    }))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/__emulator/timeline", get(timeline))
        .route("/__emulator/requests", get(requests))
        .route("/__emulator/requests/clear", post(clear_requests))
        .route("/__emulator/stats", get(stats))
        .route(
            "/__emulator/faults",
            post(add_fault).get(list_faults).delete(clear_faults),
        )
        .route("/__emulator/outage", post(outage).get(get_outage))
        .route("/__emulator/config", post(config).get(get_config))
        .route("/__emulator/state", get(state))
        .route(
            "/__emulator/health",
            get(|| async { Json(json!({"ok": true})) }),
        )
}
