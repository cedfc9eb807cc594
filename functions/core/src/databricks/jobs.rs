//! Jobs API 2.2 (jobs and their runs).
//!
//! - `GET /api/2.2/jobs/list?limit(≤100)&page_token&expand_tasks` → `{jobs[], has_more, next_page_token}`.
//! - `GET /api/2.2/jobs/get?job_id=` (missing → 400 "does not exist" → NotFound).
//! - `POST /api/2.2/jobs/update {job_id, new_settings, fields_to_remove}`: every top-level field
//!   of `new_settings` is replaced whole — to pause a schedule, resend the whole `schedule`
//!   object with `pause_status` flipped ([`pause_field`] builds that).
//! - `POST /api/2.2/jobs/run-now {job_id, idempotency_token}`: the same token returns the same
//!   run, so a retried or resumed step never starts a second run.
//! - `GET /api/2.2/jobs/runs/list?active_only&job_id&limit(≤25)&page_token` →
//!   `{runs[], has_more, next_page_token}`; `POST jobs/runs/cancel {run_id}`, `runs/cancel-all {job_id}`.

use futures::{stream::BoxStream, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tracing::instrument;

use super::{id_newtype, paginate, ApiError, Family, Tags, WorkspaceClient};

id_newtype!(
    /// A job id.
    JobId(u64)
);
id_newtype!(
    /// A job run id.
    RunId(u64)
);

/// Whether a schedule, trigger or continuous setting is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PauseStatus {
    Paused,
    Unpaused,
}

/// A Quartz cron schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CronSchedule {
    pub quartz_cron_expression: String,
    #[serde(default = "utc")]
    pub timezone_id: String,
    /// Absent means UNPAUSED (the API's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_status: Option<PauseStatus>,
}

fn utc() -> String {
    "UTC".to_string()
}

/// A trigger (file arrival, periodic, table update); only `pause_status` is interpreted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_status: Option<PauseStatus>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Continuous execution setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Continuous {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_status: Option<PauseStatus>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// Job settings; fields Lifeboat does not interpret (tasks, clusters, ...) stay in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSettings {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<Continuous>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Which of a job's three activation mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `schedule` (cron).
    Schedule,
    /// `continuous`.
    Continuous,
    /// `trigger` (file arrival, periodic, table update).
    Trigger,
}

impl Activation {
    /// The top-level settings field.
    pub fn field(self) -> &'static str {
        match self {
            Activation::Schedule => "schedule",
            Activation::Continuous => "continuous",
            Activation::Trigger => "trigger",
        }
    }
}

impl JobSettings {
    /// The pause status of one activation, `None` when the job does not have it.
    /// An absent `pause_status` on a present object means UNPAUSED.
    pub fn pause_status(&self, which: Activation) -> Option<PauseStatus> {
        let status = match which {
            Activation::Schedule => self.schedule.as_ref().map(|s| s.pause_status),
            Activation::Continuous => self.continuous.as_ref().map(|s| s.pause_status),
            Activation::Trigger => self.trigger.as_ref().map(|s| s.pause_status),
        }?;
        Some(status.unwrap_or(PauseStatus::Unpaused))
    }

    /// Activations that are live now.
    pub fn unpaused(&self) -> Vec<Activation> {
        [
            Activation::Schedule,
            Activation::Continuous,
            Activation::Trigger,
        ]
        .into_iter()
        .filter(|a| self.pause_status(*a) == Some(PauseStatus::Unpaused))
        .collect()
    }
}

/// `new_settings` for `jobs/update` that flips one activation's pause status, resending the
/// whole object (the API replaces top-level fields whole). `None` when the job lacks it.
pub fn pause_field(
    settings: &JobSettings,
    which: Activation,
    status: PauseStatus,
) -> Option<Value> {
    let mut object = match which {
        Activation::Schedule => serde_json::to_value(settings.schedule.as_ref()?).ok()?,
        Activation::Continuous => serde_json::to_value(settings.continuous.as_ref()?).ok()?,
        Activation::Trigger => serde_json::to_value(settings.trigger.as_ref()?).ok()?,
    };
    object["pause_status"] = serde_json::to_value(status).ok()?;
    Some(json!({ which.field(): object }))
}

/// A job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub job_id: JobId,
    #[serde(default)]
    pub settings: JobSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_user_name: Option<String>,
}

/// A run's life-cycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    #[serde(other)]
    Other,
}

impl LifeCycleState {
    /// Active = QUEUED, PENDING, RUNNING, TERMINATING (the API's `active_only` set).
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

/// A run's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    pub life_cycle_state: LifeCycleState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
}

/// A job run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    pub run_id: RunId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(default)]
    pub start_time: i64,
    #[serde(default)]
    pub end_time: i64,
}

/// Filters of `runs/list`.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only QUEUED, PENDING, RUNNING, TERMINATING runs.
    pub active_only: bool,
    /// Only this job's runs.
    pub job_id: Option<JobId>,
}

/// The answer of `run-now`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunNow {
    pub run_id: RunId,
    #[serde(default)]
    pub number_in_job: Option<u64>,
}

#[derive(Deserialize)]
struct JobsPage {
    #[serde(default)]
    jobs: Vec<Job>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct RunsPage {
    #[serde(default)]
    runs: Vec<Run>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl WorkspaceClient {
    /// Streams every job (100 per page). With `expand_tasks` the task arrays are included.
    pub fn list_jobs(&self, expand_tasks: bool) -> BoxStream<'static, Result<Job, ApiError>> {
        let client = self.clone();
        paginate(move |token| {
            let client = client.clone();
            let mut query = vec![("limit", "100".to_string())];
            if expand_tasks {
                query.push(("expand_tasks", "true".to_string()));
            }
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            async move {
                let page: JobsPage = client
                    .get(Family::JobsRead, "/api/2.2/jobs/list", &query)
                    .await?;
                let next = if page.has_more {
                    page.next_page_token
                } else {
                    None
                };
                Ok((page.jobs, next))
            }
        })
    }

    /// Collects [`WorkspaceClient::list_jobs`].
    pub async fn all_jobs(&self) -> Result<Vec<Job>, ApiError> {
        self.list_jobs(false).try_collect().await
    }

    /// One job with its full settings.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_job(&self, id: JobId) -> Result<Job, ApiError> {
        self.get(
            Family::JobsRead,
            "/api/2.2/jobs/get",
            &[("job_id", id.0.to_string())],
        )
        .await
    }

    /// `jobs/update`: replaces each top-level field given in `new_settings` whole.
    #[instrument(skip(self, new_settings), fields(host = %self.host()))]
    pub async fn update_job(&self, id: JobId, new_settings: Value) -> Result<(), ApiError> {
        let _: Value = self
            .post(
                Family::JobsUpdate,
                "/api/2.2/jobs/update",
                json!({"job_id": id, "new_settings": new_settings}),
            )
            .await?;
        Ok(())
    }

    /// Triggers a run. `idempotency_token` (≤ 64 chars) makes retries and resumes safe.
    #[instrument(skip(self, job_parameters), fields(host = %self.host()))]
    pub async fn run_now(
        &self,
        id: JobId,
        idempotency_token: &str,
        job_parameters: Option<Value>,
    ) -> Result<RunNow, ApiError> {
        let token: String = idempotency_token.chars().take(64).collect();
        let mut body = json!({"job_id": id, "idempotency_token": token});
        if let Some(p) = job_parameters {
            body["job_parameters"] = p;
        }
        self.post(Family::JobsRead, "/api/2.2/jobs/run-now", body)
            .await
    }

    /// Streams runs (25 per page, the API's maximum).
    pub fn list_runs(&self, filter: RunFilter) -> BoxStream<'static, Result<Run, ApiError>> {
        let client = self.clone();
        paginate(move |token| {
            let client = client.clone();
            let mut query = vec![("limit", "25".to_string())];
            if filter.active_only {
                query.push(("active_only", "true".to_string()));
            }
            if let Some(j) = &filter.job_id {
                query.push(("job_id", j.0.to_string()));
            }
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            async move {
                let page: RunsPage = client
                    .get(Family::RunsRead, "/api/2.2/jobs/runs/list", &query)
                    .await?;
                let next = if page.has_more {
                    page.next_page_token
                } else {
                    None
                };
                Ok((page.runs, next))
            }
        })
    }

    /// Collects [`WorkspaceClient::list_runs`].
    pub async fn all_runs(&self, filter: RunFilter) -> Result<Vec<Run>, ApiError> {
        self.list_runs(filter).try_collect().await
    }

    /// One run.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_run(&self, id: RunId) -> Result<Run, ApiError> {
        self.get(
            Family::RunsRead,
            "/api/2.2/jobs/runs/get",
            &[("run_id", id.0.to_string())],
        )
        .await
    }

    /// Cancels a run (asynchronous).
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn cancel_run(&self, id: RunId) -> Result<(), ApiError> {
        let _: Value = self
            .post(
                Family::RunsWrite,
                "/api/2.2/jobs/runs/cancel",
                json!({"run_id": id}),
            )
            .await?;
        Ok(())
    }

    /// Cancels all active runs of a job.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn cancel_all_runs(&self, id: JobId) -> Result<(), ApiError> {
        let _: Value = self
            .post(
                Family::RunsWrite,
                "/api/2.2/jobs/runs/cancel-all",
                json!({"job_id": id}),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pause_field_resends_the_whole_object() {
        let settings: JobSettings = serde_json::from_value(json!({
            "name": "nightly",
            "schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "Europe/Amsterdam", "pause_status": "UNPAUSED"},
            "trigger": {"file_arrival": {"url": "s3://b/"}},
            "tasks": [{"task_key": "a"}]
        }))
        .unwrap();
        assert_eq!(
            settings.unpaused(),
            vec![Activation::Schedule, Activation::Trigger]
        );
        let v = pause_field(&settings, Activation::Schedule, PauseStatus::Paused).unwrap();
        assert_eq!(
            v,
            json!({"schedule": {"quartz_cron_expression": "0 0 2 * * ?", "timezone_id": "Europe/Amsterdam", "pause_status": "PAUSED"}})
        );
        let v = pause_field(&settings, Activation::Trigger, PauseStatus::Paused).unwrap();
        assert_eq!(
            v,
            json!({"trigger": {"file_arrival": {"url": "s3://b/"}, "pause_status": "PAUSED"}})
        );
        assert!(pause_field(&settings, Activation::Continuous, PauseStatus::Paused).is_none());
        // Unknown fields survive a round trip.
        assert!(serde_json::to_value(&settings)
            .unwrap()
            .get("tasks")
            .is_some());
    }
}
