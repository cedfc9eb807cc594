//! Every ledger key, in one place. The layout of the ledger bucket is documented here and
//! nowhere else; no other module (the CLI included) formats a key itself, so a key read by the
//! report, the CLI or a later run is always the key its writer wrote.
//!
//! ```text
//! locks/<plan>.json                               one run at a time (S3 `If-None-Match: *`)
//! audit/locks/<plan>/<time>-<holder>.json         a stale lock released: by whom, why
//! events/<sha256>.json                            a Health delivery handled (eventArn + communicationId)
//! events/closed-<sha256>.json                     a Health issue reported closed (its eventArn)
//! sites/<plan>/active.json                        which site serves production
//! sites/<plan>/<site>-config.json                 a site's latest configuration snapshot
//! sites/<plan>/<site>-details.json                a site's per-object read cache (ACLs, specs)
//! monitor/<plan>/probe.json                       the deep probe's last result
//! monitor/<plan>/baseline.json                    the deep probe's rolling baseline
//! monitor/<plan>/health-poll.json                 the Health API poll's last result
//! readiness/<plan>/latest.json                    the latest readiness evaluation
//! readiness/<plan>/recent.json                    the last 7 days of it, compact
//! readiness/<plan>/history/<time>.json            every evaluation
//! runs/<run>/run.json                             the run record
//! runs/<run>/steps/<time>-<step>.json             each step's outcome (the report's timeline)
//! runs/<run>/approval.json                        the approval (token, votes, audit)
//! runs/<run>/approval-rpo-breach.json             the second approval of an RPO breach
//! runs/<run>/approval-message-<stage>.txt         what the approvers were sent (links redacted)
//! runs/<run>/approval-refused/<stage>/…           refused decision attempts (capped)
//! runs/<run>/intervention.json                    pauses for a human after a failed step
//! runs/<run>/drift.json                           the drift check's full result
//! runs/<run>/fence/<site>.json                    the fence record of a site (per resource)
//! runs/<run>/fence/<site>-handoff/<time>-….json   jobs confirmed fenced, in order (the handoff)
//! runs/<run>/data-fence.json                      the data fence (replication denied)
//! runs/<run>/gate-override.json                   an operator's opening of the activation gate
//! runs/<run>/gate-audit/<time>-<n>.json           every attempt to open it
//! runs/<run>/fence-watch.json                     the fence that outlived the run
//! runs/<run>/fence-watch-stop.json                the marker that stops that watch
//! runs/<run>/activation.json                      activations at the target, per job
//! runs/<run>/activation-restore.json              activations restored at the source (abort)
//! runs/<run>/startup.json                         what the start-up changed (restored at failback)
//! runs/<run>/readiness.json                       the readiness drill's warehouse
//! runs/<run>/managed-dr.json                      the Managed DR failover requested
//! runs/<run>/dns.json, dns-restore.json           the client switch, and its restore
//! runs/<run>/dns-intent.json                      the switch about to be made (resume)
//! runs/<run>/announcements/<time>-<what>.json     what people were told, per channel
//! runs/<run>/report.{json,md,html}                the report
//! ```

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::{plan::SiteRole, run::RunId};

/// The time format of keys that must sort by time (microseconds).
const SORTABLE: &str = "%Y%m%dT%H%M%S%.6fZ";

fn site(role: SiteRole) -> &'static str {
    match role {
        SiteRole::Primary => "primary",
        SiteRole::Dr => "dr",
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

// ---- plan-wide ----

/// A plan's lock (one run at a time).
pub fn lock(plan: &str) -> String {
    format!("locks/{plan}.json")
}

/// The audit entry written when a stale lock is released.
pub fn lock_audit(plan: &str, at: DateTime<Utc>, holder: &str) -> String {
    format!(
        "{}{}-{holder}.json",
        lock_audit_prefix(plan),
        at.format(SORTABLE)
    )
}

/// Where a plan's lock audit entries are.
pub fn lock_audit_prefix(plan: &str) -> String {
    format!("audit/locks/{plan}/")
}

/// A Health delivery handled (eventArn + communicationId): the dedup of EventBridge's
/// at-least-once delivery.
pub fn health_delivery(event_arn: &str, communication_id: &str) -> String {
    let id = serde_json::json!([event_arn, communication_id]).to_string();
    format!("events/{}.json", sha256_hex(id.as_bytes()))
}

/// A Health issue reported closed (its eventArn), so a late `open` update does not start a
/// failover.
pub fn health_closed(event_arn: &str) -> String {
    format!("events/closed-{}.json", sha256_hex(event_arn.as_bytes()))
}

/// Which site serves production.
pub fn active_site(plan: &str) -> String {
    format!("sites/{plan}/active.json")
}

/// A site's latest configuration snapshot (taken by every drift check that reaches it): what a
/// failover compares with, and activates from, when that site is gone.
pub fn snapshot(plan: &str, role: SiteRole) -> String {
    format!("sites/{plan}/{}-config.json", site(role))
}

/// A site's per-object read cache (ACLs, pipeline specs), refreshed stalest first.
pub fn snapshot_details(plan: &str, role: SiteRole) -> String {
    format!("sites/{plan}/{}-details.json", site(role))
}

/// The deep probe's last result.
pub fn probe(plan: &str) -> String {
    format!("monitor/{plan}/probe.json")
}

/// The deep probe's rolling baseline.
pub fn probe_baseline(plan: &str) -> String {
    format!("monitor/{plan}/baseline.json")
}

/// The Health API poll's last result.
pub fn health_poll(plan: &str) -> String {
    format!("monitor/{plan}/health-poll.json")
}

/// The latest readiness evaluation.
pub fn readiness_latest(plan: &str) -> String {
    format!("readiness/{plan}/latest.json")
}

/// The recent readiness list (7 days).
pub fn readiness_recent(plan: &str) -> String {
    format!("readiness/{plan}/recent.json")
}

/// Where the readiness history is (keys sort by time).
pub fn readiness_history_prefix(plan: &str) -> String {
    format!("readiness/{plan}/history/")
}

/// One evaluation in the readiness history.
pub fn readiness_history(plan: &str, at: DateTime<Utc>) -> String {
    format!(
        "{}{}.json",
        readiness_history_prefix(plan),
        at.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

// ---- per run ----

/// Where everything of a run is.
pub fn run_prefix(run: &RunId) -> String {
    format!("runs/{run}/")
}

/// The run record.
pub fn run_record(run: &RunId) -> String {
    format!("runs/{run}/run.json")
}

/// Where a run's step outcomes are.
pub fn steps_prefix(run: &RunId) -> String {
    format!("runs/{run}/steps/")
}

/// One step outcome (sorts by start time).
pub fn step_record(run: &RunId, started_at: DateTime<Utc>, step: &str) -> String {
    format!(
        "{}{}-{step}.json",
        steps_prefix(run),
        started_at.format(SORTABLE)
    )
}

/// The approval of a failover (or failback).
pub fn approval(run: &RunId) -> String {
    format!("runs/{run}/approval.json")
}

/// The second approval a breached RPO asks for.
pub fn approval_rpo_breach(run: &RunId) -> String {
    format!("runs/{run}/approval-rpo-breach.json")
}

/// What the approvers of a stage were sent (links redacted).
pub fn approval_message(run: &RunId, stage: &str) -> String {
    format!("runs/{run}/approval-message-{stage}.txt")
}

/// Where the refused decision attempts of a stage are logged.
pub fn approval_refusals_prefix(run: &RunId, stage: &str) -> String {
    format!("runs/{run}/approval-refused/{stage}/")
}

/// One refused decision attempt (unique per attempt, sorts by time).
pub fn approval_refusal(run: &RunId, stage: &str, at: DateTime<Utc>) -> String {
    format!(
        "{}{}-{}.json",
        approval_refusals_prefix(run, stage),
        at.format(SORTABLE),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// The pauses for a human after a failed step.
pub fn intervention(run: &RunId) -> String {
    format!("runs/{run}/intervention.json")
}

/// The drift check's full result.
pub fn drift(run: &RunId) -> String {
    format!("runs/{run}/drift.json")
}

/// The fence record of a site.
pub fn fence(run: &RunId, role: SiteRole) -> String {
    format!("runs/{run}/fence/{}.json", site(role))
}

/// Where a site's handoff chunks are.
pub fn handoff_prefix(run: &RunId, role: SiteRole) -> String {
    format!("runs/{run}/fence/{}-handoff/", site(role))
}

/// A new handoff chunk: sortable by time, unique per writer.
pub fn handoff_chunk(
    run: &RunId,
    role: SiteRole,
    at: DateTime<Utc>,
    attempt: u32,
    n: u64,
) -> String {
    format!(
        "{}{}-a{attempt:04}-{n:06}.json",
        handoff_prefix(run, role),
        at.format(SORTABLE)
    )
}

/// The data fence record.
pub fn data_fence(run: &RunId) -> String {
    format!("runs/{run}/data-fence.json")
}

/// An operator's opening of the activation gate.
pub fn gate_override(run: &RunId) -> String {
    format!("runs/{run}/gate-override.json")
}

/// Where the gate's audit is.
pub fn gate_audit_prefix(run: &RunId) -> String {
    format!("runs/{run}/gate-audit/")
}

/// One audited attempt to open the gate (unique per attempt).
pub fn gate_audit(run: &RunId, at: DateTime<Utc>) -> String {
    format!(
        "{}{}-{}.json",
        gate_audit_prefix(run),
        at.format(SORTABLE),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// The fence that outlived the run.
pub fn fence_watch(run: &RunId) -> String {
    format!("runs/{run}/fence-watch.json")
}

/// The marker that stops a run's fence watch (a failback began).
pub fn fence_watch_stop(run: &RunId) -> String {
    format!("runs/{run}/fence-watch-stop.json")
}

/// Activations at the target (`restore`: at the source, by an abort).
pub fn activation(run: &RunId, restore: bool) -> String {
    if restore {
        format!("runs/{run}/activation-restore.json")
    } else {
        format!("runs/{run}/activation.json")
    }
}

/// What the start-up changed.
pub fn startup(run: &RunId) -> String {
    format!("runs/{run}/startup.json")
}

/// The readiness drill's warehouse.
pub fn readiness_drill(run: &RunId) -> String {
    format!("runs/{run}/readiness.json")
}

/// The Managed DR failover requested.
pub fn managed_dr(run: &RunId) -> String {
    format!("runs/{run}/managed-dr.json")
}

/// The client switch (`restore`: its restore by an abort).
pub fn dns(run: &RunId, restore: bool) -> String {
    if restore {
        format!("runs/{run}/dns-restore.json")
    } else {
        format!("runs/{run}/dns.json")
    }
}

/// The switch about to be made (a resumed switch reads it).
pub fn dns_intent(run: &RunId) -> String {
    format!("runs/{run}/dns-intent.json")
}

/// Where a run's announcements are.
pub fn announcements_prefix(run: &RunId) -> String {
    format!("runs/{run}/announcements/")
}

/// One announcement (sorts by time).
pub fn announcement(run: &RunId, at: DateTime<Utc>, slug: &str) -> String {
    format!(
        "{}{}-{slug}.json",
        announcements_prefix(run),
        at.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// The report, by format.
pub fn report(run: &RunId, format: ReportFormat) -> String {
    format!("runs/{run}/report.{}", format.extension())
}

/// The formats a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// `report.json`: the structured report.
    Json,
    /// `report.md`.
    Markdown,
    /// `report.html`: the self-contained page.
    Html,
}

impl ReportFormat {
    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Markdown => "md",
            ReportFormat::Html => "html",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunId {
        RunId("failover-20261208T010203Z-ab12".into())
    }

    /// The layout is the contract between writers, readers and the CLI: a changed key loses
    /// every record already in a bucket.
    #[test]
    fn keys_keep_the_documented_layout() {
        let at = DateTime::parse_from_rfc3339("2026-12-08T01:02:03.456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = run();
        let cases: Vec<(String, &str)> = vec![
            (lock("p"), "locks/p.json"),
            (lock_audit("p", at, "h"), "audit/locks/p/20261208T010203.456789Z-h.json"),
            (active_site("p"), "sites/p/active.json"),
            (snapshot("p", SiteRole::Primary), "sites/p/primary-config.json"),
            (snapshot_details("p", SiteRole::Dr), "sites/p/dr-details.json"),
            (probe("p"), "monitor/p/probe.json"),
            (probe_baseline("p"), "monitor/p/baseline.json"),
            (health_poll("p"), "monitor/p/health-poll.json"),
            (readiness_latest("p"), "readiness/p/latest.json"),
            (readiness_recent("p"), "readiness/p/recent.json"),
            (readiness_history("p", at), "readiness/p/history/20261208T010203.456Z.json"),
            (run_record(&r), "runs/failover-20261208T010203Z-ab12/run.json"),
            (
                step_record(&r, at, "notify"),
                "runs/failover-20261208T010203Z-ab12/steps/20261208T010203.456789Z-notify.json",
            ),
            (approval(&r), "runs/failover-20261208T010203Z-ab12/approval.json"),
            (approval_rpo_breach(&r), "runs/failover-20261208T010203Z-ab12/approval-rpo-breach.json"),
            (
                approval_message(&r, "failover"),
                "runs/failover-20261208T010203Z-ab12/approval-message-failover.txt",
            ),
            (fence(&r, SiteRole::Primary), "runs/failover-20261208T010203Z-ab12/fence/primary.json"),
            (
                handoff_chunk(&r, SiteRole::Dr, at, 3, 7),
                "runs/failover-20261208T010203Z-ab12/fence/dr-handoff/20261208T010203.456789Z-a0003-000007.json",
            ),
            (activation(&r, false), "runs/failover-20261208T010203Z-ab12/activation.json"),
            (activation(&r, true), "runs/failover-20261208T010203Z-ab12/activation-restore.json"),
            (dns(&r, true), "runs/failover-20261208T010203Z-ab12/dns-restore.json"),
            (report(&r, ReportFormat::Html), "runs/failover-20261208T010203Z-ab12/report.html"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert!(health_delivery("arn", "c1").starts_with("events/"));
        assert_ne!(health_delivery("arn", "c1"), health_delivery("arn", "c2"));
        assert_ne!(health_closed("arn"), health_delivery("arn", ""));
        assert!(gate_audit(&r, at).starts_with(&gate_audit_prefix(&r)));
        assert_ne!(
            gate_audit(&r, at),
            gate_audit(&r, at),
            "two attempts never share a key"
        );
    }
}
