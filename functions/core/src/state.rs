//! The state document's `results`, typed: each step's output under the name the state machines
//! store it at (`"ResultPath": "$.results.<name>"`), for the report and the bookkeeping steps to
//! read by field instead of searching a JSON tree. Every name a machine writes is a field here —
//! a name nobody declared, or an output that does not decode, is refused with its path
//! (`results.failover.fence.sweep.attempt: invalid type`), never read as a missing section.
//!
//! Outputs nothing reads after the run are kept as JSON (`begin`, `startup`, ...): they are
//! still named, so a renamed `ResultPath` fails a test instead of vanishing from the report.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    drift::check::ConfigCheckOutput,
    fence::{handoff::ActivationOutput, SweepOutput},
    managed_dr::ManagedFailoverOutput,
    replication::ReplicationOutput,
    sources::DataSourcesOutput,
    switch::DnsSwitchOutput,
    validation::ValidationOutput,
};

/// An error a state's `Catch` stored (`{"Error": …, "Cause": …}`, written by Step Functions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaughtError {
    /// The error name (a step's [`crate::kernel::StepError::name`], or `States.*`).
    #[serde(rename = "Error")]
    pub error: String,
    /// Its message.
    #[serde(rename = "Cause", default)]
    pub cause: Option<String>,
}

/// `$.results` of a failover, failback, readiness drill or fence watch execution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// `BeginRun` (run-ledger `begin`).
    #[serde(default)]
    pub begin: Option<Value>,
    /// `DrConfigCheck` / `PrimaryPreflight`: the drift check.
    #[serde(default)]
    pub config: Option<ConfigCheckOutput>,
    /// `ReplicationCheck`: RPO per bucket, table and failover group.
    #[serde(default)]
    pub replication: Option<ReplicationOutput>,
    /// `DataSourcesCheck`.
    #[serde(default)]
    pub data_sources: Option<DataSourcesOutput>,
    /// The approval wait's output, then `VerifyApproval`'s verdict.
    #[serde(default)]
    pub approval: Option<Value>,
    /// The RPO-breach approval, the same way.
    #[serde(default)]
    pub rpo_approval: Option<Value>,
    /// `DataFence` (set).
    #[serde(default)]
    pub data_fence: Option<Value>,
    /// `DataFence` failed.
    #[serde(default)]
    pub data_fence_error: Option<CaughtError>,
    /// `ShutdownSweep` / `FenceDrSite` / `ConfirmDrStopped` / `WatchSweep`: the last attempt.
    #[serde(default)]
    pub sweep: Option<SweepOutput>,
    /// The sweep failed.
    #[serde(default)]
    pub sweep_error: Option<CaughtError>,
    /// `StartFenceWatch`.
    #[serde(default)]
    pub fence_watch: Option<Value>,
    /// `StartFenceWatch` failed.
    #[serde(default)]
    pub fence_watch_error: Option<CaughtError>,
    /// `ActivateSchedules`.
    #[serde(default)]
    pub activation: Option<ActivationOutput>,
    /// `ManagedFailover`.
    #[serde(default)]
    pub managed_dr: Option<ManagedFailoverOutput>,
    /// `DrStartup` / `PrimaryStartup` / `StartReadinessWarehouse`.
    #[serde(default)]
    pub startup: Option<Value>,
    /// `ValidateWorkspace`.
    #[serde(default)]
    pub validation: Option<ValidationOutput>,
    /// `DnsSwitch`.
    #[serde(default)]
    pub dns: Option<DnsSwitchOutput>,
    /// `VerifyClients`: the move checked the way clients arrive.
    #[serde(default)]
    pub client_check: Option<ValidationOutput>,
    /// `ActivationAborted` / `StartupAborted`: an operator chose abort in a branch.
    #[serde(default)]
    pub aborted: Option<bool>,
    /// The failover's Parallel, each branch's results by name (`NameBranches`).
    #[serde(default)]
    pub failover: Option<Branches>,
    /// `AbortFenceTarget`: the target fenced again.
    #[serde(default)]
    pub abort_sweep: Option<SweepOutput>,
    /// `AbortFenceTarget` failed.
    #[serde(default)]
    pub abort_sweep_error: Option<CaughtError>,
    /// `AbortRestoreFailoverGroup`: the group put back at the source.
    #[serde(default)]
    pub abort_managed_dr: Option<ManagedFailoverOutput>,
    /// `AbortRestoreSource`: activations restored at the source.
    #[serde(default)]
    pub abort_restore: Option<ActivationOutput>,
    /// `AbortRestoreClients`: clients pointed back at the source.
    #[serde(default)]
    pub abort_clients: Option<DnsSwitchOutput>,
    /// `LiftDataFence` / `AbortLiftDataFence`.
    #[serde(default)]
    pub data_fence_lifted: Option<Value>,
    /// Lifting the data fence failed.
    #[serde(default)]
    pub data_fence_lift_error: Option<CaughtError>,
    /// `ResetDrSite`: the failback's reset of the DR site.
    #[serde(default)]
    pub reset: Option<SweepOutput>,
    /// `StopReadinessWarehouse`.
    #[serde(default)]
    pub readiness_stop: Option<Value>,
    /// `FinishRun`.
    #[serde(default)]
    pub finish: Option<Value>,
}

/// The failover's three parallel branches; each ends with its own copy of `$.results`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branches {
    /// Data fence, the fence loop, the fence watch.
    pub fence: Box<Results>,
    /// Per-job activation behind the fence.
    pub handover: Box<Results>,
    /// Notify, Managed DR, start-up, validation, the client switch.
    pub startup: Box<Results>,
}

impl Results {
    /// Decodes `$.results`, naming the path of the first field that does not fit.
    pub fn from_value(value: Value) -> Result<Results, String> {
        if value.is_null() {
            return Ok(Results::default());
        }
        serde_path_to_error::deserialize(value).map_err(|e| match e.path().to_string() {
            p if p == "." => format!("results: {}", e.inner()),
            p => format!("results.{p}: {}", e.inner()),
        })
    }

    /// The first of an output in this document or, after the Parallel, in its branches (fence,
    /// handover, start-up, in that order): the results a run ended with.
    pub fn find<T>(&self, field: impl Fn(&Results) -> Option<&T> + Copy) -> Option<&T> {
        field(self).or_else(|| {
            let b = self.failover.as_ref()?;
            [&b.fence, &b.handover, &b.startup]
                .into_iter()
                .find_map(|r| r.find(field))
        })
    }

    /// The last sweep of the site fenced.
    pub fn sweep(&self) -> Option<&SweepOutput> {
        self.find(|r| r.sweep.as_ref())
    }

    /// The activation at the target.
    pub fn activation(&self) -> Option<&ActivationOutput> {
        self.find(|r| r.activation.as_ref())
    }

    /// The target's validation.
    pub fn validation(&self) -> Option<&ValidationOutput> {
        self.find(|r| r.validation.as_ref())
    }

    /// The client switch.
    pub fn dns(&self) -> Option<&DnsSwitchOutput> {
        self.find(|r| r.dns.as_ref())
    }

    /// The move verified through the clients.
    pub fn client_check(&self) -> Option<&ValidationOutput> {
        self.find(|r| r.client_check.as_ref())
    }

    /// The failover group.
    pub fn managed_dr(&self) -> Option<&ManagedFailoverOutput> {
        self.find(|r| r.managed_dr.as_ref())
    }

    /// The failover group restored by an abort.
    pub fn abort_managed_dr(&self) -> Option<&ManagedFailoverOutput> {
        self.find(|r| r.abort_managed_dr.as_ref())
    }

    /// RPO as measured before approval.
    pub fn replication(&self) -> Option<&ReplicationOutput> {
        self.find(|r| r.replication.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sweep(complete: bool) -> Value {
        json!({"site": "primary", "attempt": 2, "complete": complete, "gave_up": false,
               "reachable": true, "confirmed": 3, "remaining": 0, "actions": 3, "excluded": 0})
    }

    #[test]
    fn a_failover_document_reads_each_output_from_its_branch() {
        let before = json!({"begin": {"preapproved": false}, "approval": {"approved": true}});
        let mut fence = before.clone();
        fence["sweep"] = sweep(true);
        let mut handover = before.clone();
        handover["activation"] = json!({"activated": true, "waiting": false,
            "gate": {"gate": "open", "reason": "fenced"}, "unpaused": 4, "missing": [],
            "summary": ""});
        let mut startup = before.clone();
        startup["validation"] = json!({"checks": [], "passed": true});
        startup["startup"] = json!({"ready": true});
        let mut doc = before;
        doc["failover"] = json!({"fence": fence, "handover": handover, "startup": startup});
        doc["finish"] = json!({});
        let r = Results::from_value(doc).unwrap();
        assert!(r.sweep().is_some_and(|s| s.complete && s.attempt == 2));
        assert!(r.activation().is_some_and(|a| a.unpaused == 4));
        assert!(r.validation().is_some_and(|v| v.passed));
        assert!(r.dns().is_none());
        // A top-level output wins over a branch's (the failback has no Parallel).
        let flat = Results::from_value(json!({"sweep": sweep(false)})).unwrap();
        assert!(flat.sweep().is_some_and(|s| !s.complete));
        assert_eq!(
            Results::from_value(Value::Null).unwrap(),
            Results::default()
        );
    }

    #[test]
    fn a_field_nobody_declared_or_that_does_not_decode_is_named() {
        let cases = [
            (json!({"swept": {}}), "results.swept"),
            (
                json!({"sweep": {"attempt": "two"}}),
                "results.sweep.attempt",
            ),
            (
                json!({"failover": {"fence": {"sweep": 1}, "handover": {}, "startup": {}}}),
                "results.failover.fence.sweep",
            ),
            (
                json!({"failover": {"fence": {}, "handover": {}, "startup": {}, "other": {}}}),
                "results.failover.other",
            ),
        ];
        for (doc, path) in cases {
            let err = Results::from_value(doc.clone()).unwrap_err();
            // An unknown field is reported where it was found, with its name.
            let (at, name) = path.rsplit_once('.').unwrap_or(("results", path));
            assert!(
                err.starts_with(path)
                    || (err.starts_with(at) && err.contains(&format!("`{name}`"))),
                "{doc}: {err}"
            );
        }
    }
}
