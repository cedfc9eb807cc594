//! The entry of each step, one constant per function binary: a function's `main.rs` names only
//! its own, so the linker keeps that step's code and drops the others'.
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::Value;

use super::{parse, to_value, Entry, Step};
use crate::{
    kernel::{budget, Deps, StepError},
    steps::{
        activate_schedules, approval_callback, canary_writer, data_fence, data_sources_check,
        dns_switch, dr_config_check, dr_startup, health_ingest, managed_failover, notify,
        readiness_check, replication_check, request_approval, run_ledger, shutdown_sweep,
        validate_workspace,
    },
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
            to_value(dr_config_check::handle(deps, parse(Step::DrConfigCheck, p)?, budget).await?)
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
