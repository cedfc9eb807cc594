//! The dispatcher, above the steps: the [`Step`] of each Lambda function, its [`Entry`], and
//! [`invoke_entry`] — the one path of every Lambda and of the local host: parse the payload,
//! run the step, record its outcome in the ledger, announce its milestone. The steps below know
//! nothing of it (mini-redis's `cmd/mod.rs` is the model: the commands, then one dispatch).

pub mod entry;
pub mod milestones;

use std::time::Instant;

use crate::kernel::{recorded, Deps, StepError, VERIFY_CLIENTS};

/// The Lambda functions, by the name they have in `functions/`, the template and the state
/// machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    HealthIngest,
    ApprovalCallback,
    RequestApproval,
    RunLedger,
    ShutdownSweep,
    DataFence,
    DrConfigCheck,
    ReplicationCheck,
    DataSourcesCheck,
    Notify,
    DrStartup,
    ActivateSchedules,
    ValidateWorkspace,
    DnsSwitch,
    CanaryWriter,
    ManagedFailover,
    ReadinessCheck,
}

impl Step {
    /// Every step.
    pub const ALL: [Step; 17] = [
        Step::HealthIngest,
        Step::ApprovalCallback,
        Step::RequestApproval,
        Step::RunLedger,
        Step::ShutdownSweep,
        Step::DataFence,
        Step::DrConfigCheck,
        Step::ReplicationCheck,
        Step::DataSourcesCheck,
        Step::Notify,
        Step::DrStartup,
        Step::ActivateSchedules,
        Step::ValidateWorkspace,
        Step::DnsSwitch,
        Step::CanaryWriter,
        Step::ManagedFailover,
        Step::ReadinessCheck,
    ];

    /// The function name (directory under `functions/`).
    pub fn name(self) -> &'static str {
        match self {
            Step::HealthIngest => "health-ingest",
            Step::ApprovalCallback => "approval-callback",
            Step::RequestApproval => "request-approval",
            Step::RunLedger => "run-ledger",
            Step::ShutdownSweep => "shutdown-sweep",
            Step::DataFence => "data-fence",
            Step::DrConfigCheck => "dr-config-check",
            Step::ReplicationCheck => "replication-check",
            Step::DataSourcesCheck => "data-sources-check",
            Step::Notify => "notify",
            Step::DrStartup => "dr-startup",
            Step::ActivateSchedules => "activate-schedules",
            Step::ValidateWorkspace => "validate-workspace",
            Step::DnsSwitch => "dns-switch",
            Step::CanaryWriter => "canary-writer",
            Step::ManagedFailover => "managed-failover",
            Step::ReadinessCheck => "readiness-check",
        }
    }

    /// Finds a step by function name, or by a Lambda ARN ending in it (optionally qualified).
    pub fn from_function(name_or_arn: &str) -> Option<Step> {
        let name = match name_or_arn.split(":function:").nth(1) {
            Some(rest) => rest.split(':').next().unwrap_or(rest),
            None => name_or_arn,
        };
        // Deployed names carry a stack prefix (`lifeboat-shutdown-sweep`): match the suffix.
        Step::ALL
            .into_iter()
            .filter(|s| name == s.name() || name.ends_with(&format!("-{}", s.name())))
            .max_by_key(|s| s.name().len())
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    step: Step,
    payload: serde_json::Value,
) -> Result<T, StepError> {
    serde_path_to_error::deserialize(payload).map_err(|e| {
        StepError::InvalidInput(format!(
            "{}: field `{}`: {}",
            step.name(),
            e.path(),
            e.inner()
        ))
    })
}

fn to_value<T: serde::Serialize>(v: T) -> Result<serde_json::Value, StepError> {
    serde_json::to_value(v).map_err(|e| StepError::InvalidInput(e.to_string()))
}

/// A step's handler on its JSON payload (it parses its own input).
pub type Call = for<'a> fn(
    &'a Deps,
    serde_json::Value,
    Instant,
) -> futures::future::BoxFuture<'a, Result<serde_json::Value, StepError>>;

/// One step and its handler. A function's `main.rs` names only its own entry
/// ([`entry::NOTIFY`], ...), so the linker keeps that step's code and drops the others': each
/// binary carries one step, not fifteen.
#[derive(Clone, Copy)]
pub struct Entry {
    /// The step.
    pub step: Step,
    call: Call,
}

impl Step {
    /// This step's entry (the local host runs any step in-process through it).
    pub fn entry(self) -> Entry {
        match self {
            Step::HealthIngest => entry::HEALTH_INGEST,
            Step::ApprovalCallback => entry::APPROVAL_CALLBACK,
            Step::RequestApproval => entry::REQUEST_APPROVAL,
            Step::RunLedger => entry::RUN_LEDGER,
            Step::ShutdownSweep => entry::SHUTDOWN_SWEEP,
            Step::DataFence => entry::DATA_FENCE,
            Step::DrConfigCheck => entry::DR_CONFIG_CHECK,
            Step::ReplicationCheck => entry::REPLICATION_CHECK,
            Step::DataSourcesCheck => entry::DATA_SOURCES_CHECK,
            Step::Notify => entry::NOTIFY,
            Step::DrStartup => entry::DR_STARTUP,
            Step::ActivateSchedules => entry::ACTIVATE_SCHEDULES,
            Step::ValidateWorkspace => entry::VALIDATE_WORKSPACE,
            Step::DnsSwitch => entry::DNS_SWITCH,
            Step::CanaryWriter => entry::CANARY_WRITER,
            Step::ManagedFailover => entry::MANAGED_FAILOVER,
            Step::ReadinessCheck => entry::READINESS_CHECK,
        }
    }
}

/// Runs any step on a JSON payload (the local host's in-process mode).
pub async fn invoke(
    step: Step,
    deps: &Deps,
    payload: serde_json::Value,
    deadline: Instant,
) -> Result<serde_json::Value, StepError> {
    invoke_entry(step.entry(), deps, payload, deadline).await
}

/// Runs one step's entry on a JSON payload: the one path of every Lambda and of the local
/// host. Steps of a run record their outcome in the ledger and announce their milestone
/// before returning.
pub async fn invoke_entry(
    entry: Entry,
    deps: &Deps,
    payload: serde_json::Value,
    deadline: Instant,
) -> Result<serde_json::Value, StepError> {
    let step = entry.step;
    // Steps outside a run: an event, a link, a schedule tick.
    // A lifecycle event to announce is the aftermath of a step, not a step of its run.
    let announcing = step == Step::Notify && payload.get("detail-type").is_some();
    let scheduled_snapshot = step == Step::DrConfigCheck
        && payload.get("scheduled_snapshot") == Some(&serde_json::Value::Bool(true));
    if announcing
        || scheduled_snapshot
        || matches!(
            step,
            Step::HealthIngest | Step::ApprovalCallback | Step::CanaryWriter | Step::ReadinessCheck
        )
    {
        return (entry.call)(deps, payload, deadline).await;
    }
    let run: crate::run::RunContext = match payload.get("run") {
        Some(run) => parse(step, run.clone())?,
        None => {
            return Err(StepError::InvalidInput(format!(
                "{}: field `run` is missing",
                step.name()
            )))
        }
    };
    let action = payload
        .get("action")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    // The client-path check after the switch is its own phase of the timeline.
    let record_as = if step == Step::ValidateWorkspace
        && payload.get("through_clients") == Some(&serde_json::Value::Bool(true))
    {
        VERIFY_CLIENTS
    } else {
        step.name()
    };
    let work = (entry.call)(deps, payload, deadline);
    let output = if step == Step::RunLedger {
        // The ledger's own bookkeeping is not a step of the report's timeline.
        work.await?
    } else {
        recorded(deps, &run, record_as, work).await?
    };
    if let Some((milestone, mut extra)) = milestones::milestone_of(step, action.as_deref(), &output)
    {
        // The completion milestone links to the report in the ledger (the S3 console path;
        // the reader's own credentials decide whether it opens).
        if let (Some(key), Some(obj)) = (
            output.get("report_key").and_then(serde_json::Value::as_str),
            extra.as_object_mut(),
        ) {
            obj.insert(
                "report_console_url".into(),
                serde_json::json!(crate::events::report_console_url(deps, key)),
            );
        }
        crate::events::publish(deps, &run, milestone, extra).await;
    }
    Ok(output)
}
