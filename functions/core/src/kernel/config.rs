//! `DeployConfig`: the deployment's settings, read once from the Lambda environment the template
//! sets.

use super::StepError;

/// Deployment settings a Lambda reads from its environment.
#[derive(Debug, Clone, Default)]
pub struct DeployConfig {
    /// Ledger bucket (DR region).
    pub ledger_bucket: String,
    /// SNS topic for approvals and notifications.
    pub topic_arn: Option<String>,
    /// Failover state machine (for health-ingest).
    pub failover_state_machine_arn: Option<String>,
    /// Key of the plan in the ledger bucket (for health-ingest).
    pub plan_key: String,
    /// Base URL of the approval callback API (links in approval mails).
    pub approval_base_url: Option<String>,
    /// Secrets Manager id of the key that signs approval links.
    pub approval_secret_id: Option<String>,
    /// SNS topic that carries approval links, one message per approver (each subscription
    /// filtered on the `approver` attribute); never the broadcast topic.
    pub approval_topic_arn: Option<String>,
    /// This deployment (`AWS::StackId`): bound into every approval link.
    pub stack_id: String,
    /// Readiness drill state machine (scheduled drills).
    pub readiness_state_machine_arn: Option<String>,
    /// Full drill state machine (scheduled drills).
    pub full_drill_state_machine_arn: Option<String>,
    /// Fence watch state machine (started by a run whose fence loop gave up).
    pub fence_watch_state_machine_arn: Option<String>,
}

impl DeployConfig {
    /// Reads the template's variables: `LEDGER_BUCKET`, `PLAN_KEY` and `STACK_ID` (required),
    /// and the per-function ones (`TOPIC_ARN`, `APPROVAL_*`, the state machine ARNs).
    pub fn from_env() -> Result<Self, StepError> {
        // The template's Globals set these for every function: a missing one is a broken
        // deployment, refused at start (init error) rather than guessed.
        let required = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    StepError::InvalidInput(format!("environment variable {name} is not set"))
                })
        };
        let ledger_bucket = required("LEDGER_BUCKET")?;
        let plan_key = required("PLAN_KEY")?;
        let stack_id = required("STACK_ID")?;
        Ok(Self {
            ledger_bucket,
            topic_arn: std::env::var("TOPIC_ARN").ok().filter(|s| !s.is_empty()),
            failover_state_machine_arn: std::env::var("FAILOVER_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            plan_key,
            approval_base_url: std::env::var("APPROVAL_BASE_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            approval_secret_id: std::env::var("APPROVAL_SIGNING_SECRET_ID")
                .ok()
                .filter(|s| !s.is_empty()),
            approval_topic_arn: std::env::var("APPROVAL_TOPIC_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            stack_id,
            readiness_state_machine_arn: std::env::var("READINESS_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            full_drill_state_machine_arn: std::env::var("FULL_DRILL_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            fence_watch_state_machine_arn: std::env::var("FENCE_WATCH_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
        })
    }
}
