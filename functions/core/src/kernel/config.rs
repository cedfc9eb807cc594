//! `DeployConfig`: the deployment's settings, read once from the Lambda environment the template
//! sets.

use super::StepError;

/// Deployment settings a Lambda reads from its environment.
#[derive(Debug, Clone)]
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
    /// Sweeps per fence watch execution before it continues as a new one
    /// (`FENCE_WATCH_MAX_SWEEPS`).
    pub fence_watch_max_sweeps: u32,
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
            fence_watch_max_sweeps: sweeps_per_execution(
                std::env::var("FENCE_WATCH_MAX_SWEEPS").ok().as_deref(),
            )
            .map_err(StepError::InvalidInput)?,
        })
    }
}

/// Most sweeps one watch execution may make (checked at compile time against the quota). A sweep iteration costs at most ~25 history
/// events (the sweep task with four retries, two choices, the counter, the wait); 900 of them
/// stay well under the 25,000 at which Step Functions fails an execution.
pub const MAX_SWEEPS_PER_EXECUTION: u32 = 900;

/// Sweeps per watch execution unless the deployment says otherwise (~4 h at 30 s).
pub const DEFAULT_SWEEPS_PER_EXECUTION: u32 = 500;

/// Pure: the sweeps per fence watch execution of a deployment, refused (naming the setting) when the bound is 0
/// or lets an execution reach the history quota.
pub fn sweeps_per_execution(raw: Option<&str>) -> Result<u32, String> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_SWEEPS_PER_EXECUTION);
    };
    match raw.parse::<u32>() {
        Ok(n) if (1..=MAX_SWEEPS_PER_EXECUTION).contains(&n) => Ok(n),
        _ => Err(format!(
            "FENCE_WATCH_MAX_SWEEPS is {raw:?}: it must be 1–{MAX_SWEEPS_PER_EXECUTION} (sweeps \
             per watch execution; more would reach Step Functions' 25,000 history events)"
        )),
    }
}

impl Default for DeployConfig {
    /// Empty names, no optional resources, the default sweeps per watch execution.
    fn default() -> Self {
        DeployConfig {
            ledger_bucket: String::new(),
            topic_arn: None,
            failover_state_machine_arn: None,
            plan_key: String::new(),
            approval_base_url: None,
            approval_secret_id: None,
            approval_topic_arn: None,
            stack_id: String::new(),
            readiness_state_machine_arn: None,
            full_drill_state_machine_arn: None,
            fence_watch_state_machine_arn: None,
            fence_watch_max_sweeps: DEFAULT_SWEEPS_PER_EXECUTION,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_bound_keeps_an_execution_under_the_history_quota() {
        let table = [
            (None, Ok(DEFAULT_SWEEPS_PER_EXECUTION)),
            (Some(""), Ok(DEFAULT_SWEEPS_PER_EXECUTION)),
            (Some("3"), Ok(3)),
            (Some("900"), Ok(900)),
            (Some("0"), Err(())),
            (Some("901"), Err(())),
            (Some("2700"), Err(())),
            (Some("-1"), Err(())),
            (Some("many"), Err(())),
        ];
        for (raw, want) in table {
            let got = sweeps_per_execution(raw);
            assert_eq!(got.clone().map_err(|_| ()), want, "{raw:?}");
            if let Err(e) = got {
                assert!(e.contains("FENCE_WATCH_MAX_SWEEPS"), "{e}");
            }
        }
        // The bound times the costliest iteration stays under the quota.
        const { assert!(MAX_SWEEPS_PER_EXECUTION * 25 + 100 < 25_000) };
    }
}
