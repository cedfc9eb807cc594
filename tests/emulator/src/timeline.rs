//! The activity timeline: what became active or inactive, and when (both emulated and wall
//! time, ms since epoch). Tests compute intervals from it (e.g. "never both sites active").
//!
//! Kinds: `run_started`, `run_ended`, `cluster_running`, `cluster_stopped`, `warehouse_running`,
//! `warehouse_stopped`, `pipeline_running`, `pipeline_stopped`, `schedule_paused`,
//! `schedule_unpaused` (detail `kind`: `schedule|continuous|trigger`), `pool_min_idle_changed`
//! (detail `from`, `to`). Fixture state is recorded as events at start-up.
//!
//! When events are recorded (the same under both lifecycle profiles): a cluster, warehouse or
//! pipeline is recorded `*_running` when it *reaches* RUNNING and `*_stopped` when it *reaches*
//! its final stopped state (TERMINATED, STOPPED, IDLE) — never when the stop is requested. A
//! resource in TERMINATING/STOPPING therefore still counts as active, so an interval
//! `[*_running, *_stopped)` covers the whole shut-down; the start-up (PENDING/STARTING) is not
//! covered. A run is recorded `run_started` when it becomes PENDING (it is active from then on)
//! and `run_ended` when it reaches TERMINATED, after its TERMINATING phase when cancelled. The
//! realistic lifecycle profile lengthens those intermediate phases, not these rules.

use serde::Serialize;
use serde_json::Value;

use crate::clock::Now;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    RunStarted,
    RunEnded,
    ClusterRunning,
    ClusterStopped,
    WarehouseRunning,
    WarehouseStopped,
    PipelineRunning,
    PipelineStopped,
    SchedulePaused,
    ScheduleUnpaused,
    PoolMinIdleChanged,
    /// The whole region went down (scheduler included): nothing at this site is active.
    OutageStarted,
    /// The region is back; whatever is live runs again.
    OutageEnded,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub seq: u64,
    pub wall_ms: i64,
    pub emulated_ms: i64,
    pub kind: EventKind,
    /// `run`, `cluster`, `warehouse`, `pipeline`, `job`, `pool`.
    pub resource_type: &'static str,
    pub resource_id: String,
    pub name: String,
    pub detail: Value,
}

#[derive(Debug, Default)]
pub struct Timeline {
    pub events: Vec<Event>,
}

impl Timeline {
    pub fn record(
        &mut self,
        now: &Now,
        kind: EventKind,
        resource_type: &'static str,
        resource_id: impl ToString,
        name: &str,
        detail: Value,
    ) {
        let seq = self.events.len() as u64 + 1;
        self.events.push(Event {
            seq,
            wall_ms: now.wall_ms,
            emulated_ms: now.emu_ms,
            kind,
            resource_type,
            resource_id: resource_id.to_string(),
            name: name.to_string(),
            detail,
        });
    }
}
