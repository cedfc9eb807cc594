//! One module per step of the seed's process; each exposes its input and output types and an
//! async `handle` that the Lambda's `main.rs` (or the local Lambda host) calls.
//!
//! Every step receives the execution's state document (`{"run": RunContext, ...}`) and picks
//! what it needs; Step Functions stores the output under `$.results.<step>` or similar.

pub mod activate_schedules;
pub mod approval_callback;
pub mod canary_writer;
pub mod data_fence;
pub mod data_sources_check;
pub mod dns_switch;
pub mod dr_config_check;
pub mod dr_startup;
pub mod health_ingest;
pub mod health_probe;
pub mod managed_failover;
pub mod notify;
pub mod readiness_check;
pub mod replication_check;
pub mod request_approval;
pub mod run_ledger;
pub mod shutdown_sweep;
pub mod validate_workspace;

use std::time::Instant;

use crate::kernel::{budget, recorded, Deps, StepError, VERIFY_CLIENTS};

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

/// The entry of each step, one constant per function binary.
pub mod entry {
    use std::time::{Duration, Instant};

    use futures::future::BoxFuture;
    use serde_json::Value;

    use super::{
        activate_schedules, approval_callback, budget, canary_writer, data_fence,
        data_sources_check, dns_switch, dr_config_check, dr_startup, health_ingest,
        managed_failover, notify, parse, readiness_check, replication_check, request_approval,
        run_ledger, shutdown_sweep, to_value, validate_workspace, Deps, Entry, Step, StepError,
    };

    type Out<'a> = BoxFuture<'a, Result<Value, StepError>>;

    /// `health-ingest`: an AWS Health event (EventBridge), a probe or a poll tick in.
    pub const HEALTH_INGEST: Entry = Entry {
        step: Step::HealthIngest,
        call: health_ingest_call,
    };
    fn health_ingest_call(deps: &Deps, p: Value, _: Instant) -> Out<'_> {
        Box::pin(async move { to_value(health_ingest::handle(deps, p).await?) })
    }

    /// `approval-callback`: the API Gateway request of an approval link in.
    pub const APPROVAL_CALLBACK: Entry = Entry {
        step: Step::ApprovalCallback,
        call: approval_callback_call,
    };
    fn approval_callback_call(deps: &Deps, p: Value, _: Instant) -> Out<'_> {
        Box::pin(approval_callback::handle(deps, p))
    }

    /// `canary-writer`: a schedule tick in (the payload is ignored).
    pub const CANARY_WRITER: Entry = Entry {
        step: Step::CanaryWriter,
        call: canary_writer_call,
    };
    fn canary_writer_call(deps: &Deps, _: Value, _: Instant) -> Out<'_> {
        Box::pin(async move { to_value(canary_writer::handle(deps).await?) })
    }

    /// `request-approval`: sends the links, or (`"action": "verify"`) checks the decision the
    /// wait returned before the state machine's Choice.
    pub const REQUEST_APPROVAL: Entry = Entry {
        step: Step::RequestApproval,
        call: request_approval_call,
    };
    fn request_approval_call(deps: &Deps, p: Value, _: Instant) -> Out<'_> {
        Box::pin(async move {
            let step = Step::RequestApproval;
            if p.get("action").and_then(Value::as_str) == Some("verify") {
                to_value(request_approval::verify(deps, parse(step, p)?).await?)
            } else {
                to_value(request_approval::handle(deps, parse(step, p)?).await?)
            }
        })
    }

    /// `dr-config-check`: a run's drift check, or (`"scheduled_snapshot": true`) the snapshot
    /// schedule's tick.
    pub const DR_CONFIG_CHECK: Entry = Entry {
        step: Step::DrConfigCheck,
        call: dr_config_check_call,
    };
    fn dr_config_check_call(deps: &Deps, p: Value, deadline: Instant) -> Out<'_> {
        Box::pin(async move {
            if p.get("scheduled_snapshot") == Some(&Value::Bool(true)) {
                to_value(dr_config_check::scheduled_snapshot(deps).await?)
            } else {
                // Reads end in time to write the snapshots and answer.
                let budget = budget(deadline, Duration::from_secs(20));
                to_value(
                    dr_config_check::handle(deps, parse(Step::DrConfigCheck, p)?, budget).await?,
                )
            }
        })
    }

    /// `readiness-check`: the evaluation schedule's tick (the payload is ignored).
    pub const READINESS_CHECK: Entry = Entry {
        step: Step::ReadinessCheck,
        call: readiness_check_call,
    };
    fn readiness_check_call(deps: &Deps, _: Value, _: Instant) -> Out<'_> {
        Box::pin(async move { to_value(readiness_check::handle(deps).await?) })
    }

    /// The steps that must return before the Lambda deadline: their handler gets a budget,
    /// the deadline less a margin (the time to record the outcome and answer).
    macro_rules! budgeted_entries {
        ($($(#[$doc:meta])* $konst:ident, $call:ident, $step:ident, $module:ident, $margin_secs:expr;)*) => {$(
            $(#[$doc])*
            pub const $konst: Entry = Entry { step: Step::$step, call: $call };
            fn $call(deps: &Deps, p: Value, deadline: Instant) -> Out<'_> {
                Box::pin(async move {
                    let input = parse(Step::$step, p)?;
                    let budget = budget(deadline, Duration::from_secs($margin_secs));
                    to_value($module::handle(deps, input, budget).await?)
                })
            }
        )*};
    }
    budgeted_entries! {
        /// `shutdown-sweep`: stops what runs at the primary, 20 s short of the deadline.
        SHUTDOWN_SWEEP, shutdown_sweep_call, ShutdownSweep, shutdown_sweep, 20;
        /// `dns-switch`: moves clients, waiting for INSYNC until 15 s short of the deadline.
        DNS_SWITCH, dns_switch_call, DnsSwitch, dns_switch, 15;
        /// `activate-schedules`: turns the target's schedules on, 10 s short of the deadline.
        ACTIVATE_SCHEDULES, activate_schedules_call, ActivateSchedules, activate_schedules, 10;
        /// `managed-failover`: reads the group, asks at most one failover, 10 s short of the
        /// deadline (a request is never left half-sent by a timeout).
        MANAGED_FAILOVER, managed_failover_call, ManagedFailover, managed_failover, 10;
    }

    /// The steps whose handler takes the parsed payload and nothing else.
    macro_rules! plain_entries {
        ($($konst:ident, $call:ident, $step:ident, $module:ident;)*) => {$(
            #[doc = concat!("`", stringify!($module), "`: its step input in, its output out.")]
            pub const $konst: Entry = Entry { step: Step::$step, call: $call };
            fn $call(deps: &Deps, p: Value, _: Instant) -> Out<'_> {
                Box::pin(async move { to_value($module::handle(deps, parse(Step::$step, p)?).await?) })
            }
        )*};
    }
    plain_entries! {
        RUN_LEDGER, run_ledger_call, RunLedger, run_ledger;
        DATA_FENCE, data_fence_call, DataFence, data_fence;
        REPLICATION_CHECK, replication_check_call, ReplicationCheck, replication_check;
        DATA_SOURCES_CHECK, data_sources_check_call, DataSourcesCheck, data_sources_check;
        NOTIFY, notify_call, Notify, notify;
        DR_STARTUP, dr_startup_call, DrStartup, dr_startup;
        VALIDATE_WORKSPACE, validate_workspace_call, ValidateWorkspace, validate_workspace;
    }
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
    if let Some((milestone, mut extra)) =
        crate::events::milestone_of(step, action.as_deref(), &output)
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
