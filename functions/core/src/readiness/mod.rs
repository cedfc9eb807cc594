//! The continuous readiness evaluation: would a failover work now? A DR plan is only as good
//! as the last proof that it would work; the weekly drill is the deep proof, this is the
//! shallow one every 30 minutes — credentials, drift, RPO, canary, capacity, detection paths,
//! the forwarder, the lock — each a [`Finding`], together an [`Evaluation`] kept in the ledger
//! with its history and emitted as a metric an alarm watches.
//!
//! Every finding is decided by a pure function below from what the `readiness-check` step
//! read; the table tests beside them are the rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    drift::DriftItem,
    plan::{Direction, Plan},
    replication::ReplicationOutput,
};

/// What is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The target (DR) workspace answers with its credentials.
    TargetCredentials,
    /// The source (primary) workspace's credentials are accepted.
    SourceCredentials,
    /// Configuration drift that would block a failover.
    Drift,
    /// The configuration snapshots a failover without the source compares with are recent.
    Snapshots,
    /// Every bucket and table within its RPO objective.
    Rpo,
    /// The canary writer keeps the source's canaries fresh.
    Canary,
    /// What the plan starts exists at the target, within its limits.
    Capacity,
    /// The status page probe runs and finds the primary's containers.
    StatusPage,
    /// The AWS Health API poll runs and is permitted.
    HealthPoll,
    /// The primary region's forwarder of AWS Health events exists and is enabled.
    Forwarder,
    /// No run holds the plan's lock (a stale lock stops every failover).
    Lock,
    /// A fence that outlived its run is still watched (a stopped watch lets a returning
    /// primary come back unfenced).
    FenceWatch,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 12] = [
        Check::TargetCredentials,
        Check::SourceCredentials,
        Check::Drift,
        Check::Snapshots,
        Check::Rpo,
        Check::Canary,
        Check::Capacity,
        Check::StatusPage,
        Check::HealthPoll,
        Check::Forwarder,
        Check::Lock,
        Check::FenceWatch,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Check::TargetCredentials => "target_credentials",
            Check::SourceCredentials => "source_credentials",
            Check::Drift => "drift",
            Check::Snapshots => "snapshots",
            Check::Rpo => "rpo",
            Check::Canary => "canary",
            Check::Capacity => "capacity",
            Check::StatusPage => "status_page",
            Check::HealthPoll => "health_poll",
            Check::Forwarder => "forwarder",
            Check::Lock => "lock",
            Check::FenceWatch => "fence_watch",
        }
    }
}

/// A finding's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Holds.
    Passed,
    /// Worth knowing; a failover would still work (e.g. a path not configured).
    Warning,
    /// A failover now would fail or be blind: someone must act.
    ActionRequired,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The check.
    pub check: Check,
    /// Its status.
    pub status: Status,
    /// What was seen, in a sentence.
    pub detail: String,
}

impl Finding {
    fn new(check: Check, status: Status, detail: impl Into<String>) -> Self {
        Finding {
            check,
            status,
            detail: detail.into(),
        }
    }
}

/// The evaluation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No finding requires action.
    Passed,
    /// At least one does.
    ActionRequired,
}

/// One evaluation, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The plan.
    pub plan: String,
    /// When.
    pub evaluated_at: DateTime<Utc>,
    /// Which move it evaluates (failback while production runs at DR).
    pub direction: Direction,
    /// The outcome.
    pub outcome: Outcome,
    /// Every check's finding.
    pub findings: Vec<Finding>,
}

impl Evaluation {
    /// The findings that require action.
    pub fn action_required(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.status == Status::ActionRequired)
    }
}

/// Pure: the outcome of a set of findings.
pub fn outcome(findings: &[Finding]) -> Outcome {
    if findings.iter().any(|f| f.status == Status::ActionRequired) {
        Outcome::ActionRequired
    } else {
        Outcome::Passed
    }
}

/// The metric: 1 when action is required, 0 when passed (an alarm watches it; a missing data
/// point means the evaluation itself stopped).
pub const METRIC: &str = "ReadinessActionRequired";

/// What a credentials probe (SCIM `Me`) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialProbe {
    /// Answered.
    Answered,
    /// Answered 401/403: the credentials are refused.
    Refused(String),
    /// No answer (down, unreachable, timed out).
    Unreachable(String),
}

/// Pure: a site's credentials. The target must answer — it is where a failover goes. The
/// source unreachable is a warning here (the probes decide whether that is an incident); its
/// credentials refused is not: fencing it would fail.
pub fn credentials_finding(check: Check, site: &str, probe: &CredentialProbe) -> Finding {
    let target = check == Check::TargetCredentials;
    match probe {
        CredentialProbe::Answered => Finding::new(
            check,
            Status::Passed,
            format!("{site} answers with Lifeboat's credentials"),
        ),
        CredentialProbe::Refused(e) => Finding::new(
            check,
            Status::ActionRequired,
            format!("{site} refuses Lifeboat's credentials: {e}"),
        ),
        CredentialProbe::Unreachable(e) => Finding::new(
            check,
            if target {
                Status::ActionRequired
            } else {
                Status::Warning
            },
            format!("{site} does not answer: {e}"),
        ),
    }
}

/// Pure: drift between the stored snapshots: blocking items require action; kinds that could
/// not be compared warn (a drift check blind to them passes nothing it did not see).
pub fn drift_finding(
    items: &[DriftItem],
    plan_blocking: &[String],
    not_compared: &[String],
) -> Finding {
    let blocking: Vec<String> = plan_blocking
        .iter()
        .cloned()
        .chain(items.iter().filter(|i| i.blocking).map(DriftItem::line))
        .collect();
    if blocking.is_empty() && !not_compared.is_empty() {
        return Finding::new(
            Check::Drift,
            Status::Warning,
            format!(
                "nothing blocks among what was compared ({} differences only warn); not compared: {}",
                items.len(),
                not_compared.join("; ")
            ),
        );
    }
    if blocking.is_empty() {
        return Finding::new(
            Check::Drift,
            Status::Passed,
            format!("nothing blocks ({} differences only warn)", items.len()),
        );
    }
    let shown: Vec<&str> = blocking.iter().take(3).map(String::as_str).collect();
    Finding::new(
        Check::Drift,
        Status::ActionRequired,
        format!(
            "{} blocking: {}{}",
            blocking.len(),
            shown.join("; "),
            if blocking.len() > 3 { "; …" } else { "" }
        ),
    )
}

/// Pure: the snapshots a failover compares with when the source is gone — missing, or older
/// than three intervals (the schedule has stopped), requires action.
pub fn snapshots_finding(
    ages: &[(&str, Option<i64>)],
    interval_minutes: u32,
    compared: bool,
) -> Finding {
    let limit = i64::from(interval_minutes) * 60 * 3;
    let bad: Vec<String> = ages
        .iter()
        .filter_map(|(site, age)| match age {
            None => Some(format!("{site}: none")),
            Some(a) if *a > limit => Some(format!("{site}: {a} s old")),
            _ => None,
        })
        .collect();
    if bad.is_empty() {
        let detail = ages
            .iter()
            .map(|(s, a)| format!("{s} {} s old", a.unwrap_or(0)))
            .collect::<Vec<_>>()
            .join(", ");
        return Finding::new(
            Check::Snapshots,
            Status::Passed,
            format!("{detail} (taken every {interval_minutes} min)"),
        );
    }
    Finding::new(
        Check::Snapshots,
        Status::ActionRequired,
        format!(
            "the configuration snapshot schedule is not keeping up ({}; limit {limit} s){}",
            bad.join(", "),
            if compared {
                ""
            } else {
                "; drift was not evaluated"
            }
        ),
    )
}

/// Pure: RPO per bucket, table and failover group against its objective.
pub fn rpo_finding(out: &ReplicationOutput) -> Finding {
    let rows = out.worst_first();
    let over: Vec<String> = rows.iter().filter(|r| !r.ok).map(|r| r.line()).collect();
    if rows.is_empty() {
        return Finding::new(
            Check::Rpo,
            Status::Warning,
            "the plan names no data to measure",
        );
    }
    if over.is_empty() {
        return Finding::new(
            Check::Rpo,
            Status::Passed,
            format!("{} sources within their objectives", rows.len()),
        );
    }
    Finding::new(
        Check::Rpo,
        Status::ActionRequired,
        format!(
            "{} of {} over objective or unknown: {}",
            over.len(),
            rows.len(),
            over.join("; ")
        ),
    )
}

/// Pure: the canary writer keeps the source's canaries fresh (else every RPO reading ages).
pub fn canary_finding(out: &ReplicationOutput) -> Finding {
    let stale: Vec<String> = out
        .buckets
        .iter()
        .filter_map(|b| b.finding.as_ref().map(|f| format!("{}: {f}", b.name)))
        .collect();
    match (out.buckets.is_empty(), stale.is_empty()) {
        (true, _) => Finding::new(Check::Canary, Status::Warning, "the plan names no bucket"),
        (false, true) => Finding::new(
            Check::Canary,
            Status::Passed,
            format!("{} source canaries fresh", out.buckets.len()),
        ),
        (false, false) => Finding::new(Check::Canary, Status::ActionRequired, stale.join("; ")),
    }
}

/// What the target has of what the plan starts.
#[derive(Debug, Clone, Default)]
pub struct TargetCapacity {
    /// Pool name → its `max_capacity` (`None`: unlimited).
    pub pools: std::collections::BTreeMap<String, Option<u32>>,
    /// Warehouse name → its `max_num_clusters`.
    pub warehouses: std::collections::BTreeMap<String, Option<u32>>,
    /// All-purpose cluster names.
    pub clusters: std::collections::BTreeSet<String>,
}

/// Pure: everything the plan starts exists at the target and its limits allow what the plan
/// asks (a pool's `max_capacity` at least the idle instances the start-up sets).
pub fn capacity_finding(plan: &Plan, target: &TargetCapacity) -> Finding {
    let s = &plan.startup;
    let mut bad = Vec::new();
    for p in &s.pools {
        match target.pools.get(&p.name) {
            None => bad.push(format!("pool {} missing", p.name)),
            Some(Some(max)) if *max < p.min_idle => bad.push(format!(
                "pool {}: max_capacity {max} < min_idle {}",
                p.name, p.min_idle
            )),
            _ => {}
        }
    }
    for w in s.warehouses.iter().chain(plan.validation.warehouse.iter()) {
        match target.warehouses.get(w) {
            None => bad.push(format!("warehouse {w} missing")),
            Some(Some(0)) => bad.push(format!("warehouse {w}: max_num_clusters 0")),
            _ => {}
        }
    }
    for c in &s.clusters {
        if !target.clusters.contains(c) {
            bad.push(format!("cluster {c} missing"));
        }
    }
    bad.dedup();
    let total = s.pools.len() + s.warehouses.len() + s.clusters.len();
    if bad.is_empty() {
        Finding::new(
            Check::Capacity,
            Status::Passed,
            format!("{total} objects the start-up uses exist within their limits"),
        )
    } else {
        Finding::new(Check::Capacity, Status::ActionRequired, bad.join("; "))
    }
}

/// The status probe's last record, as the readiness check reads it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProbeRecord {
    /// When it last ran.
    #[serde(default)]
    pub checked_at: Option<DateTime<Utc>>,
    /// Its status page verdict (`{"state": "operational" | "unknown" | ..., "reason"?}`).
    #[serde(default)]
    pub status_page: Option<serde_json::Value>,
}

/// Pure: the status page path is alive — the probe ran within `stale_after_seconds` and its
/// verdict names the primary (an `unknown` verdict: a container missing, the page unread).
pub fn status_page_finding(
    configured: bool,
    record: Option<&ProbeRecord>,
    now: DateTime<Utc>,
    stale_after_seconds: i64,
) -> Finding {
    if !configured {
        return Finding::new(
            Check::StatusPage,
            Status::Warning,
            "no status page configured (monitoring.status_page_id): one detection path less",
        );
    }
    let Some(r) = record else {
        return Finding::new(
            Check::StatusPage,
            Status::ActionRequired,
            "the status probe has never run",
        );
    };
    let age = r.checked_at.map(|t| (now - t).num_seconds());
    if age.is_none_or(|a| a > stale_after_seconds) {
        return Finding::new(
            Check::StatusPage,
            Status::ActionRequired,
            format!(
                "the status probe last ran {} (limit {stale_after_seconds} s)",
                age.map_or("never".to_string(), |a| format!("{a} s ago"))
            ),
        );
    }
    let state = r
        .status_page
        .as_ref()
        .and_then(|v| v["state"].as_str())
        .unwrap_or("none");
    match state {
        "unknown" | "none" => Finding::new(
            Check::StatusPage,
            Status::ActionRequired,
            format!(
                "the status page gives no verdict for the primary: {}",
                r.status_page
                    .as_ref()
                    .and_then(|v| v["reason"].as_str())
                    .unwrap_or("no verdict recorded")
            ),
        ),
        other => Finding::new(
            Check::StatusPage,
            Status::Passed,
            format!("read {} s ago: {other}", age.unwrap_or(0)),
        ),
    }
}

/// The Health API poll's last result (`monitor/<plan>/health-poll.json`), written by each
/// poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthPollRecord {
    /// When.
    pub checked_at: DateTime<Utc>,
    /// `ok`, `not_subscribed` or `error`.
    pub result: HealthPollResult,
    /// The error, secret-free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A poll's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthPollResult {
    /// Answered.
    Ok,
    /// The account has no support plan with the Health API (EventBridge remains).
    NotSubscribed,
    /// Denied, throttled or failed.
    Error,
}

/// Pure: the Health API poll path — recent and answered passes; not subscribed warns
/// (EventBridge delivery needs no plan); denied or failing, or stopped, requires action.
pub fn health_poll_finding(
    configured: bool,
    record: Option<&HealthPollRecord>,
    now: DateTime<Utc>,
    stale_after_seconds: i64,
) -> Finding {
    if !configured {
        return Finding::new(
            Check::HealthPoll,
            Status::Warning,
            "the Health API poll is not deployed (HealthApiPoll=false): EventBridge delivery only",
        );
    }
    let Some(r) = record else {
        return Finding::new(
            Check::HealthPoll,
            Status::ActionRequired,
            "the Health API poll has never run",
        );
    };
    let age = (now - r.checked_at).num_seconds();
    if age > stale_after_seconds {
        return Finding::new(
            Check::HealthPoll,
            Status::ActionRequired,
            format!("the Health API poll last ran {age} s ago (limit {stale_after_seconds} s)"),
        );
    }
    let error = r.error.clone().unwrap_or_default();
    match r.result {
        HealthPollResult::Ok => Finding::new(
            Check::HealthPoll,
            Status::Passed,
            format!("answered {age} s ago"),
        ),
        HealthPollResult::NotSubscribed => Finding::new(
            Check::HealthPoll,
            Status::Warning,
            format!("{error}: EventBridge delivery only"),
        ),
        HealthPollResult::Error => Finding::new(
            Check::HealthPoll,
            Status::ActionRequired,
            format!("the poll fails: {error}"),
        ),
    }
}

/// What the primary region's EventBridge says about the forwarder rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwarderState {
    /// The rule exists.
    Present {
        /// `ENABLED`.
        enabled: bool,
        /// One of its targets is the DR region's default bus.
        targets_dr_bus: bool,
    },
    /// No such rule.
    Missing,
    /// The question could not be asked (denied, unreachable).
    Unknown(String),
}

/// Pure: the forwarder of the primary region's Health events to Lifeboat.
pub fn forwarder_finding(rule: &str, region: &str, state: &ForwarderState) -> Finding {
    let (status, detail) = match state {
        ForwarderState::Present {
            enabled: true,
            targets_dr_bus: true,
        } => (
            Status::Passed,
            format!("rule {rule} in {region} forwards to the DR bus"),
        ),
        ForwarderState::Present { enabled: false, .. } => (
            Status::ActionRequired,
            format!("rule {rule} in {region} is disabled"),
        ),
        ForwarderState::Present { .. } => (
            Status::ActionRequired,
            format!("rule {rule} in {region} does not target the DR region's default bus"),
        ),
        ForwarderState::Missing => (
            Status::ActionRequired,
            format!(
                "no rule {rule} in {region}: deploy infra/forwarder.yaml there (Health events about the primary region reach only that region's bus)"
            ),
        ),
        ForwarderState::Unknown(e) => (
            Status::ActionRequired,
            format!("rule {rule} in {region} could not be read: {e}"),
        ),
    };
    Finding::new(Check::Forwarder, status, detail)
}

/// Pure: the plan's lock. Held for longer than `stale_after_seconds` it stops every failover
/// until someone unlocks it; held briefly it is a run in progress.
pub fn lock_finding(
    held: Option<(&str, Option<DateTime<Utc>>)>,
    now: DateTime<Utc>,
    stale_after_seconds: i64,
) -> Finding {
    match held {
        None => Finding::new(Check::Lock, Status::Passed, "free"),
        Some((run, since)) => {
            let age = since.map(|t| (now - t).num_seconds());
            match age {
                Some(a) if a <= stale_after_seconds => Finding::new(
                    Check::Lock,
                    Status::Warning,
                    format!("run {run} in progress ({a} s): another run would be refused"),
                ),
                _ => Finding::new(
                    Check::Lock,
                    Status::ActionRequired,
                    format!(
                        "held by run {run} for {}: every failover is refused until `lifeboat unlock`",
                        age.map_or("an unknown time".to_string(), |a| format!("{a} s"))
                    ),
                ),
            }
        }
    }
}

/// Pure: the fence watch of the run that made the current site active. `execution_status` is
/// what Step Functions says of the watch's current execution (`None`: unknown). A watch that
/// ended while the old site is unconfirmed requires action: a primary returning now would keep
/// its schedules live beside the serving site.
pub fn fence_watch_finding(
    run: Option<&str>,
    watch: Option<&crate::fence::watch::FenceWatchRecord>,
    execution_status: Option<&str>,
) -> Finding {
    let Some(run) = run else {
        return Finding::new(
            Check::FenceWatch,
            Status::Passed,
            "no failover or failback has moved production: no fence to watch",
        );
    };
    let Some(w) = watch else {
        return Finding::new(
            Check::FenceWatch,
            Status::Passed,
            format!("run {run} confirmed its fence itself (no watch)"),
        );
    };
    if let Some(at) = w.confirmed_at {
        return Finding::new(
            Check::FenceWatch,
            Status::Passed,
            format!(
                "run {run}'s old site confirmed fenced at {}",
                at.to_rfc3339()
            ),
        );
    }
    if let Some((at, why)) = &w.stopped {
        return Finding::new(
            Check::FenceWatch,
            Status::Passed,
            format!("run {run}'s watch stopped at {}: {why}", at.to_rfc3339()),
        );
    }
    match execution_status {
        Some(s) if s.starts_with("UNKNOWN") => Finding::new(
            Check::FenceWatch,
            Status::Warning,
            format!("run {run}'s old site is not confirmed fenced; its watch could not be read: {s}"),
        ),
        Some("RUNNING") => Finding::new(
            Check::FenceWatch,
            Status::Warning,
            format!(
                "run {run}'s old site is not confirmed fenced yet; its watch runs (generation {}, {} sweeps)",
                w.generation, w.attempts
            ),
        ),
        other => Finding::new(
            Check::FenceWatch,
            Status::ActionRequired,
            format!(
                "run {run}'s fence watch {} while the old site is unconfirmed: a returning primary would not be fenced — fence it by hand or start the watch again",
                other.map_or("cannot be found".to_string(), |s| format!("ended ({s})"))
            ),
        ),
    }
}

/// Evaluations of a period, summed up (for `lifeboat status` and the trend).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReadinessTrend {
    /// How many.
    pub evaluations: usize,
    /// Of those, passed.
    pub passed: usize,
    /// Of those, requiring action.
    pub action_required: usize,
    /// Check → how many evaluations it required action in.
    pub by_check: std::collections::BTreeMap<String, usize>,
    /// The first evaluation's time.
    pub since: Option<DateTime<Utc>>,
    /// One mark per evaluation, oldest first (the last 48): `+` passed, `!` action required.
    pub marks: String,
    /// The newest.
    pub latest: Option<Evaluation>,
}

/// One evaluation as the recent list keeps it (`readiness/<plan>/recent.json`): what the
/// trend needs, so `lifeboat status` reads one object, not a week of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    /// When.
    pub at: DateTime<Utc>,
    /// Its outcome.
    pub outcome: Outcome,
    /// The checks that required action.
    #[serde(default)]
    pub action_required: Vec<Check>,
}

impl From<&Evaluation> for Recent {
    fn from(e: &Evaluation) -> Self {
        Recent {
            at: e.evaluated_at,
            outcome: e.outcome,
            action_required: e.action_required().map(|f| f.check).collect(),
        }
    }
}

/// Evaluations the recent list keeps: 7 days at the default 30 minutes.
pub const RECENT_KEEP: usize = 336;

/// Pure: the recent list with one more evaluation, the oldest dropped beyond [`RECENT_KEEP`].
pub fn append_recent(mut list: Vec<Recent>, e: &Evaluation) -> Vec<Recent> {
    list.push(Recent::from(e));
    list.sort_by_key(|r| r.at);
    let extra = list.len().saturating_sub(RECENT_KEEP);
    list.drain(..extra);
    list
}

/// Pure: the trend of the evaluations given oldest first.
pub fn trend_of(evaluations: &[Evaluation]) -> ReadinessTrend {
    let recent: Vec<Recent> = evaluations.iter().map(Recent::from).collect();
    trend(&recent, evaluations.last().cloned())
}

/// Pure: the trend of the recent list (oldest first) and the latest evaluation.
pub fn trend(recent: &[Recent], latest: Option<Evaluation>) -> ReadinessTrend {
    let mut t = ReadinessTrend {
        evaluations: recent.len(),
        since: recent.first().map(|e| e.at),
        latest,
        ..Default::default()
    };
    for e in recent {
        match e.outcome {
            Outcome::Passed => t.passed += 1,
            Outcome::ActionRequired => t.action_required += 1,
        }
        for c in &e.action_required {
            *t.by_check.entry(c.name().to_string()).or_default() += 1;
        }
    }
    let evaluations = recent;
    t.marks = evaluations
        .iter()
        .rev()
        .take(48)
        .rev()
        .map(|e| match e.outcome {
            Outcome::Passed => '+',
            Outcome::ActionRequired => '!',
        })
        .collect();
    t
}

/// Pure: the trend as text lines — the latest outcome with its findings that need action, then
/// the period.
pub fn render(t: &ReadinessTrend, now: DateTime<Utc>) -> String {
    let Some(latest) = &t.latest else {
        return "readiness: no evaluation recorded yet (the readiness-check schedule runs every 30 minutes)\n".to_string();
    };
    let outcome = match latest.outcome {
        Outcome::Passed => "passed",
        Outcome::ActionRequired => "ACTION REQUIRED",
    };
    let mut out = format!(
        "readiness ({:?}): {outcome}, evaluated {} s ago\n",
        latest.direction,
        (now - latest.evaluated_at).num_seconds().max(0)
    );
    for f in &latest.findings {
        let mark = match f.status {
            Status::Passed => "ok  ",
            Status::Warning => "warn",
            Status::ActionRequired => "ACT ",
        };
        out.push_str(&format!("  {mark} {}: {}\n", f.check.name(), f.detail));
    }
    let worst: Vec<String> = {
        let mut v: Vec<(&String, &usize)> = t.by_check.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter().take(3).map(|(c, n)| format!("{c} {n}x")).collect()
    };
    out.push_str(&format!(
        "  trend: {} evaluations since {}: {} passed, {} action required{} [{}]\n",
        t.evaluations,
        t.since
            .map(|s| s.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
        t.passed,
        t.action_required,
        if worst.is_empty() {
            String::new()
        } else {
            format!(" (most often: {})", worst.join(", "))
        },
        t.marks
    ));
    out
}

#[cfg(test)]
mod tests;
