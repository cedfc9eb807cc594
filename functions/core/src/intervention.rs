//! Intervention: after the first write to either site a run never abandons halfway. A step that
//! fails after that point (start-up, activation, validation, DNS) pauses the run on a
//! `waitForTaskToken` state and asks a human to choose — retry the step, continue past it, or
//! abort (fence the target again and restore the source) — with both sites' state in the
//! request. The task token lives only in `runs/<id>/intervention.json`, like the approval's.
//!
//! Decisions come from the CLI (`lifeboat intervene`) or the console
//! (`send-task-success --task-output '{"action": "retry"}'`); both end in the same state
//! machine Choice, which treats anything but a known action as "ask again".

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use std::time::{Duration, Instant};

use crate::ledger::keys;
use crate::{
    fence::{inventory, FenceRecord},
    kernel::{Deps, StepError},
    ledger::Written,
    run::{RunContext, RunId},
    secret::Secret,
};

/// What the human chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionAction {
    /// Run the failed step again.
    Retry,
    /// Accept the failure and go on with the next step.
    Continue,
    /// Stop: fence the target again and restore what was active at the source.
    Abort,
}

impl InterventionAction {
    /// Wire name (the state machine's Choice compares it).
    pub fn as_str(self) -> &'static str {
        match self {
            InterventionAction::Retry => "retry",
            InterventionAction::Continue => "continue",
            InterventionAction::Abort => "abort",
        }
    }

    /// Parses a wire name, naming the accepted ones on error.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "retry" => Ok(Self::Retry),
            "continue" => Ok(Self::Continue),
            "abort" => Ok(Self::Abort),
            other => Err(format!(
                "unknown intervention action {other:?}: use retry, continue or abort"
            )),
        }
    }
}

/// One decision, kept in the record's history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InterventionDecision {
    /// The step that had failed.
    pub failed_state: String,
    /// The choice.
    pub action: InterventionAction,
    /// Who chose.
    pub who: String,
    /// How (cli, console).
    pub channel: String,
    /// Why, in their words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When.
    pub decided_at: DateTime<Utc>,
}

/// A site's state when the run paused, for the human and the report.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiteState {
    /// Which site (`primary`, `dr`).
    pub site: String,
    /// What the site is doing, in a line (fence status, what is started, or unreachable).
    pub summary: String,
    /// Active resources by kind, when the site answered.
    #[serde(default)]
    pub active: Vec<(String, usize)>,
}

/// `runs/<id>/intervention.json`: the pending request (with its token) and the history.
#[derive(Clone, Serialize, Deserialize)]
pub struct InterventionRecord {
    /// Run.
    pub run_id: String,
    /// Token of the waiting state; cleared once decided.
    #[serde(default)]
    pub task_token: Option<String>,
    /// When the pending request was made.
    pub requested_at: DateTime<Utc>,
    /// The state that failed.
    pub failed_state: String,
    /// Its error name and cause.
    pub error: String,
    /// Both sites' state at the pause.
    pub sites: Vec<SiteState>,
    /// Every decision of the run, oldest first.
    #[serde(default)]
    pub history: Vec<InterventionDecision>,
}

impl std::fmt::Debug for InterventionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InterventionRecord")
            .field("run_id", &self.run_id)
            .field("failed_state", &self.failed_state)
            .field("pending", &self.task_token.is_some())
            .finish_non_exhaustive()
    }
}

/// The longest accepted comment.
pub const MAX_COMMENT: usize = 1000;

/// Why a decision was not taken.
#[derive(Debug, thiserror::Error)]
pub enum InterventionError {
    /// Nothing is waiting for a decision.
    #[error("run {0} is not paused for intervention")]
    NotPaused(String),
    /// Another decision won the race.
    #[error("run {0} changed while deciding (someone else decided); look again")]
    Concurrent(String),
    /// A blank identity cannot decide.
    #[error("a decision needs the identity of who takes it")]
    NoIdentity,
    /// Comments are for people; a novel is an attack on the record.
    #[error("the comment is {0} characters; keep it under {MAX_COMMENT}")]
    CommentTooLong(usize),
    /// Ledger or Step Functions failure.
    #[error(transparent)]
    Step(#[from] StepError),
}

/// Stores a pause request (keeping the run's earlier decisions) and returns the record.
pub async fn record_request(
    deps: &Deps,
    run: &RunContext,
    task_token: &str,
    failed_state: &str,
    error: String,
    sites: Vec<SiteState>,
) -> Result<InterventionRecord, StepError> {
    let key = keys::intervention(&run.run_id);
    let history = deps
        .ledger
        .get::<InterventionRecord>(&key)
        .await?
        .map(|v| v.value.history)
        .unwrap_or_default();
    let record = InterventionRecord {
        run_id: run.run_id.0.clone(),
        task_token: Some(task_token.to_string()),
        requested_at: Utc::now(),
        failed_state: failed_state.to_string(),
        error,
        sites,
        history,
    };
    deps.ledger.put(&key, &record).await?;
    Ok(record)
}

/// Records a decision (single use: `If-Match` on the record) and resumes the paused state with
/// `{"action": ...}`.
pub async fn decide(
    deps: &Deps,
    run_id: &RunId,
    action: InterventionAction,
    who: &str,
    channel: &str,
    comment: Option<String>,
) -> Result<InterventionDecision, InterventionError> {
    if who.trim().is_empty() {
        return Err(InterventionError::NoIdentity);
    }
    if let Some(n) = comment
        .as_ref()
        .map(|c| c.chars().count())
        .filter(|n| *n > MAX_COMMENT)
    {
        return Err(InterventionError::CommentTooLong(n));
    }
    let key = keys::intervention(run_id);
    let Some(current) = deps
        .ledger
        .get::<InterventionRecord>(&key)
        .await
        .map_err(StepError::from)?
    else {
        return Err(InterventionError::NotPaused(run_id.0.clone()));
    };
    let mut record = current.value;
    let Some(token) = record.task_token.take() else {
        return Err(InterventionError::NotPaused(run_id.0.clone()));
    };
    let decision = InterventionDecision {
        failed_state: record.failed_state.clone(),
        action,
        who: who.trim().to_string(),
        channel: channel.to_string(),
        comment,
        decided_at: Utc::now(),
    };
    record.history.push(decision.clone());
    match deps
        .ledger
        .replace(&key, &record, &current.etag)
        .await
        .map_err(StepError::from)?
    {
        Written::Ok(_) => {}
        Written::Conflict => return Err(InterventionError::Concurrent(run_id.0.clone())),
    }
    let output = serde_json::json!({
        "action": action.as_str(),
        "who": decision.who,
        "channel": channel,
    });
    if let Err(e) = deps
        .aws
        .sfn
        .send_task_success()
        .task_token(token)
        .output(output.to_string())
        .send()
        .await
    {
        warn!(error = %crate::aws::sdk_error_message(&e), "intervention not delivered");
        return Err(StepError::aws("states", &e).into());
    }
    info!(action = action.as_str(), who, "intervention decided");
    Ok(decision)
}

/// A step failed after the first write: records both sites' state with the token (the
/// intervention record) and asks for retry / continue / abort. Returns the record and whether
/// the request was published.
pub async fn request(
    deps: &Deps,
    run: &RunContext,
    task_token: &Secret,
    failed_state: Option<&str>,
    error: Option<&serde_json::Value>,
) -> Result<(InterventionRecord, bool), StepError> {
    let failed_state = failed_state.unwrap_or("unknown").to_string();
    let error = error
        .map(|e| {
            format!(
                "{}: {}",
                e.get("Error").and_then(|v| v.as_str()).unwrap_or("Error"),
                e.get("Cause")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .chars()
                    .take(500)
                    .collect::<String>()
            )
        })
        .unwrap_or_else(|| "unknown error".into());
    let mut sites = Vec::new();
    let (source_role, target_role) = run.direction.roles();
    for role in [source_role, target_role] {
        let mut state = SiteState {
            site: format!("{role:?}").to_lowercase(),
            ..Default::default()
        };
        let fence = deps
            .ledger
            .get::<FenceRecord>(&keys::fence(&run.run_id, role))
            .await?
            .map(|v| v.value);
        let mut summary = match (&fence, role == source_role) {
            (Some(f), _) => {
                let confirmed = f.resources.values().filter(|r| r.confirmed).count();
                format!(
                    "fence {:?}: {confirmed} of {} resources confirmed fenced",
                    f.status,
                    f.resources.len()
                )
            }
            (None, true) => "no fence record yet".to_string(),
            (None, false) => "target: started by this run as far as the step records show".into(),
        };
        if let Ok(client) = deps.workspaces.client(run.plan.site(role)).await {
            let client = client.with_deadline(Instant::now() + Duration::from_secs(10));
            match inventory(&client, &run.plan).await {
                Ok(inv) => state.active = inv.counts(),
                Err(e) => summary.push_str(&format!("; unreachable now ({:?})", e.kind)),
            }
        }
        state.summary = summary;
        sites.push(state);
    }
    let record = record_request(
        deps,
        run,
        task_token.expose(),
        &failed_state,
        error.clone(),
        sites,
    )
    .await?;
    let mut message = format!(
        "Lifeboat PAUSED run {run_id} ({kind} of plan '{plan}'): step {failed_state} failed after \
         the first write to a site.\n\nError: {error}\n\nBoth sites now:\n",
        run_id = run.run_id,
        kind = run.kind.as_str(),
        plan = run.plan.name,
    );
    for s in &record.sites {
        message.push_str(&format!("- {}: {}", s.site, s.summary));
        if !s.active.is_empty() {
            let active: Vec<String> = s.active.iter().map(|(k, n)| format!("{n} {k}")).collect();
            message.push_str(&format!(" — active: {}", active.join(", ")));
        }
        message.push('\n');
    }
    message.push_str(&format!(
        "\nDecide (nothing more happens until someone does):\n\
         - lifeboat intervene --run {id} --action retry     (run {failed_state} again)\n\
         - lifeboat intervene --run {id} --action continue  (accept and go on)\n\
         - lifeboat intervene --run {id} --action abort     (fence the target again, restore the source)\n\
         - Console: send task success with output {{\"action\": \"retry\"}} (or continue / abort)\n",
        id = run.run_id
    ));
    let mut published = false;
    if let Some(topic) = &deps.config.topic_arn {
        deps.aws
            .sns
            .publish()
            .topic_arn(topic)
            .subject(format!(
                "[Lifeboat] PAUSED: {} of {} needs a decision",
                run.kind.as_str(),
                run.plan.name
            ))
            .message(&message)
            .send()
            .await
            .map_err(|e| StepError::aws("sns", &e))?;
        published = true;
    }
    info!(failed_state, "paused for intervention");
    Ok((record, published))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_by_name_only() {
        let table = [
            ("retry", Ok(InterventionAction::Retry)),
            (" Continue ", Ok(InterventionAction::Continue)),
            ("ABORT", Ok(InterventionAction::Abort)),
            ("approve", Err(())),
            ("", Err(())),
        ];
        for (input, want) in table {
            assert_eq!(
                InterventionAction::parse(input).map_err(|_| ()),
                want,
                "{input:?}"
            );
        }
    }
}
