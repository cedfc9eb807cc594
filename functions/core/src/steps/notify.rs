//! `notify`: the seed's failover step 5 — tell platform users what is happening, at each
//! milestone, on every channel: the deployment's broadcast SNS topic (never the approval
//! topic) and the plan's webhooks (`notifications.webhook_secret_ids`: Slack, Teams, generic).
//!
//! Two inputs: a Lifeboat lifecycle event (EventBridge rule `source: lifeboat` → this
//! function; see [`crate::events`]), rendered by [`crate::announce`]; or a direct milestone
//! from a state machine (`{"run", "milestone", "detail"}`: approval timed out, fence watch).
//! A failed delivery is retried briefly, recorded in the ledger
//! (`runs/{run}/announcements/…`) and reported — never fatal to a run.

use std::time::Duration;

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{instrument, warn};

use crate::announce::{
    self,
    channels::{self, Channel, Delivery},
    Announcement, AnnouncementRecord, Tone,
};
use crate::kernel::{Deps, StepError};
use crate::run::RunContext;
use crate::{
    ledger::keys::{self, ReportFormat},
    run::RunId,
};

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

/// What the function is invoked with.
#[derive(Debug, Clone)]
pub enum NotifyRequest {
    /// A lifecycle event from EventBridge (`detail-type`, `detail`).
    Event {
        /// The event's `detail-type`.
        detail_type: String,
        /// The event's `detail`.
        detail: Value,
    },
    /// A milestone a state machine names.
    Direct(Box<NotifyInput>),
}

impl<'de> Deserialize<'de> for NotifyRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        match v.get("detail-type") {
            Some(dt) => {
                if v.get("source").and_then(Value::as_str) != Some(crate::events::SOURCE) {
                    return Err(D::Error::custom("field `source`: not a Lifeboat event"));
                }
                let detail_type = dt
                    .as_str()
                    .ok_or_else(|| D::Error::custom("field `detail-type`: not a string"))?
                    .to_string();
                let detail = v
                    .get("detail")
                    .filter(|d| d.is_object())
                    .cloned()
                    .ok_or_else(|| D::Error::custom("field `detail`: missing or not an object"))?;
                Ok(NotifyRequest::Event {
                    detail_type,
                    detail,
                })
            }
            None => serde_path_to_error::deserialize(v)
                .map(|i| NotifyRequest::Direct(Box::new(i)))
                .map_err(|e| D::Error::custom(format!("field `{}`: {}", e.path(), e.inner()))),
        }
    }
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
    /// Whether the broadcast topic took the message.
    pub published: bool,
    /// The subject line.
    pub subject: String,
    /// Every channel's delivery.
    #[serde(default)]
    pub deliveries: Vec<Delivery>,
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

/// Tells the milestone on every channel.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps, request: NotifyRequest) -> Result<NotifyOutput, StepError> {
    match request {
        NotifyRequest::Event {
            detail_type,
            detail,
        } => {
            let plan = crate::kernel::load_plan(deps).await?;
            // The report link is built here from the ledger, never taken from the event.
            let report_url = detail
                .get("run_id")
                .and_then(Value::as_str)
                .map(|run| keys::report(&RunId(run.to_string()), ReportFormat::Json))
                .filter(|key| detail.get("report_key").and_then(Value::as_str) == Some(key))
                .map(|key| crate::events::report_console_url(deps, &key));
            let a = announce::announcement(&detail_type, &detail, &plan, report_url)
                .map_err(|e| StepError::InvalidInput(e.to_string()))?;
            let at = detail
                .get("at")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(chrono::Utc::now);
            deliver(
                deps,
                &a,
                &detail,
                &plan.notifications.webhook_secret_ids,
                at,
            )
            .await
        }
        NotifyRequest::Direct(input) => {
            let (subject, body) = message(&input.run, input.milestone, input.detail.as_deref());
            if input.milestone == Milestone::ApprovalTimedOut {
                crate::metrics::emit("ApprovalTimedOut", 1.0, &input.run.plan.name);
            }
            let milestone = serde_json::to_value(input.milestone)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let a = Announcement {
                detail_type: "Lifeboat Notice",
                run_id: input.run.run_id.0.clone(),
                plan: input.run.plan.name.clone(),
                title: subject.trim_start_matches("[Lifeboat] ").to_string(),
                text: body,
                facts: vec![("Run".into(), input.run.run_id.0.clone())],
                tone: match input.milestone {
                    Milestone::ApprovalTimedOut | Milestone::RunFailed => Tone::Bad,
                    _ => Tone::Info,
                },
                report_url: None,
            };
            let detail = serde_json::json!({"run_id": a.run_id, "plan": a.plan,
                "milestone": milestone, "kind": input.run.kind.as_str()});
            let ids = input.run.plan.notifications.webhook_secret_ids.clone();
            deliver(deps, &a, &detail, &ids, chrono::Utc::now()).await
        }
    }
}

/// Sends to the broadcast topic and every webhook concurrently, then records the outcome.
async fn deliver(
    deps: &Deps,
    a: &Announcement,
    detail: &Value,
    webhook_secret_ids: &[String],
    at: chrono::DateTime<chrono::Utc>,
) -> Result<NotifyOutput, StepError> {
    let subject = channels::sns_subject(a);
    let sns = async {
        let topic = deps.config.topic_arn.as_ref()?;
        let sent = deps
            .aws
            .sns
            .publish()
            .topic_arn(topic)
            .subject(&subject)
            .message(channels::sns_body(a))
            .send()
            .await;
        Some(Delivery {
            channel: "sns".into(),
            ok: sent.is_ok(),
            attempts: 1,
            error: sent.err().map(|e| crate::aws::sdk_error_message(&e)),
        })
    };
    let http = crate::http::client_builder()
        .connect_timeout(Duration::from_secs(3))
        .build()
        .map_err(|e| StepError::InvalidInput(format!("http client: {e}")))?;
    let webhooks = webhook_secret_ids.iter().map(|id| {
        let http = &http;
        async move {
            let value = match crate::kernel::read_secret(&deps.aws.secrets, id).await {
                Ok(v) => v,
                Err(e) => return failed(format!("secret:{id}"), e.to_string()),
            };
            match Channel::parse(id, value.expose()) {
                Ok(channel) => {
                    let body = channel.payload(a, detail);
                    channels::post(http, &channel, &body, &crate::retry::RetryPolicy::WEBHOOK).await
                }
                Err(e) => failed(format!("secret:{id}"), e),
            }
        }
    });
    let (sns, webhooks) = futures::join!(sns, join_all(webhooks));
    let published = sns.as_ref().is_some_and(|d| d.ok);
    let deliveries: Vec<Delivery> = sns.into_iter().chain(webhooks).collect();
    for d in deliveries.iter().filter(|d| !d.ok) {
        warn!(channel = %d.channel, error = ?d.error, "announcement not delivered");
    }
    let record = AnnouncementRecord {
        milestone: a.detail_type.to_string(),
        title: a.title.clone(),
        at,
        deliveries: deliveries.clone(),
    };
    let slug: String = a
        .detail_type
        .trim_start_matches("Lifeboat ")
        .to_ascii_lowercase()
        .replace(' ', "-");
    let key = keys::announcement(&RunId(a.run_id.clone()), at, &slug);
    if let Err(e) = deps.ledger.put(&key, &record).await {
        // The messages went out; only their record is missing.
        warn!(error = %e, "announcement record not written");
    }
    crate::metrics::emit(
        "AnnouncementsFailed",
        deliveries.iter().filter(|d| !d.ok).count() as f64,
        &a.plan,
    );
    Ok(NotifyOutput {
        published,
        subject,
        deliveries,
    })
}

fn failed(channel: String, error: String) -> Delivery {
    Delivery {
        channel,
        ok: false,
        attempts: 0,
        error: Some(error),
    }
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
        crate::incident::run_context(&plan, kind, Direction::Failover, trigger, None)
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
