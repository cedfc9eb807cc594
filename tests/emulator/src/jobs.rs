//! Jobs API 2.2 (the same handlers answer under 2.1): jobs, runs and the scheduler.
//!
//! - `GET jobs/list`: `limit` 1–100 (default 20), `page_token`, `expand_tasks`, `name` (exact,
//!   case-insensitive), deprecated `offset` → `{jobs?, has_more, next_page_token?}`; without
//!   `expand_tasks` the `settings.tasks` and `settings.job_clusters` are omitted. Ordered by id.
//! - `GET jobs/get?job_id=` → `{job_id, creator_user_name, run_as_user_name, created_time,
//!   settings}`; missing → 400 INVALID_PARAMETER_VALUE `Job <id> does not exist.`
//! - `POST jobs/update {job_id, new_settings, fields_to_remove}`: each top-level field of
//!   `new_settings` replaces the old one whole, except `tasks` and `job_clusters`, which are
//!   merged by `task_key` / `job_cluster_key` (as the real API does).
//! - `POST jobs/reset {job_id, new_settings}`: replaces all settings.
//! - `POST jobs/run-now {job_id, idempotency_token?, job_parameters?}` → `{run_id,
//!   number_in_job}`; the same token returns the same run. When `max_concurrent_runs` active
//!   runs exist, the run is QUEUED if `settings.queue.enabled`, else recorded as SKIPPED.
//!   On an unpaused continuous job the active run is cancelled and replaced.
//! - `GET jobs/runs/list`: `active_only`, `completed_only`, `job_id`, `limit` 1–25 (default 20),
//!   `page_token`, `start_time_from/to`, `expand_tasks` → `{runs?, has_more, next_page_token?}`,
//!   newest first.
//! - `GET jobs/runs/get?run_id=`, `POST jobs/runs/cancel {run_id}`,
//!   `POST jobs/runs/cancel-all {job_id}`.
//!
//! Run lifecycle: (QUEUED →) PENDING → RUNNING (after the transition delay) → TERMINATED/SUCCESS
//! (FAILED while the `fail_runs` switch of `/__emulator/config` is on) after `run_duration` of
//! emulated time (continuous runs never end by themselves); cancel of an
//! active run → TERMINATING → TERMINATED/CANCELED after the transition delay (a QUEUED run is
//! cancelled at once), under both lifecycle profiles. The transition delay is
//! `lifecycle_delay` (uniform profile) or, under the realistic profile, 10–60 s (start) and
//! 5–30 s (cancel) of emulated time (see [`crate::state::Transition`]). A job cluster attached
//! to a run is terminated when the run ends.
//!
//! Scheduler: unpaused Quartz cron schedules (seconds field, `?`, 1=SUN..7=SAT, `timezone_id`)
//! and unpaused periodic triggers create PERIODIC runs when due on the emulated clock (missed
//! fires are skipped, not replayed); an unpaused continuous job always has one active run
//! (CONTINUOUS); pausing it cancels that run. File-arrival and table triggers never fire.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::clock::Now;
use crate::error::{page, parse_body, ApiError, ApiResult, Params};
use crate::state::{Pending, Shared, Transition, World};
use crate::timeline::EventKind;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PauseStatus {
    Paused,
    #[default]
    Unpaused,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CronSchedule {
    pub quartz_cron_expression: String,
    #[serde(default = "utc")]
    pub timezone_id: String,
    #[serde(default)]
    pub pause_status: PauseStatus,
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PeriodicUnit {
    Hours,
    Days,
    Weeks,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Periodic {
    pub interval: u32,
    pub unit: PeriodicUnit,
}

impl Periodic {
    fn period_ms(&self) -> i64 {
        let unit = match self.unit {
            PeriodicUnit::Hours => 3_600_000,
            PeriodicUnit::Days => 86_400_000,
            PeriodicUnit::Weeks => 7 * 86_400_000,
        };
        (self.interval.max(1) as i64) * unit
    }
}

/// `trigger`: `pause_status` plus one of `file_arrival`, `periodic`, `table_update`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriggerSettings {
    #[serde(default)]
    pub pause_status: PauseStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<Periodic>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Continuous {
    #[serde(default)]
    pub pause_status: PauseStatus,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// Job settings. The fields Lifeboat acts on are typed; everything else (tasks, job_clusters,
/// run_as, queue, notifications, ...) is kept verbatim in `other`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobSettings {
    #[serde(default = "untitled")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<Continuous>,
    #[serde(default = "one")]
    pub max_concurrent_runs: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

fn untitled() -> String {
    "Untitled".into()
}
fn one() -> u32 {
    1
}

/// Which kinds of automatic triggering are active (`schedule`, `continuous`, `trigger`).
pub fn active_kinds(s: &JobSettings) -> [(&'static str, bool); 3] {
    [
        (
            "schedule",
            s.schedule
                .as_ref()
                .is_some_and(|x| x.pause_status == PauseStatus::Unpaused),
        ),
        (
            "continuous",
            s.continuous
                .as_ref()
                .is_some_and(|x| x.pause_status == PauseStatus::Unpaused),
        ),
        (
            "trigger",
            s.trigger
                .as_ref()
                .is_some_and(|x| x.pause_status == PauseStatus::Unpaused),
        ),
    ]
}

impl JobSettings {
    fn queue_enabled(&self) -> bool {
        self.other
            .get("queue")
            .and_then(|q| q.get("enabled"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
    fn continuous_active(&self) -> bool {
        active_kinds(self)[1].1
    }
    pub fn task_keys(&self) -> Vec<String> {
        self.other
            .get("tasks")
            .and_then(Value::as_array)
            .map(|ts| {
                ts.iter()
                    .filter_map(|t| t.get("task_key").and_then(Value::as_str).map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Job {
    pub job_id: u64,
    pub creator_user_name: String,
    pub created_time: i64,
    pub settings: JobSettings,
    /// Emulated ms of the next schedule/periodic fire (key into the schedule queue).
    pub next_fire_ms: Option<i64>,
    pub periodic_anchor_ms: i64,
    /// Whether the scheduler has computed this job's next fire (see [`World::arm_schedules`]).
    pub armed: bool,
}

impl Job {
    /// Wire encoding; `full` keeps tasks and job clusters.
    pub fn to_json(&self, full: bool) -> Value {
        let mut settings = json!(self.settings);
        if !full {
            if let Some(m) = settings.as_object_mut() {
                m.remove("tasks");
                m.remove("job_clusters");
            }
        }
        json!({
            "job_id": self.job_id,
            "creator_user_name": self.creator_user_name,
            "run_as_user_name": self.settings.other.get("run_as")
                .and_then(|r| r.get("user_name").or_else(|| r.get("service_principal_name")))
                .cloned().unwrap_or(json!(self.creator_user_name)),
            "created_time": self.created_time,
            "settings": settings,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifeCycleState {
    Queued,
    Pending,
    Running,
    Terminating,
    Terminated,
    Skipped,
    InternalError,
    Blocked,
    WaitingForRetry,
}

impl LifeCycleState {
    pub fn is_active(self) -> bool {
        matches!(
            self,
            LifeCycleState::Queued
                | LifeCycleState::Pending
                | LifeCycleState::Running
                | LifeCycleState::Terminating
                | LifeCycleState::Blocked
                | LifeCycleState::WaitingForRetry
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultState {
    Success,
    Failed,
    Timedout,
    Canceled,
    MaximumConcurrentRunsReached,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TriggerType {
    Periodic,
    OneTime,
    Retry,
    FileArrival,
    Table,
    Continuous,
}

/// One job run.
#[derive(Debug, Clone)]
pub struct Run {
    pub run_id: u64,
    pub job_id: u64,
    pub run_name: String,
    pub life_cycle: LifeCycleState,
    pub result: Option<ResultState>,
    pub state_message: String,
    pub trigger: TriggerType,
    pub start_time: i64,
    pub end_time: i64,
    pub cluster_id: Option<String>,
    pub task_keys: Vec<String>,
    pub job_parameters: Map<String, Value>,
    pub transition_at: Option<Instant>,
    /// Emulated ms at which a RUNNING run completes by itself (None: never).
    pub ends_at: Option<i64>,
    pub user_cancelled: bool,
}

impl Run {
    fn state_json(&self) -> Value {
        let mut st = json!({
            "life_cycle_state": self.life_cycle,
            "state_message": self.state_message,
            "user_cancelled_or_timedout": self.user_cancelled,
        });
        if let Some(r) = self.result {
            st["result_state"] = json!(r);
        }
        st
    }

    fn status_json(&self) -> Value {
        let (state, details) = match self.life_cycle {
            LifeCycleState::Queued => ("QUEUED", None),
            LifeCycleState::Pending | LifeCycleState::WaitingForRetry => ("PENDING", None),
            LifeCycleState::Blocked => ("BLOCKED", None),
            LifeCycleState::Running => ("RUNNING", None),
            LifeCycleState::Terminating => ("TERMINATING", None),
            LifeCycleState::Skipped => (
                "TERMINATED",
                Some(("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR")),
            ),
            LifeCycleState::InternalError => {
                ("TERMINATED", Some(("INTERNAL_ERROR", "INTERNAL_ERROR")))
            }
            LifeCycleState::Terminated => match self.result {
                Some(ResultState::Canceled) => ("TERMINATED", Some(("CANCELED", "SUCCESS"))),
                Some(ResultState::Failed) => {
                    ("TERMINATED", Some(("RUN_EXECUTION_ERROR", "CLIENT_ERROR")))
                }
                _ => ("TERMINATED", Some(("SUCCESS", "SUCCESS"))),
            },
        };
        let mut s = json!({ "state": state });
        if let Some((code, kind)) = details {
            s["termination_details"] =
                json!({"code": code, "type": kind, "message": self.state_message});
        }
        s
    }

    /// Wire encoding (`runs/get`; `runs/list` without tasks unless `expand_tasks`).
    pub fn to_json(&self, url: &str, workspace_id: u64, with_tasks: bool) -> Value {
        let exec = if self.end_time > 0 {
            self.end_time - self.start_time
        } else {
            0
        };
        let mut v = json!({
            "job_id": self.job_id,
            "run_id": self.run_id,
            "number_in_job": self.run_id,
            "original_attempt_number": self.run_id,
            "run_name": self.run_name,
            "creator_user_name": "dr-admin@example.com",
            "state": self.state_json(),
            "status": self.status_json(),
            "trigger": self.trigger,
            "run_type": "JOB_RUN",
            "format": "MULTI_TASK",
            "start_time": self.start_time,
            "setup_duration": 0,
            "execution_duration": exec,
            "cleanup_duration": 0,
            "end_time": self.end_time,
            "run_duration": exec,
            "run_page_url": format!("{url}/?o={workspace_id}#job/{}/run/{}", self.job_id, self.run_id),
        });
        if let Some(c) = &self.cluster_id {
            v["cluster_instance"] = json!({"cluster_id": c});
        }
        if !self.job_parameters.is_empty() {
            v["job_parameters"] = Value::Array(
                self.job_parameters
                    .iter()
                    .map(|(k, val)| json!({"name": k, "value": val}))
                    .collect(),
            );
        }
        if with_tasks {
            let tasks: Vec<Value> = self
                .task_keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    let mut t = json!({
                        "task_key": k,
                        "run_id": self.run_id + i as u64 + 1,
                        "state": self.state_json(),
                        "status": self.status_json(),
                        "start_time": self.start_time,
                        "end_time": self.end_time,
                        "attempt_number": 0,
                    });
                    if let Some(c) = &self.cluster_id {
                        t["cluster_instance"] = json!({"cluster_id": c});
                    }
                    t
                })
                .collect();
            v["tasks"] = Value::Array(tasks);
        }
        v
    }
}

/// Parses a Quartz cron expression (seconds required, optional year, 1=SUN..7=SAT, `?`).
pub fn parse_quartz(expr: &str) -> Option<croner::Cron> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .year(croner::parser::Year::Optional)
        .alternative_weekdays(true)
        .build()
        .parse(expr)
        .ok()
}

fn missing_job(id: u64) -> ApiError {
    ApiError::invalid(format!("Job {id} does not exist."))
}

fn missing_run(id: u64) -> ApiError {
    ApiError::invalid(format!("Run {id} does not exist."))
}

/// Reads an id given as a JSON number or a numeric string.
fn id_field(v: &Value, key: &str) -> ApiResult<u64> {
    match v.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| ApiError::invalid(format!("Invalid {key}: {n}"))),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| ApiError::invalid(format!("Invalid {key}: {s}"))),
        _ => Err(ApiError::invalid(format!("Missing required field: {key}"))),
    }
}

fn parse_id(p: &Params, key: &str) -> ApiResult<u64> {
    let v = p.required(key)?;
    v.parse()
        .map_err(|_| ApiError::invalid(format!("Invalid {key}: {v}")))
}

impl World {
    /// Next cron fire strictly after `after_ms` (emulated), in the schedule's time zone.
    pub fn cron_next(&mut self, expr: &str, tz: &str, after_ms: i64) -> Option<i64> {
        if !self.cron_cache.contains_key(expr) {
            self.cron_cache.insert(expr.to_string(), parse_quartz(expr));
        }
        let cron = self.cron_cache.get(expr)?.as_ref()?;
        let tz = chrono_tz::Tz::from_str(tz).unwrap_or(chrono_tz::UTC);
        let dt = tz.timestamp_millis_opt(after_ms).single()?;
        cron.find_next_occurrence(&dt, false)
            .ok()
            .map(|d| d.timestamp_millis())
    }

    /// Recomputes a job's next schedule/periodic fire and (re)queues it.
    pub fn reschedule_job(&mut self, job_id: u64, now: &Now) {
        self.reschedule_after(job_id, now.emu_ms);
    }

    /// Arms up to `limit` not-yet-armed jobs, computing their first fire after the start
    /// time `t0_ms` (so a fire due while arming still happens). Returns true when all jobs are
    /// armed. Large fixtures arm in the background in chunks, keeping start-up fast.
    pub fn arm_schedules(&mut self, limit: usize) -> bool {
        let Some(cursor) = self.arm_cursor else {
            return true;
        };
        let batch: Vec<(u64, bool)> = self
            .jobs
            .range(cursor..)
            .take(limit.saturating_add(1))
            .map(|(id, j)| (*id, j.armed))
            .collect();
        let more = batch.len() > limit;
        for &(id, armed) in batch.iter().take(limit) {
            if !armed {
                self.reschedule_after(id, self.t0_ms);
            }
        }
        self.arm_cursor = if more {
            batch.last().map(|b| b.0)
        } else {
            None
        };
        !more
    }

    fn reschedule_after(&mut self, job_id: u64, after_ms: i64) {
        let Some(job) = self.jobs.get(&job_id) else {
            return;
        };
        let cron = job
            .settings
            .schedule
            .as_ref()
            .filter(|s| s.pause_status == PauseStatus::Unpaused)
            .map(|s| (s.quartz_cron_expression.clone(), s.timezone_id.clone()));
        let periodic = job
            .settings
            .trigger
            .as_ref()
            .filter(|t| t.pause_status == PauseStatus::Unpaused)
            .and_then(|t| t.periodic.as_ref())
            .map(|p| (job.periodic_anchor_ms, p.period_ms()));
        let old = job.next_fire_ms;
        let mut next = cron.and_then(|(e, tz)| self.cron_next(&e, &tz, after_ms));
        if let Some((anchor, period)) = periodic {
            let k = ((after_ms - anchor).max(0) / period) + 1;
            let p = anchor + k * period;
            next = Some(next.map_or(p, |n| n.min(p)));
        }
        if let Some(o) = old {
            self.schedule_queue.remove(&(o, job_id));
        }
        if let Some(n) = next {
            self.schedule_queue.insert((n, job_id));
        }
        if let Some(job) = self.jobs.get_mut(&job_id) {
            job.next_fire_ms = next;
            job.armed = true;
        }
    }

    pub(crate) fn advance_schedules(&mut self, now: &Now) {
        while let Some(&(t, job_id)) = self.schedule_queue.first() {
            if t > now.emu_ms {
                break;
            }
            self.schedule_queue.remove(&(t, job_id));
            if self.jobs.get(&job_id).and_then(|j| j.next_fire_ms) != Some(t) {
                continue;
            }
            // A region that is down fires nothing; the fire is gone, not late.
            if !self.region_down {
                self.create_run(job_id, TriggerType::Periodic, now, Map::new(), false);
            }
            self.reschedule_job(job_id, now);
        }
    }

    /// Active (non-queued) and queued run counts of a job.
    fn job_run_counts(&self, job_id: u64) -> (u32, u32) {
        let mut active = 0;
        let mut queued = 0;
        for id in &self.active_runs {
            if let Some(r) = self.runs.get(id) {
                if r.job_id == job_id {
                    if r.life_cycle == LifeCycleState::Queued {
                        queued += 1;
                    } else {
                        active += 1;
                    }
                }
            }
        }
        (active, queued)
    }

    pub fn alloc_run_id(&mut self) -> u64 {
        self.next_run_id += 1000;
        self.next_run_id
    }

    /// Creates a run: PENDING when the job has capacity (or `force`), else QUEUED (queueing
    /// enabled) or SKIPPED. Returns the run id.
    pub fn create_run(
        &mut self,
        job_id: u64,
        trigger: TriggerType,
        now: &Now,
        params: Map<String, Value>,
        force: bool,
    ) -> u64 {
        let (name, max, queue, task_keys) = match self.jobs.get(&job_id) {
            Some(j) => (
                j.settings.name.clone(),
                j.settings.max_concurrent_runs,
                j.settings.queue_enabled(),
                j.settings.task_keys(),
            ),
            None => return 0,
        };
        let (active, _) = self.job_run_counts(job_id);
        let run_id = self.alloc_run_id();
        let mut run = Run {
            run_id,
            job_id,
            run_name: name,
            life_cycle: LifeCycleState::Pending,
            result: None,
            state_message: String::new(),
            trigger,
            start_time: now.emu_ms,
            end_time: 0,
            cluster_id: None,
            task_keys,
            job_parameters: params,
            transition_at: None,
            ends_at: None,
            user_cancelled: false,
        };
        if force || active < max {
            self.runs.insert(run_id, run);
            self.begin_run(run_id, now);
        } else if queue && max > 0 {
            run.life_cycle = LifeCycleState::Queued;
            run.state_message = "Queued due to reaching maximum concurrent runs".into();
            self.runs.insert(run_id, run);
            self.active_runs.insert(run_id);
        } else {
            run.life_cycle = LifeCycleState::Skipped;
            run.result = Some(ResultState::MaximumConcurrentRunsReached);
            run.state_message = format!(
                "Skipping this run because the limit of {max} maximum concurrent runs has been reached."
            );
            run.end_time = now.emu_ms;
            self.runs.insert(run_id, run);
        }
        run_id
    }

    /// A QUEUED or new run becomes PENDING (RUNNING after the lifecycle delay).
    fn begin_run(&mut self, run_id: u64, now: &Now) {
        let at = self.schedule_transition(now, Pending::Run(run_id), Transition::RunStart);
        let Some(r) = self.runs.get_mut(&run_id) else {
            return;
        };
        r.life_cycle = LifeCycleState::Pending;
        r.state_message = "Waiting for cluster".into();
        r.start_time = now.emu_ms;
        r.transition_at = Some(at);
        let detail = json!({"run_id": run_id, "job_id": r.job_id, "trigger": r.trigger});
        let name = r.run_name.clone();
        self.active_runs.insert(run_id);
        self.timeline
            .record(now, EventKind::RunStarted, "run", run_id, &name, detail);
    }

    pub(crate) fn run_transition(&mut self, run_id: u64, at: Instant, now: &Now) {
        let duration = self.run_duration_ms;
        let continuous = self
            .runs
            .get(&run_id)
            .is_some_and(|r| r.trigger == TriggerType::Continuous);
        let Some(r) = self.runs.get_mut(&run_id) else {
            return;
        };
        if r.transition_at != Some(at) {
            return;
        }
        r.transition_at = None;
        match r.life_cycle {
            LifeCycleState::Pending => {
                r.life_cycle = LifeCycleState::Running;
                r.state_message = "In run".into();
                if !continuous {
                    let end = r.ends_at.unwrap_or(now.emu_ms + duration);
                    r.ends_at = Some(end);
                    self.run_timers.insert((end, run_id));
                }
            }
            LifeCycleState::Terminating => {
                self.finish_run(run_id, ResultState::Canceled, now);
            }
            _ => {}
        }
    }

    pub(crate) fn advance_runs(&mut self, now: &Now) {
        while let Some(&(t, run_id)) = self.run_timers.first() {
            if t > now.emu_ms {
                break;
            }
            self.run_timers.remove(&(t, run_id));
            let due = self
                .runs
                .get(&run_id)
                .is_some_and(|r| r.life_cycle == LifeCycleState::Running && r.ends_at == Some(t));
            if due {
                let result = if self.fail_runs {
                    ResultState::Failed
                } else {
                    ResultState::Success
                };
                self.finish_run(run_id, result, now);
            }
        }
    }

    /// Ends a run: TERMINATED with `result`, job cluster stopped, queue promoted, continuous
    /// job restarted when still unpaused.
    fn finish_run(&mut self, run_id: u64, result: ResultState, now: &Now) {
        let Some(r) = self.runs.get_mut(&run_id) else {
            return;
        };
        r.life_cycle = LifeCycleState::Terminated;
        r.result = Some(result);
        r.state_message = match result {
            ResultState::Canceled => "Run cancelled.".into(),
            ResultState::Failed => "Task failed with an error (emulated fault).".into(),
            _ => String::new(),
        };
        r.end_time = now.emu_ms;
        r.transition_at = None;
        let (job_id, name, trigger, cluster) = (
            r.job_id,
            r.run_name.clone(),
            r.trigger,
            r.cluster_id.clone(),
        );
        self.active_runs.remove(&run_id);
        self.timeline.record(
            now,
            EventKind::RunEnded,
            "run",
            run_id,
            &name,
            json!({"run_id": run_id, "job_id": job_id, "trigger": trigger, "result_state": result}),
        );
        if let Some(c) = cluster {
            let _ = self.terminate_cluster(&c, now, "JOB_FINISHED");
        }
        self.promote_queued(job_id, now);
        self.ensure_continuous(job_id, now);
    }

    fn promote_queued(&mut self, job_id: u64, now: &Now) {
        let Some(max) = self
            .jobs
            .get(&job_id)
            .map(|j| j.settings.max_concurrent_runs)
        else {
            return;
        };
        loop {
            let (active, _) = self.job_run_counts(job_id);
            if active >= max {
                return;
            }
            let next = self.active_runs.iter().copied().find(|id| {
                self.runs
                    .get(id)
                    .is_some_and(|r| r.job_id == job_id && r.life_cycle == LifeCycleState::Queued)
            });
            match next {
                Some(id) => self.begin_run(id, now),
                None => return,
            }
        }
    }

    /// An unpaused continuous job always has one active run.
    pub fn ensure_continuous(&mut self, job_id: u64, now: &Now) {
        let wants = self
            .jobs
            .get(&job_id)
            .is_some_and(|j| j.settings.continuous_active());
        if wants && self.job_run_counts(job_id) == (0, 0) {
            self.create_run(job_id, TriggerType::Continuous, now, Map::new(), true);
        }
    }

    /// `runs/cancel`: an active run goes TERMINATING (TERMINATED/CANCELED after the delay).
    pub fn cancel_run(&mut self, run_id: u64, now: &Now) -> ApiResult<()> {
        let r = self.runs.get(&run_id).ok_or_else(|| missing_run(run_id))?;
        match r.life_cycle {
            LifeCycleState::Queued => {
                if let Some(r) = self.runs.get_mut(&run_id) {
                    r.user_cancelled = true;
                }
                self.finish_run(run_id, ResultState::Canceled, now);
            }
            s if s.is_active() && s != LifeCycleState::Terminating => {
                let at = self.schedule_transition(now, Pending::Run(run_id), Transition::RunCancel);
                if let Some(r) = self.runs.get_mut(&run_id) {
                    r.life_cycle = LifeCycleState::Terminating;
                    r.state_message = "Cancelling run".into();
                    r.user_cancelled = true;
                    r.transition_at = Some(at);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn cancel_job_runs(&mut self, job_id: u64, only: Option<TriggerType>, now: &Now) {
        let ids: Vec<u64> = self
            .active_runs
            .iter()
            .copied()
            .filter(|id| {
                self.runs
                    .get(id)
                    .is_some_and(|r| r.job_id == job_id && only.is_none_or(|t| t == r.trigger))
            })
            .collect();
        for id in ids {
            let _ = self.cancel_run(id, now);
        }
    }

    /// Replaces a job's settings and applies the consequences: timeline events for each
    /// schedule/continuous/trigger kind that changed, cancelling the continuous run when
    /// paused, rescheduling, starting a continuous run when unpaused.
    pub fn set_job_settings(&mut self, job_id: u64, new: JobSettings, now: &Now) -> ApiResult<()> {
        validate_settings(&new)?;
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return Err(missing_job(job_id));
        };
        let before = active_kinds(&job.settings);
        let after = active_kinds(&new);
        let periodic_was = before[2].1;
        job.settings = new;
        if after[2].1 && !periodic_was {
            job.periodic_anchor_ms = now.emu_ms;
        }
        let name = job.settings.name.clone();
        for ((kind, b), (_, a)) in before.iter().zip(after.iter()) {
            if b != a {
                let ev = if *a {
                    EventKind::ScheduleUnpaused
                } else {
                    EventKind::SchedulePaused
                };
                self.timeline
                    .record(now, ev, "job", job_id, &name, json!({"kind": kind}));
            }
        }
        if before[1].1 && !after[1].1 {
            self.cancel_job_runs(job_id, Some(TriggerType::Continuous), now);
        }
        self.reschedule_job(job_id, now);
        self.ensure_continuous(job_id, now);
        Ok(())
    }
}

fn validate_settings(s: &JobSettings) -> ApiResult<()> {
    if let Some(sch) = &s.schedule {
        if parse_quartz(&sch.quartz_cron_expression).is_none() {
            return Err(ApiError::invalid(format!(
                "Invalid quartz_cron_expression: {}",
                sch.quartz_cron_expression
            )));
        }
        if chrono_tz::Tz::from_str(&sch.timezone_id).is_err() {
            return Err(ApiError::invalid(format!(
                "Invalid timezone_id: {}",
                sch.timezone_id
            )));
        }
    }
    if s.max_concurrent_runs > 1000 {
        return Err(ApiError::invalid(
            "max_concurrent_runs must be between 0 and 1000",
        ));
    }
    Ok(())
}

fn settings_from(v: Value) -> ApiResult<JobSettings> {
    serde_json::from_value(v).map_err(|e| ApiError::invalid(format!("Invalid job settings: {e}")))
}

/// Merges array entries by key (entries with the same key are replaced, others appended).
fn merge_keyed(old: Option<Value>, new: Value, key: &str) -> Value {
    let (Some(Value::Array(mut old)), Value::Array(new)) = (old, new.clone()) else {
        return new;
    };
    for item in new {
        let k = item.get(key).cloned();
        match old
            .iter_mut()
            .find(|o| k.is_some() && o.get(key) == k.as_ref())
        {
            Some(slot) => *slot = item,
            None => old.push(item),
        }
    }
    Value::Array(old)
}

#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let limit = match p.int("limit")? {
        None | Some(0) => 20,
        Some(l) if (1..=100).contains(&l) => l as usize,
        Some(l) => {
            return Err(ApiError::invalid(format!(
                "The limit {l} is invalid: must be between 1 and 100"
            )))
        }
    };
    let expand = p.bool("expand_tasks");
    let name = p
        .get("name")
        .filter(|n| !n.is_empty())
        .map(str::to_lowercase);
    let offset = p.int("offset")?.unwrap_or(0).max(0) as usize;
    let after: Option<u64> = match p.get("page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(
            page::decode(t, "jobs")?
                .parse()
                .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?,
        ),
        None => None,
    };
    let (w, _) = emu.world();
    let range = match after {
        Some(a) => w.jobs.range(a + 1..),
        None => w.jobs.range(..),
    };
    let mut it = range
        .map(|(_, j)| j)
        .filter(|j| {
            name.as_ref()
                .is_none_or(|n| j.settings.name.to_lowercase() == *n)
        })
        .skip(offset);
    let items: Vec<&crate::jobs::Job> = it.by_ref().take(limit).collect();
    let has_more = it.next().is_some();
    let mut out = json!({ "has_more": has_more });
    if !items.is_empty() {
        out["jobs"] = Value::Array(items.iter().map(|j| j.to_json(expand)).collect());
    }
    if has_more {
        if let Some(last) = items.last() {
            out["next_page_token"] = json!(page::encode(&format!("jobs:{}", last.job_id)));
        }
    }
    if after.is_some() {
        if let Some(first) = items.first() {
            out["prev_page_token"] = json!(page::encode(&format!("jobsprev:{}", first.job_id)));
        }
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_job(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let id = parse_id(&p, "job_id")?;
    let (w, _) = emu.world();
    let job = w.jobs.get(&id).ok_or_else(|| missing_job(id))?;
    Ok(Json(job.to_json(true)))
}

#[tracing::instrument(skip_all)]
async fn update(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: Value = parse_body(&body)?;
    let id = id_field(&b, "job_id")?;
    let new = match b.get("new_settings") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::invalid("new_settings must be an object")),
    };
    let remove: Vec<String> = match b.get("fields_to_remove") {
        None | Some(Value::Null) => vec![],
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| ApiError::invalid("fields_to_remove must be a list of strings"))?,
    };
    let (mut w, now) = emu.world();
    let job = w.jobs.get(&id).ok_or_else(|| missing_job(id))?;
    let mut cur = match json!(job.settings) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    for (k, v) in new {
        let merged = match k.as_str() {
            "tasks" => merge_keyed(cur.remove(&k), v, "task_key"),
            "job_clusters" => merge_keyed(cur.remove(&k), v, "job_cluster_key"),
            _ => v,
        };
        cur.insert(k, merged);
    }
    for f in &remove {
        cur.remove(f);
    }
    let settings = settings_from(Value::Object(cur))?;
    w.set_job_settings(id, settings, &now)?;
    Ok(Json(json!({})))
}

#[tracing::instrument(skip_all)]
async fn reset(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: Value = parse_body(&body)?;
    let id = id_field(&b, "job_id")?;
    let new = b
        .get("new_settings")
        .filter(|v| v.is_object())
        .cloned()
        .ok_or_else(|| ApiError::invalid("Missing required field: new_settings"))?;
    let settings = settings_from(new)?;
    let (mut w, now) = emu.world();
    w.set_job_settings(id, settings, &now)?;
    Ok(Json(json!({})))
}

#[tracing::instrument(skip_all)]
async fn run_now(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: Value = parse_body(&body)?;
    let id = id_field(&b, "job_id")?;
    let token = b
        .get("idempotency_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    if token.as_ref().is_some_and(|t| t.len() > 64) {
        return Err(ApiError::invalid(
            "idempotency_token must be at most 64 characters",
        ));
    }
    let params = b
        .get("job_parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let (mut w, now) = emu.world();
    let job = w.jobs.get(&id).ok_or_else(|| missing_job(id))?;
    let continuous = job.settings.continuous_active();
    if let Some(t) = &token {
        if let Some(&run_id) = w.idempotency.get(t) {
            return Ok(Json(json!({"run_id": run_id, "number_in_job": run_id})));
        }
    }
    let run_id = if continuous {
        w.cancel_job_runs(id, None, &now);
        w.create_run(id, TriggerType::Continuous, &now, params, true)
    } else {
        w.create_run(id, TriggerType::OneTime, &now, params, false)
    };
    if let Some(t) = token {
        w.idempotency.insert(t, run_id);
    }
    Ok(Json(json!({"run_id": run_id, "number_in_job": run_id})))
}

#[tracing::instrument(skip_all)]
async fn runs_list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let active_only = p.bool("active_only");
    let completed_only = p.bool("completed_only");
    if active_only && completed_only {
        return Err(ApiError::invalid(
            "active_only and completed_only cannot both be true",
        ));
    }
    let limit = match p.int("limit")? {
        None | Some(0) => 20,
        Some(l) if (1..=25).contains(&l) => l as usize,
        Some(l) => {
            return Err(ApiError::invalid(format!(
                "The limit {l} is invalid: must be between 1 and 25"
            )))
        }
    };
    let job_id = match p.get("job_id").filter(|s| !s.is_empty()) {
        Some(_) => Some(parse_id(&p, "job_id")?),
        None => None,
    };
    let from = p.int("start_time_from")?;
    let to = p.int("start_time_to")?;
    let offset = p.int("offset")?.unwrap_or(0).max(0) as usize;
    let expand = p.bool("expand_tasks");
    let before: Option<u64> = match p.get("page_token").filter(|t| !t.is_empty()) {
        Some(t) => Some(
            page::decode(t, "runs")?
                .parse()
                .map_err(|_| ApiError::invalid(format!("Invalid page token: {t}")))?,
        ),
        None => None,
    };
    let (w, _) = emu.world();
    let keep = |r: &&Run| {
        job_id.is_none_or(|j| r.job_id == j)
            && (!completed_only || !r.life_cycle.is_active())
            && from.is_none_or(|f| r.start_time >= f)
            && to.is_none_or(|t| r.start_time < t)
    };
    let upper = before.unwrap_or(u64::MAX);
    let mut it: Box<dyn Iterator<Item = &Run>> = if active_only {
        Box::new(
            w.active_runs
                .range(..upper)
                .rev()
                .filter_map(|id| w.runs.get(id)),
        )
    } else {
        Box::new(w.runs.range(..upper).rev().map(|(_, r)| r))
    };
    let mut it = it.by_ref().filter(keep).skip(offset);
    let items: Vec<&Run> = it.by_ref().take(limit).collect();
    let has_more = it.next().is_some();
    let mut out = json!({ "has_more": has_more });
    if !items.is_empty() {
        out["runs"] = Value::Array(
            items
                .iter()
                .map(|r| r.to_json(&w.url, w.workspace_id, expand))
                .collect(),
        );
    }
    if has_more {
        if let Some(last) = items.last() {
            out["next_page_token"] = json!(page::encode(&format!("runs:{}", last.run_id)));
        }
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn runs_get(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let id = parse_id(&p, "run_id")?;
    let (w, _) = emu.world();
    let r = w.runs.get(&id).ok_or_else(|| missing_run(id))?;
    Ok(Json(r.to_json(&w.url, w.workspace_id, true)))
}

#[tracing::instrument(skip_all)]
async fn runs_cancel(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: Value = parse_body(&body)?;
    let id = id_field(&b, "run_id")?;
    let (mut w, now) = emu.world();
    w.cancel_run(id, &now)?;
    Ok(Json(json!({})))
}

#[tracing::instrument(skip_all)]
async fn runs_cancel_all(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: Value = parse_body(&body)?;
    let id = id_field(&b, "job_id")?;
    let (mut w, now) = emu.world();
    if !w.jobs.contains_key(&id) {
        return Err(missing_job(id));
    }
    w.cancel_job_runs(id, None, &now);
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    let mut r = Router::new();
    for v in ["2.1", "2.2"] {
        r = r
            .route(&format!("/api/{v}/jobs/list"), get(list))
            .route(&format!("/api/{v}/jobs/get"), get(get_job))
            .route(&format!("/api/{v}/jobs/update"), post(update))
            .route(&format!("/api/{v}/jobs/reset"), post(reset))
            .route(&format!("/api/{v}/jobs/run-now"), post(run_now))
            .route(&format!("/api/{v}/jobs/runs/list"), get(runs_list))
            .route(&format!("/api/{v}/jobs/runs/get"), get(runs_get))
            .route(&format!("/api/{v}/jobs/runs/cancel"), post(runs_cancel))
            .route(
                &format!("/api/{v}/jobs/runs/cancel-all"),
                post(runs_cancel_all),
            );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    fn next(expr: &str, tz: &str, after: &str) -> chrono::DateTime<chrono_tz::Tz> {
        let tz: chrono_tz::Tz = tz.parse().unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(after)
            .unwrap()
            .with_timezone(&tz);
        parse_quartz(expr)
            .unwrap()
            .find_next_occurrence(&t, false)
            .unwrap()
    }

    #[test]
    fn quartz_semantics() {
        // 2024-06-01 is a Saturday.
        let n = next(
            "0 30 6 ? * MON-FRI",
            "Europe/Amsterdam",
            "2024-06-01T00:00:00Z",
        );
        assert_eq!(
            (n.weekday(), n.hour(), n.minute()),
            (chrono::Weekday::Mon, 6, 30)
        );
        // Quartz 1 = Sunday.
        let n = next("0 0 3 ? * 1", "America/New_York", "2024-06-03T00:00:00Z");
        assert_eq!((n.weekday(), n.hour()), (chrono::Weekday::Sun, 3));
        let n = next("0 * * * * ?", "UTC", "2024-06-01T00:00:30Z");
        assert_eq!((n.minute(), n.second()), (1, 0));
        let n = next("0 15 */4 * * ?", "UTC", "2024-06-01T00:20:00Z");
        assert_eq!((n.hour(), n.minute()), (4, 15));
        assert!(parse_quartz("not a cron").is_none());
    }
}
