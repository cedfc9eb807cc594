//! `notify`: the seed's failover step 5 — tell platform users what is happening, at each
//! milestone (SNS topic of the deployment; subscribers fan out to e-mail, chat, pagers).

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{Deps, StepError};
use crate::run::RunContext;

/// Milestones users hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    /// Approved; the failover starts.
    FailoverStarted,
    /// The approval request expired (escalation).
    ApprovalTimedOut,
    /// The run ended (see the report).
    RunFinished,
    /// The run failed.
    RunFailed,
    /// The fence watch confirmed the old site fenced, after the run (a returning primary).
    FenceWatchConfirmed,
}

/// Input.
#[derive(Debug, Clone, Deserialize)]
pub struct NotifyInput {
    /// The run.
    pub run: RunContext,
    /// Which milestone.
    pub milestone: Milestone,
    /// Extra detail (e.g. the new workspace URL).
    #[serde(default)]
    pub detail: Option<String>,
}

/// Output.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifyOutput {
    /// Whether a message went out.
    pub published: bool,
    /// The subject line.
    pub subject: String,
}

/// Pure: the user-facing text of a milestone.
pub fn message(run: &RunContext, milestone: Milestone, detail: Option<&str>) -> (String, String) {
    let (from, to) = run.direction.roles();
    let target_url = &run.plan.site(to).workspace_url;
    let (subject, body) = match milestone {
        Milestone::FailoverStarted => (
            format!("[Lifeboat] {} of {} in progress", run.kind.as_str(), run.plan.name),
            format!(
                "A {} from {from:?} to {to:?} was approved and is in progress. Expect interruptions; \
                 do not create new jobs or clusters. The Databricks workspace will be {target_url}.",
                run.kind.as_str()
            ),
        ),
        Milestone::ApprovalTimedOut => (
            format!("[Lifeboat] ESCALATION: approval for {} timed out", run.plan.name),
            format!(
                "Nobody answered the approval request of run {} in time. Nothing was changed at either site. \
                 Start a new run if a failover is still needed.",
                run.run_id
            ),
        ),
        // A readiness drill moves nothing: its users keep the workspace they have.
        Milestone::RunFinished if run.kind == crate::run::RunKind::Readiness => (
            format!("[Lifeboat] readiness drill of {} finished", run.plan.name),
            format!(
                "Readiness drill {} finished; nothing moved, the workspace URL is unchanged.",
                run.run_id
            ),
        ),
        Milestone::RunFinished => (
            format!("[Lifeboat] {} of {} finished", run.kind.as_str(), run.plan.name),
            format!("Run {} finished. Workspace URL now: {target_url}.", run.run_id),
        ),
        Milestone::RunFailed => (
            format!("[Lifeboat] {} of {} FAILED", run.kind.as_str(), run.plan.name),
            format!("Run {} failed; see its report in the ledger.", run.run_id),
        ),
        Milestone::FenceWatchConfirmed => (
            format!("[Lifeboat] {from:?} site of {} now confirmed fenced", run.plan.name),
            format!(
                "The fence watch of run {} confirmed every resource of the {from:?} site fenced \
                 (it came back and was fenced, or finished stopping). Only {to:?} is active. \
                 When: see runs/{}/fence-watch.json in the ledger.",
                run.run_id, run.run_id
            ),
        ),
    };
    let body = match detail {
        Some(d) => format!("{body}\n\n{d}"),
        None => body,
    };
    (subject, body)
}

/// Publishes the milestone.
#[instrument(skip_all, fields(run = %input.run.run_id, milestone = ?input.milestone))]
pub async fn handle(deps: &Deps, input: NotifyInput) -> Result<NotifyOutput, StepError> {
    let (subject, body) = message(&input.run, input.milestone, input.detail.as_deref());
    if input.milestone == Milestone::ApprovalTimedOut {
        crate::metrics::emit("ApprovalTimedOut", 1.0, &input.run.plan.name);
    }
    let mut published = false;
    if let Some(topic) = &deps.config.topic_arn {
        deps.aws
            .sns
            .publish()
            .topic_arn(topic)
            .subject(&subject)
            .message(body)
            .send()
            .await
            .map_err(|e| StepError::aws("sns", &e))?;
        published = true;
    }
    Ok(NotifyOutput { published, subject })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        plan::{Direction, Plan},
        run::{RunKind, Trigger, TriggerSource},
    };

    fn run(kind: RunKind) -> RunContext {
        let plan = Plan::from_toml(include_str!("../../../../lifeboat.toml"), "lifeboat.toml")
            .expect("the example plan");
        let trigger = Trigger {
            source: TriggerSource::Operator,
            summary: "test".into(),
            declared_at: chrono::Utc::now(),
            event_arn: None,
            incident_started_at: None,
        };
        super::super::health_ingest::run_context(&plan, kind, Direction::Failover, trigger, None)
    }

    #[test]
    fn only_a_run_that_moved_announces_a_new_url() {
        let failover = run(RunKind::Failover);
        let dr = failover.plan.sites.dr.workspace_url.clone();
        let (_, body) = message(&failover, Milestone::RunFinished, None);
        assert!(body.contains(&dr), "{body}");
        let (subject, body) = message(&run(RunKind::Readiness), Milestone::RunFinished, None);
        assert!(
            !body.contains(&dr) && body.contains("nothing moved"),
            "{body}"
        );
        assert!(subject.contains("readiness"), "{subject}");
    }
}
