//! Scheduled health probes (EventBridge Scheduler → `health-ingest` with
//! `{"lifeboat_probe": {}}`): the Databricks status page (Status.io JSON) for the primary's
//! containers, and deep probes of the primary workspace itself. A disruption on the status
//! page, the plan's number of consecutive failed deep probes (unreachable), or a deep-probe
//! deviation from its baseline lasting `deep_probes.consecutive_intervals` declares an
//! incident: a failover execution is started — and waits for a human, as every failover does.
//!
//! A status page that cannot be read, or that does not list the configured containers, is
//! *unknown*, never healthy: the probe records it, emits the `StatusPageUnknown` metric for an
//! alarm, and declares nothing by itself.
//!
//! Deep probes, per interval: latency of SCIM Me (a get) and of a one-item clusters list,
//! latency of `SELECT 1` on `validation.warehouse` when it is running, and the job failure rate
//! of runs started in the last `failure_window_minutes`. Cluster start time is not probed: the
//! API gives it only per cluster (`clusters/events`, one call per recent start) and a start
//! takes minutes, which a probe could only sample by starting clusters itself.
//!
//! Decisions are pure functions ([`status_verdict`], [`evaluate`], [`declares`]); the I/O is
//! in [`handle`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, instrument, warn};

use crate::incident::IngestOutput;
use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    databricks::{
        clusters::ClusterFilter,
        jobs::{LifeCycleState, Run, RunFilter},
        sql::StatementState,
        warehouses::WarehouseState,
        WorkspaceClient,
    },
    plan::{DeepProbes, Direction, Plan},
    run::{RunId, RunKind, Trigger, TriggerSource},
};

/// Status.io code of planned maintenance (100 operational, 300 degraded performance).
pub const MAINTENANCE: u32 = 200;

/// Status.io codes: 400 partial disruption, 500 disruption, 600 security. Partial disruption
/// and worse count as an incident; degraded performance alone does not.
pub const DISRUPTION: u32 = 400;

/// Count metric (1 per probe that could not tell, else 0) an alarm watches: a status page
/// nobody can read must not go unnoticed just because it declares nothing.
pub const STATUS_PAGE_UNKNOWN: &str = "StatusPageUnknown";

/// Largest status page accepted (a real one is tens of kB).
const MAX_STATUS_PAGE_BYTES: usize = 4 << 20;

/// Newest runs read for the failure rate, at most (20 pages).
const MAX_RUNS: usize = 500;

/// What the status page says about the primary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StatusVerdict {
    /// Every configured container is present and below partial disruption.
    Operational,
    /// Partial disruption or worse in one of the primary's containers.
    Disrupted {
        /// `component (container: status)` of each disrupted one.
        components: Vec<String>,
        /// Open incidents naming those containers (or naming none).
        incidents: Vec<String>,
    },
    /// Planned maintenance of the primary's containers: not an incident.
    Maintenance {
        /// What is in maintenance.
        maintenances: Vec<String>,
    },
    /// No verdict: unreachable, not Status.io JSON, or a configured container is missing.
    Unknown {
        /// Why.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
struct StatusPage {
    result: StatusResult,
}

#[derive(Debug, Deserialize)]
struct StatusResult {
    #[allow(dead_code)] // required: it is part of what makes a document Status.io's
    status_overall: Overall,
    status: Vec<Component>,
    #[serde(default)]
    incidents: Option<Vec<Value>>,
    #[serde(default)]
    maintenance: Option<Maintenances>,
}

#[derive(Debug, Deserialize)]
struct Overall {
    #[allow(dead_code)] // parsed only to check the shape
    status_code: u32,
}

#[derive(Debug, Deserialize)]
struct Component {
    name: String,
    #[serde(default)]
    containers: Option<Vec<Container>>,
}

#[derive(Debug, Deserialize)]
struct Container {
    #[serde(default)]
    id: Option<String>,
    name: String,
    status_code: u32,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Maintenances {
    #[serde(default)]
    active: Option<Vec<Value>>,
}

/// Whether a page's container name is the configured one: case-insensitive, equal or a whole
/// word of it (`us-east-1` in `AWS us-east-1`, not in `AWS us-east-10`).
pub fn container_matches(on_page: &str, configured: &str) -> bool {
    let page = on_page.trim().to_lowercase();
    let want = configured.trim().to_lowercase();
    if want.is_empty() {
        return false;
    }
    page.match_indices(&want).any(|(i, _)| {
        let before = page[..i].chars().next_back();
        let after = page[i + want.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The names and ids an incident or maintenance entry gives for what it affects.
fn notice_targets(notice: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for field in ["containers", "containers_affected", "components"] {
        for v in notice
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match v {
                Value::String(s) => out.push(s.clone()),
                Value::Object(o) => {
                    for k in ["id", "_id", "name"] {
                        if let Some(s) = o.get(k).and_then(Value::as_str) {
                            out.push(s.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn notice_name(notice: &Value) -> String {
    notice
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string()
}

/// Pure: the verdict of a Status.io `/1.0/status/{pageId}` document for the primary's
/// configured containers. Every configured container must be on the page: a wrong page id or
/// container name reads as [`StatusVerdict::Unknown`], never as operational.
pub fn status_verdict(page: &Value, containers: &[String]) -> StatusVerdict {
    let parsed: StatusPage = match serde_json::from_value(page.clone()) {
        Ok(p) => p,
        Err(e) => {
            // Status.io answers an unknown page id with `{"status": {"error", "message"}}`.
            let said = page
                .pointer("/status/message")
                .and_then(Value::as_str)
                .map(|m| format!(" (the page says: {m})"))
                .unwrap_or_default();
            return StatusVerdict::Unknown {
                reason: format!("not a Status.io status document{said}: {e}"),
            };
        }
    };
    let result = parsed.result;
    let all: Vec<(&Component, &Container)> = result
        .status
        .iter()
        .flat_map(|c| c.containers.iter().flatten().map(move |k| (c, k)))
        .collect();
    let mut matched = BTreeSet::new();
    let mut missing = Vec::new();
    for want in containers {
        let mut found = false;
        for (i, (_, k)) in all.iter().enumerate() {
            if container_matches(&k.name, want) {
                matched.insert(i);
                found = true;
            }
        }
        if !found {
            missing.push(want.as_str());
        }
    }
    let matched: Vec<&(&Component, &Container)> = matched.iter().map(|&i| &all[i]).collect();
    let describe = |(c, k): &&(&Component, &Container)| {
        format!(
            "{} ({}: {})",
            c.name,
            k.name,
            k.status.as_deref().unwrap_or("status unknown")
        )
    };
    // Ids and names of the matched containers, for incidents and maintenances naming them.
    let ours: BTreeSet<String> = matched
        .iter()
        .flat_map(|(_, k)| {
            [Some(k.name.to_lowercase()), k.id.clone()]
                .into_iter()
                .flatten()
        })
        .collect();
    let names_ours = |n: &Value| {
        notice_targets(n)
            .iter()
            .any(|t| ours.contains(t) || ours.contains(&t.to_lowercase()))
    };
    let disrupted: Vec<String> = matched
        .iter()
        .filter(|(_, k)| k.status_code >= DISRUPTION)
        .map(describe)
        .collect();
    if !disrupted.is_empty() {
        let incidents = result
            .incidents
            .iter()
            .flatten()
            .filter(|n| notice_targets(n).is_empty() || names_ours(n))
            .map(notice_name)
            .collect();
        return StatusVerdict::Disrupted {
            components: disrupted,
            incidents,
        };
    }
    if !missing.is_empty() {
        let mut listed: Vec<&str> = all.iter().map(|(_, k)| k.name.as_str()).collect();
        listed.sort_unstable();
        listed.dedup();
        let listed = if listed.is_empty() {
            "none".to_string()
        } else {
            listed.into_iter().take(20).collect::<Vec<_>>().join(", ")
        };
        return StatusVerdict::Unknown {
            reason: format!(
                "the status page has no container {} (it lists: {listed})",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    }
    let mut maintenances: Vec<String> = matched
        .iter()
        .filter(|(_, k)| k.status_code == MAINTENANCE)
        .map(describe)
        .collect();
    maintenances.extend(
        result
            .maintenance
            .as_ref()
            .and_then(|m| m.active.as_ref())
            .into_iter()
            .flatten()
            .filter(|n| names_ours(n))
            .map(notice_name),
    );
    if !maintenances.is_empty() {
        return StatusVerdict::Maintenance { maintenances };
    }
    StatusVerdict::Operational
}

/// Reads the status page: the parsed JSON, or why there is none.
async fn read_status_page(url: &str) -> Result<Value, String> {
    let http = crate::http::client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    let mut resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("status page {url} unreachable: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("status page {url} answered HTTP {}", resp.status()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("status page {url}: reading the body: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_STATUS_PAGE_BYTES {
            return Err(format!(
                "status page {url} is larger than {MAX_STATUS_PAGE_BYTES} bytes"
            ));
        }
    }
    serde_json::from_slice(&body).map_err(|e| format!("status page {url} is not JSON: {e}"))
}

/// One deep probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Probe {
    /// `GET scim/v2/Me`: a get call.
    #[serde(rename = "scim_me")]
    ScimMe,
    /// `GET clusters/list?page_size=1`: a list call.
    #[serde(rename = "clusters_list")]
    ClustersList,
    /// `SELECT 1` on `validation.warehouse`.
    #[serde(rename = "sql_select_1")]
    SqlSelect1,
    /// Failed / completed job runs.
    #[serde(rename = "job_failure_rate")]
    JobFailureRate,
}

impl Probe {
    /// Key in the baseline and streak maps.
    pub fn key(self) -> &'static str {
        match self {
            Probe::ScimMe => "scim_me",
            Probe::ClustersList => "clusters_list",
            Probe::SqlSelect1 => "sql_select_1",
            Probe::JobFailureRate => "job_failure_rate",
        }
    }

    /// Name in summaries.
    pub fn label(self) -> &'static str {
        match self {
            Probe::ScimMe => "SCIM Me",
            Probe::ClustersList => "clusters list",
            Probe::SqlSelect1 => "SQL SELECT 1",
            Probe::JobFailureRate => "job failure rate",
        }
    }
}

/// What one probe measured in one interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measurement {
    /// A call's wall time.
    Latency {
        /// Which call.
        probe: Probe,
        /// Milliseconds.
        ms: f64,
    },
    /// Completed runs started in the window.
    FailureRate {
        /// FAILED, TIMEDOUT or INTERNAL_ERROR.
        failed: u32,
        /// Failed and succeeded (cancelled and skipped runs say nothing about the platform).
        total: u32,
        /// The window, minutes.
        window_minutes: u32,
    },
    /// The probe answered with an error.
    Failed {
        /// Which probe.
        probe: Probe,
        /// The error.
        error: String,
    },
    /// Not measured this interval.
    Skipped {
        /// Which probe.
        probe: Probe,
        /// Why.
        reason: String,
    },
}

impl Measurement {
    fn probe(&self) -> Probe {
        match self {
            Measurement::Latency { probe, .. }
            | Measurement::Failed { probe, .. }
            | Measurement::Skipped { probe, .. } => *probe,
            Measurement::FailureRate { .. } => Probe::JobFailureRate,
        }
    }
}

/// Pure: the median (`None` for no samples).
pub fn median(samples: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = samples.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Rolling baselines (`monitor/<plan>/baseline.json`): per probe, the newest healthy samples.
/// The median of them is the baseline: one odd sample does not move it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Probe key → samples, oldest first.
    #[serde(default)]
    pub probes: BTreeMap<String, VecDeque<f64>>,
}

impl Baseline {
    /// The baseline of a probe once it has `min_samples` samples.
    pub fn reference(&self, probe: Probe, min_samples: u32) -> Option<f64> {
        let s = self.probes.get(probe.key())?;
        if s.len() < min_samples.max(1) as usize {
            return None;
        }
        median(s.iter().copied())
    }

    fn record(&mut self, probe: Probe, value: f64, keep: u32) {
        if !value.is_finite() {
            return;
        }
        let s = self.probes.entry(probe.key().to_string()).or_default();
        s.push_back(value);
        while s.len() > keep.max(1) as usize {
            s.pop_front();
        }
    }
}

/// One probe's deviation in this interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deviation {
    /// Which probe.
    pub probe: Probe,
    /// The figure against its baseline, e.g. `clusters list 2400 ms vs baseline 110 ms (21.8x)`.
    pub figure: String,
    /// Consecutive intervals it has deviated, this one included.
    pub intervals: u32,
}

/// Pure: whether a measurement deviates, and its figure. Latency deviates only against an
/// established baseline, at `latency_factor` times it and at least `latency_floor_ms`; an error
/// only for a probe with a baseline (one that never worked is misconfigured, not an outage);
/// the failure rate is absolute once `min_runs` runs completed.
pub fn deviation(m: &Measurement, baseline: &Baseline, cfg: &DeepProbes) -> Option<String> {
    match m {
        Measurement::Latency { probe, ms } => {
            let reference = baseline.reference(*probe, cfg.min_baseline_samples)?;
            let slow = *ms >= cfg.latency_factor * reference && *ms >= cfg.latency_floor_ms as f64;
            slow.then(|| {
                format!(
                    "{} {ms:.0} ms vs baseline {reference:.0} ms ({:.1}x)",
                    probe.label(),
                    ms / reference.max(1.0)
                )
            })
        }
        Measurement::FailureRate {
            failed,
            total,
            window_minutes,
        } => {
            if *total == 0 || *total < cfg.min_runs {
                return None;
            }
            let rate = f64::from(*failed) / f64::from(*total);
            let base = baseline
                .reference(Probe::JobFailureRate, cfg.min_baseline_samples)
                .map(|b| format!(", baseline {b:.2}"))
                .unwrap_or_default();
            (rate >= cfg.failure_rate).then(|| {
                format!(
                    "job failure rate {rate:.2} ({failed} of {total} runs started in the last \
                     {window_minutes} min{base})"
                )
            })
        }
        Measurement::Failed { probe, error } => baseline
            .reference(*probe, cfg.min_baseline_samples)
            .map(|_| format!("{} failed: {error}", probe.label())),
        Measurement::Skipped { .. } => None,
    }
}

/// What one interval's measurements mean.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The deviations of this interval.
    pub deviations: Vec<Deviation>,
    /// Probe key → consecutive deviating intervals (probes not deviating are absent).
    pub streaks: BTreeMap<String, u32>,
    /// The baselines after this interval.
    pub baseline: Baseline,
    /// The trigger summary, when a deviation has lasted `consecutive_intervals`.
    pub sustained: Option<String>,
}

/// Pure: one interval. Streaks grow per deviating probe and end with a normal sample; the
/// baselines learn only from intervals without any deviation, so an incident never becomes
/// the new normal.
pub fn evaluate(
    streaks: &BTreeMap<String, u32>,
    baseline: &Baseline,
    measurements: &[Measurement],
    cfg: &DeepProbes,
) -> Evaluation {
    let mut next = BTreeMap::new();
    let mut deviations = Vec::new();
    for m in measurements {
        if let Some(figure) = deviation(m, baseline, cfg) {
            let probe = m.probe();
            let intervals = streaks
                .get(probe.key())
                .copied()
                .unwrap_or(0)
                .saturating_add(1);
            next.insert(probe.key().to_string(), intervals);
            deviations.push(Deviation {
                probe,
                figure,
                intervals,
            });
        }
    }
    let mut baseline = baseline.clone();
    if deviations.is_empty() {
        for m in measurements {
            match m {
                Measurement::Latency { probe, ms } => {
                    baseline.record(*probe, *ms, cfg.baseline_samples)
                }
                Measurement::FailureRate { failed, total, .. }
                    if *total > 0 && *total >= cfg.min_runs =>
                {
                    baseline.record(
                        Probe::JobFailureRate,
                        f64::from(*failed) / f64::from(*total),
                        cfg.baseline_samples,
                    )
                }
                _ => {}
            }
        }
    }
    let sustained = deviations
        .iter()
        .any(|d| d.intervals >= cfg.consecutive_intervals)
        .then(|| {
            format!(
                "deep probes of the primary workspace deviate from their baselines: {}",
                deviations
                    .iter()
                    .map(|d| format!(
                        "{} for {} interval{}",
                        d.figure,
                        d.intervals,
                        if d.intervals == 1 { "" } else { "s" }
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        });
    Evaluation {
        deviations,
        streaks: next,
        baseline,
        sustained,
    }
}

/// Pure: `Some(true)` for a failed run, `Some(false)` for a succeeded one, `None` for a run
/// that says nothing about the platform (active, cancelled, skipped, excluded, ...).
pub fn run_failed(run: &Run) -> Option<bool> {
    if run.state.life_cycle_state == LifeCycleState::InternalError {
        return Some(true);
    }
    if run.state.life_cycle_state != LifeCycleState::Terminated {
        return None;
    }
    match run.state.result_state.as_deref() {
        Some("FAILED" | "TIMEDOUT") => Some(true),
        Some("SUCCESS" | "SUCCESS_WITH_FAILURES") => Some(false),
        _ => None,
    }
}

/// Pure: (failed, total) of the runs started at or after `since_ms`.
pub fn failure_counts(runs: &[Run], since_ms: i64) -> (u32, u32) {
    runs.iter()
        .filter(|r| r.start_time >= since_ms)
        .filter_map(run_failed)
        .fold((0, 0), |(f, t), failed| (f + u32::from(failed), t + 1))
}

/// Pure: the incident summary, if the evidence declares one.
pub fn declares(
    status: Option<&StatusVerdict>,
    consecutive_failures: u32,
    threshold: u32,
    sustained: Option<&str>,
) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(StatusVerdict::Disrupted {
        components,
        incidents,
    }) = status
    {
        let mut r = format!(
            "Databricks status page reports a disruption: {}",
            components.join(", ")
        );
        if !incidents.is_empty() {
            r.push_str(&format!(" (incidents: {})", incidents.join(", ")));
        }
        reasons.push(r);
    }
    if threshold > 0 && consecutive_failures >= threshold {
        reasons.push(format!(
            "{consecutive_failures} consecutive deep probes of the primary workspace failed"
        ));
    }
    if let Some(s) = sustained {
        reasons.push(s.to_string());
    }
    (!reasons.is_empty()).then(|| reasons.join(". "))
}

/// Probe state kept between invocations (`monitor/<plan>/probe.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeState {
    /// Consecutive failed deep probes (the primary did not answer).
    pub consecutive_failures: u32,
    /// Last error seen.
    pub last_error: Option<String>,
    /// The status page's last verdict (`None`: not configured).
    #[serde(default)]
    pub status_page: Option<StatusVerdict>,
    /// Probe key → consecutive deviating intervals.
    #[serde(default)]
    pub streaks: BTreeMap<String, u32>,
    /// The last interval's measurements.
    #[serde(default)]
    pub measurements: Vec<Measurement>,
    /// The last interval's deviations.
    #[serde(default)]
    pub deviations: Vec<Deviation>,
    /// Metrics the last probe emitted (name → value), as an alarm sees them.
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// When the last probe ran.
    #[serde(default)]
    pub checked_at: Option<DateTime<Utc>>,
}

/// SCIM Me and a one-item clusters list, timed. An error means the primary is unreachable.
async fn core_probes(client: &WorkspaceClient) -> Result<Vec<Measurement>, String> {
    let client = client.with_deadline(Instant::now() + Duration::from_secs(15));
    let started = Instant::now();
    client.me().await.map_err(|e| e.to_string())?;
    let me = started.elapsed();
    let started = Instant::now();
    let mut clusters = client.list_clusters(ClusterFilter {
        page_size: Some(1),
        ..Default::default()
    });
    clusters
        .next()
        .await
        .transpose()
        .map_err(|e| e.to_string())?;
    let list = started.elapsed();
    Ok(vec![
        Measurement::Latency {
            probe: Probe::ScimMe,
            ms: me.as_secs_f64() * 1000.0,
        },
        Measurement::Latency {
            probe: Probe::ClustersList,
            ms: list.as_secs_f64() * 1000.0,
        },
    ])
}

/// `SELECT 1` on the plan's warehouse, timed, only when it is running: a probe must not start
/// (and pay for) a stopped warehouse, and a cold start is no latency.
async fn sql_probe(client: &WorkspaceClient, warehouse: Option<&str>) -> Measurement {
    let probe = Probe::SqlSelect1;
    let Some(name) = warehouse else {
        return Measurement::Skipped {
            probe,
            reason: "no validation.warehouse in the plan".into(),
        };
    };
    let client = client.with_deadline(Instant::now() + Duration::from_secs(15));
    let warehouses = match client.all_warehouses().await {
        Ok(w) => w,
        Err(e) => {
            return Measurement::Failed {
                probe,
                error: format!("listing warehouses: {e}"),
            }
        }
    };
    let Some(wh) = warehouses.into_iter().find(|w| w.name == name) else {
        return Measurement::Skipped {
            probe,
            reason: format!("warehouse `{name}` not found at the primary"),
        };
    };
    if wh.state != WarehouseState::Running {
        return Measurement::Skipped {
            probe,
            reason: format!(
                "warehouse `{name}` is {:?}; a probe does not start it",
                wh.state
            ),
        };
    }
    let started = Instant::now();
    match client
        .execute_statement(&wh.id.0, "SELECT 1", Duration::from_secs(10))
        .await
    {
        Ok(st) if st.status.state == StatementState::Succeeded => Measurement::Latency {
            probe,
            ms: started.elapsed().as_secs_f64() * 1000.0,
        },
        Ok(st) => Measurement::Failed {
            probe,
            error: format!(
                "statement {:?}: {}",
                st.status.state,
                st.status.error.and_then(|e| e.message).unwrap_or_default()
            ),
        },
        Err(e) => Measurement::Failed {
            probe,
            error: e.to_string(),
        },
    }
}

/// Failed / completed runs started in the window (newest first, at most [`MAX_RUNS`]).
async fn failure_rate_probe(client: &WorkspaceClient, window_minutes: u32) -> Measurement {
    let client = client.with_deadline(Instant::now() + Duration::from_secs(15));
    let since_ms = Utc::now().timestamp_millis() - i64::from(window_minutes) * 60_000;
    let mut runs = client.list_runs(RunFilter::default());
    let mut seen = Vec::new();
    while let Some(run) = runs.next().await {
        match run {
            Ok(r) if r.start_time >= since_ms => {
                seen.push(r);
                if seen.len() >= MAX_RUNS {
                    break;
                }
            }
            // Newest first: the rest started before the window.
            Ok(_) => break,
            Err(e) => {
                return Measurement::Failed {
                    probe: Probe::JobFailureRate,
                    error: format!("listing runs: {e}"),
                }
            }
        }
    }
    let (failed, total) = failure_counts(&seen, since_ms);
    Measurement::FailureRate {
        failed,
        total,
        window_minutes,
    }
}

fn describe_status(status: Option<&StatusVerdict>) -> String {
    match status {
        None => "not configured".into(),
        Some(StatusVerdict::Operational) => "operational for the primary".into(),
        Some(StatusVerdict::Maintenance { maintenances }) => format!(
            "in planned maintenance for the primary ({}), not an incident",
            maintenances.join(", ")
        ),
        Some(StatusVerdict::Unknown { reason }) => {
            format!("unknown ({reason}); {STATUS_PAGE_UNKNOWN} emitted, no incident by itself")
        }
        Some(StatusVerdict::Disrupted { components, .. }) => {
            format!("disrupted ({})", components.join(", "))
        }
    }
}

/// Runs the probes and starts a failover when they declare an incident.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps, plan: Plan) -> Result<IngestOutput, StepError> {
    let mon = &plan.monitoring;
    let mut metrics = BTreeMap::new();
    let status = match mon.status_url() {
        Some(url) => {
            let containers = mon.containers(&plan.sites.primary.region);
            let verdict = match read_status_page(&url).await {
                Ok(page) => status_verdict(&page, &containers),
                Err(reason) => StatusVerdict::Unknown { reason },
            };
            let unknown = matches!(verdict, StatusVerdict::Unknown { .. });
            if let StatusVerdict::Unknown { reason } = &verdict {
                warn!(%reason, "status page unknown");
            }
            let value = if unknown { 1.0 } else { 0.0 };
            crate::metrics::emit(STATUS_PAGE_UNKNOWN, value, &plan.name);
            metrics.insert(STATUS_PAGE_UNKNOWN.to_string(), value);
            Some(verdict)
        }
        None => None,
    };
    let key = keys::probe(&plan.name);
    let mut state = deps
        .ledger
        .get::<ProbeState>(&key)
        .await?
        .map(|v| v.value)
        .unwrap_or_default();
    let mut sustained = None;
    if mon.probe_failures_to_declare > 0 {
        let client = deps.workspaces.client(&plan.sites.primary).await?;
        let measured = match core_probes(&client).await {
            Ok(mut m) => {
                let (sql, rate) = futures::join!(
                    sql_probe(&client, plan.validation.warehouse.as_deref()),
                    failure_rate_probe(&client, mon.deep_probes.failure_window_minutes)
                );
                m.push(sql);
                m.push(rate);
                state.consecutive_failures = 0;
                state.last_error = None;
                m
            }
            Err(e) => {
                state.consecutive_failures += 1;
                state.last_error = Some(e);
                Vec::new()
            }
        };
        let baseline_key = keys::probe_baseline(&plan.name);
        let baseline = deps
            .ledger
            .get::<Baseline>(&baseline_key)
            .await?
            .map(|v| v.value)
            .unwrap_or_default();
        let ev = evaluate(&state.streaks, &baseline, &measured, &mon.deep_probes);
        if ev.baseline != baseline {
            deps.ledger.put(&baseline_key, &ev.baseline).await?;
        }
        state.streaks = ev.streaks;
        state.deviations = ev.deviations;
        state.measurements = measured;
        sustained = ev.sustained;
    }
    state.status_page = status.clone();
    state.metrics = metrics;
    state.checked_at = Some(Utc::now());
    deps.ledger.put(&key, &state).await?;
    let Some(reason) = declares(
        status.as_ref(),
        state.consecutive_failures,
        mon.probe_failures_to_declare,
        sustained.as_deref(),
    ) else {
        info!(
            failures = state.consecutive_failures,
            deviations = state.deviations.len(),
            "primary healthy enough"
        );
        let deep = if mon.probe_failures_to_declare == 0 {
            "deep probes off".to_string()
        } else if state.deviations.is_empty() {
            "no deep-probe deviation".to_string()
        } else {
            format!(
                "deviating: {}",
                state
                    .deviations
                    .iter()
                    .map(|d| format!(
                        "{} for {} of {} intervals",
                        d.figure, d.intervals, mon.deep_probes.consecutive_intervals
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        };
        return Ok(IngestOutput::Ignored {
            reason: format!(
                "no incident: status page {}; {} consecutive deep-probe failures (threshold {}); \
                 {deep}",
                describe_status(status.as_ref()),
                state.consecutive_failures,
                mon.probe_failures_to_declare
            ),
        });
    };
    // One execution per plan and hour: repeated probes of the same incident never start a second.
    let now = Utc::now();
    let trigger = Trigger {
        source: TriggerSource::HealthEvent,
        summary: reason,
        declared_at: now,
        event_arn: None,
        incident_started_at: None,
    };
    let mut run =
        crate::incident::run_context(&plan, RunKind::Failover, Direction::Failover, trigger, None);
    run.run_id = RunId(format!("probe-{}-{}", plan.name, now.format("%Y%m%d%H")));
    crate::incident::start_failover(deps, &run).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(name: &str, code: u32, status: &str) -> Value {
        json!({"id": format!("id-{name}"), "name": name, "status": status, "status_code": code,
               "updated": "2026-11-26T06:00:00.000Z"})
    }

    /// A Status.io `/1.0/status/{pageId}` document as the public API serves it.
    fn page(east: (u32, &str), incidents: Value, active: Value) -> Value {
        json!({"result": {
            "status_overall": {"updated": "2026-11-26T06:00:00.000Z", "status": "x", "status_code": east.0.max(100)},
            "status": [
                {"id": "c1", "name": "Compute", "updated": "2026-11-26T06:00:00.000Z", "status": east.1, "status_code": east.0,
                 "containers": [container("AWS us-east-1", east.0, east.1), container("AWS us-west-2", 100, "Operational")]},
                {"id": "c2", "name": "Jobs", "updated": "2026-11-26T06:00:00.000Z", "status": "Operational", "status_code": 100,
                 "containers": [container("AWS us-east-1", 100, "Operational"), container("AWS us-west-2", 100, "Operational")]}],
            "incidents": incidents,
            "maintenance": {"active": active, "upcoming": [{"id": "m9", "name": "Next week", "containers": [{"id": "id-AWS us-east-1", "name": "AWS us-east-1"}]}]}}})
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn status_verdicts() {
        let east = names(&["AWS us-east-1"]);
        let incident = json!([{"id": "i1", "name": "Elevated cluster start failures",
                               "containers": [{"id": "id-AWS us-east-1", "name": "AWS us-east-1"}]}]);
        let west_incident = json!([{"id": "i2", "name": "West trouble", "containers": [{"id": "id-AWS us-west-2", "name": "AWS us-west-2"}]}]);
        let maint = json!([{"id": "m1", "name": "Control plane upgrade", "containers": [{"id": "id-AWS us-east-1", "name": "AWS us-east-1"}]}]);
        let unknown = |v: &StatusVerdict, needle: &str| matches!(v, StatusVerdict::Unknown { reason } if reason.contains(needle));
        type Check = Box<dyn Fn(&StatusVerdict) -> bool>;
        let cases: Vec<(&str, Value, Vec<String>, Check)> = vec![
            (
                "operational",
                page((100, "Operational"), json!([]), json!([])),
                east.clone(),
                Box::new(|v| *v == StatusVerdict::Operational),
            ),
            (
                "the region alone matches its container",
                page((100, "Operational"), json!([]), json!([])),
                names(&["us-east-1"]),
                Box::new(|v| *v == StatusVerdict::Operational),
            ),
            (
                "partial disruption with its incident",
                page(
                    (400, "Partial Service Disruption"),
                    incident.clone(),
                    json!([]),
                ),
                east.clone(),
                Box::new(|v| {
                    *v == StatusVerdict::Disrupted {
                        components: vec![
                            "Compute (AWS us-east-1: Partial Service Disruption)".into()
                        ],
                        incidents: vec!["Elevated cluster start failures".into()],
                    }
                }),
            ),
            (
                "another region's incident is not ours",
                page((500, "Service Disruption"), west_incident, json!([])),
                east.clone(),
                Box::new(
                    |v| matches!(v, StatusVerdict::Disrupted { incidents, .. } if incidents.is_empty()),
                ),
            ),
            (
                "degraded performance is below the line",
                page((300, "Degraded Performance"), json!([]), json!([])),
                east.clone(),
                Box::new(|v| *v == StatusVerdict::Operational),
            ),
            (
                "another region's disruption",
                page((100, "Operational"), json!([]), json!([])),
                names(&["AWS us-west-2"]),
                Box::new(|v| *v == StatusVerdict::Operational),
            ),
            (
                "planned maintenance is not an incident",
                page((200, "Planned Maintenance"), json!([]), maint.clone()),
                east.clone(),
                Box::new(|v| {
                    matches!(v, StatusVerdict::Maintenance { maintenances }
                        if maintenances.len() == 2 && maintenances[1] == "Control plane upgrade")
                }),
            ),
            (
                "active maintenance naming the container",
                page((100, "Operational"), json!([]), maint),
                east.clone(),
                Box::new(|v| matches!(v, StatusVerdict::Maintenance { .. })),
            ),
            (
                "a wrong container name is unknown, not healthy",
                page((100, "Operational"), json!([]), json!([])),
                names(&["AWS eu-west-9"]),
                Box::new(move |v| unknown(v, "`AWS eu-west-9`") && unknown(v, "AWS us-west-2")),
            ),
            (
                "one configured container missing is unknown",
                page((100, "Operational"), json!([]), json!([])),
                names(&["AWS us-east-1", "AWS us-east-2"]),
                Box::new(move |v| unknown(v, "`AWS us-east-2`")),
            ),
            (
                "a disruption wins over a missing container",
                page((400, "Partial Service Disruption"), json!([]), json!([])),
                names(&["AWS us-east-1", "AWS us-east-2"]),
                Box::new(|v| matches!(v, StatusVerdict::Disrupted { .. })),
            ),
            (
                "us-east-1 is not us-east-10",
                page((100, "Operational"), json!([]), json!([])),
                names(&["us-east-10"]),
                Box::new(move |v| unknown(v, "us-east-10")),
            ),
            (
                "a wrong page id",
                json!({"status": {"error": "yes", "code": 404, "message": "Page not found"}}),
                east.clone(),
                Box::new(move |v| unknown(v, "Page not found")),
            ),
            (
                "not the Status.io shape",
                json!({"result": {"components": []}}),
                east.clone(),
                Box::new(move |v| unknown(v, "not a Status.io status document")),
            ),
            (
                "a page without components",
                json!({"result": {"status_overall": {"status_code": 100}, "status": []}}),
                east.clone(),
                Box::new(move |v| unknown(v, "it lists: none")),
            ),
            (
                "a container without a status code",
                json!({"result": {"status_overall": {"status_code": 100}, "status": [
                    {"name": "Compute", "containers": [{"name": "AWS us-east-1"}]}]}}),
                east.clone(),
                Box::new(move |v| unknown(v, "status_code")),
            ),
        ];
        for (name, doc, containers, check) in cases {
            let v = status_verdict(&doc, &containers);
            assert!(check(&v), "{name}: {v:?}");
        }
    }

    /// Serves one raw HTTP response per connection; the URL.
    async fn raw_server(response: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/1.0/status/x", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response.as_bytes()).await;
            }
        });
        url
    }

    #[tokio::test]
    async fn unreadable_pages_are_reasons() {
        let cases = [
            (
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                "HTTP 404",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n<html>",
                "is not JSON",
            ),
        ];
        for (response, needle) in cases {
            let url = raw_server(response).await;
            let err = read_status_page(&url).await.unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        let err = read_status_page("http://127.0.0.1:1/x").await.unwrap_err();
        assert!(err.contains("unreachable"), "{err}");
        let ok = raw_server("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{\"a\": 1}").await;
        assert_eq!(read_status_page(&ok).await.unwrap(), json!({"a": 1}));
    }

    #[test]
    fn container_names_match_whole_words() {
        for (page, configured, want) in [
            ("AWS us-east-1", "AWS us-east-1", true),
            ("AWS us-east-1", "aws US-EAST-1", true),
            ("AWS us-east-1", "us-east-1", true),
            ("AWS us-east-10", "us-east-1", false),
            ("AWS us-east-1", "east", true),
            ("AWS us-east-1", "eas", false),
            ("AWS us-east-1", " ", false),
        ] {
            assert_eq!(
                container_matches(page, configured),
                want,
                "{page} / {configured}"
            );
        }
    }

    fn cfg() -> DeepProbes {
        DeepProbes {
            min_baseline_samples: 3,
            baseline_samples: 5,
            ..DeepProbes::default()
        }
    }

    fn lat(probe: Probe, ms: f64) -> Measurement {
        Measurement::Latency { probe, ms }
    }

    fn with(probe: Probe, samples: &[f64]) -> Baseline {
        let mut b = Baseline::default();
        b.probes
            .insert(probe.key().into(), samples.iter().copied().collect());
        b
    }

    #[test]
    fn deviations_against_baselines() {
        let list = Probe::ClustersList;
        let rate = |failed, total| Measurement::FailureRate {
            failed,
            total,
            window_minutes: 60,
        };
        let sql_failed = Measurement::Failed {
            probe: Probe::SqlSelect1,
            error: "boom".into(),
        };
        for (name, m, baseline, want) in [
            ("no baseline yet", lat(list, 5000.0), Baseline::default(), None),
            ("too few samples", lat(list, 5000.0), with(list, &[100.0, 100.0]), None),
            (
                "21.8x",
                lat(list, 2400.0),
                with(list, &[100.0, 110.0, 120.0]),
                Some("clusters list 2400 ms vs baseline 110 ms (21.8x)"),
            ),
            ("4x is within", lat(list, 440.0), with(list, &[110.0; 3]), None),
            ("under the floor", lat(list, 200.0), with(list, &[10.0; 3]), None),
            (
                "the median ignores one odd sample",
                lat(list, 600.0),
                with(list, &[100.0, 100.0, 5000.0]),
                Some("clusters list 600 ms vs baseline 100 ms (6.0x)"),
            ),
            (
                "failure rate",
                rate(12, 15),
                Baseline::default(),
                Some("job failure rate 0.80 (12 of 15 runs started in the last 60 min)"),
            ),
            ("too few runs", rate(4, 4), Baseline::default(), None),
            ("below the rate", rate(4, 10), Baseline::default(), None),
            (
                "failure rate with its baseline",
                rate(5, 10),
                with(Probe::JobFailureRate, &[0.1; 3]),
                Some("job failure rate 0.50 (5 of 10 runs started in the last 60 min, baseline 0.10)"),
            ),
            ("a probe that never worked", sql_failed.clone(), Baseline::default(), None),
            (
                "a probe that worked fails",
                sql_failed,
                with(Probe::SqlSelect1, &[20.0; 3]),
                Some("SQL SELECT 1 failed: boom"),
            ),
            (
                "skipped",
                Measurement::Skipped {
                    probe: Probe::SqlSelect1,
                    reason: "stopped".into(),
                },
                with(Probe::SqlSelect1, &[20.0; 3]),
                None,
            ),
        ] {
            assert_eq!(
                deviation(&m, &baseline, &cfg()).as_deref(),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn only_a_sustained_deviation_declares() {
        let cfg = cfg();
        let list = Probe::ClustersList;
        let healthy = |ms| {
            vec![
                lat(Probe::ScimMe, 50.0),
                lat(list, ms),
                Measurement::FailureRate {
                    failed: 0,
                    total: 12,
                    window_minutes: 60,
                },
            ]
        };
        // (measurements, deviating probes' streak, declares)
        let slow = || vec![lat(Probe::ScimMe, 50.0), lat(list, 2400.0)];
        let steps: Vec<(Vec<Measurement>, Option<u32>, bool)> = vec![
            (slow(), None, false), // no baseline: learns even a slow sample
            (healthy(110.0), None, false),
            (healthy(100.0), None, false),
            (slow(), Some(1), false), // baseline 110 now
            (healthy(120.0), None, false),
            (slow(), Some(1), false),
            (slow(), Some(2), false),
            (slow(), Some(3), true),
            (slow(), Some(4), true),
            (vec![], None, false), // unreachable: no measurements end every streak
        ];
        let mut streaks = BTreeMap::new();
        let mut baseline = Baseline::default();
        for (i, (m, streak, declared)) in steps.into_iter().enumerate() {
            let ev = evaluate(&streaks, &baseline, &m, &cfg);
            assert_eq!(ev.streaks.get("clusters_list").copied(), streak, "step {i}");
            assert_eq!(ev.sustained.is_some(), declared, "step {i}: {ev:?}");
            if streak.is_some() {
                assert_eq!(ev.baseline, baseline, "step {i}: a deviation never teaches");
            }
            if i == 8 {
                assert_eq!(
                    ev.sustained.as_deref(),
                    Some(
                        "deep probes of the primary workspace deviate from their baselines: \
                         clusters list 2400 ms vs baseline 115 ms (20.9x) for 4 intervals"
                    )
                );
            }
            streaks = ev.streaks;
            baseline = ev.baseline;
        }
        assert_eq!(
            baseline.probes["clusters_list"],
            VecDeque::from([2400.0, 110.0, 100.0, 120.0])
        );
        assert_eq!(baseline.probes["job_failure_rate"].len(), 3);
        // The newest `baseline_samples` are kept.
        let mut b = Baseline::default();
        for x in 0..9 {
            b.record(list, f64::from(x), cfg.baseline_samples);
        }
        assert_eq!(
            b.probes["clusters_list"],
            VecDeque::from([4.0, 5.0, 6.0, 7.0, 8.0])
        );
        assert_eq!(b.reference(list, 3), Some(6.0));
        assert_eq!(median([1.0, 3.0, 2.0, 10.0]), Some(2.5));
        assert_eq!(median([]), None);
    }

    fn run(life: &str, result: Option<&str>, start: i64) -> Run {
        serde_json::from_value(json!({"run_id": start, "start_time": start,
            "state": {"life_cycle_state": life, "result_state": result}}))
        .unwrap()
    }

    #[test]
    fn failure_rate_counts_what_says_something() {
        for (life, result, want) in [
            ("TERMINATED", Some("SUCCESS"), Some(false)),
            ("TERMINATED", Some("SUCCESS_WITH_FAILURES"), Some(false)),
            ("TERMINATED", Some("FAILED"), Some(true)),
            ("TERMINATED", Some("TIMEDOUT"), Some(true)),
            ("INTERNAL_ERROR", Some("FAILED"), Some(true)),
            ("TERMINATED", Some("CANCELED"), None),
            ("SKIPPED", None, None),
            ("RUNNING", None, None),
            ("TERMINATED", Some("UPSTREAM_FAILED"), None),
        ] {
            assert_eq!(run_failed(&run(life, result, 1)), want, "{life} {result:?}");
        }
        let runs = [
            run("TERMINATED", Some("FAILED"), 100),
            run("TERMINATED", Some("SUCCESS"), 90),
            run("TERMINATED", Some("CANCELED"), 80),
            run("TERMINATED", Some("FAILED"), 10),
        ];
        assert_eq!(failure_counts(&runs, 50), (1, 2));
    }

    #[test]
    fn declarations() {
        let disrupted = StatusVerdict::Disrupted {
            components: vec!["Compute (AWS us-east-1: Partial Service Disruption)".into()],
            incidents: vec!["Cluster starts failing".into()],
        };
        let unknown = StatusVerdict::Unknown { reason: "x".into() };
        let maint = StatusVerdict::Maintenance {
            maintenances: vec!["upgrade".into()],
        };
        for (status, failures, threshold, sustained, want) in [
            (Some(&disrupted), 0, 3, None, Some("Databricks status page reports a disruption: Compute (AWS us-east-1: Partial Service Disruption) (incidents: Cluster starts failing)")),
            (Some(&unknown), 0, 3, None, None),
            (Some(&maint), 0, 3, None, None),
            (None, 2, 3, None, None),
            (None, 3, 3, None, Some("3 consecutive deep probes of the primary workspace failed")),
            (None, 9, 0, None, None),
            (Some(&unknown), 0, 3, Some("slow"), Some("slow")),
            (None, 3, 3, Some("slow"), Some("3 consecutive deep probes of the primary workspace failed. slow")),
        ] {
            assert_eq!(
                declares(status, failures, threshold, sustained).as_deref(),
                want
            );
        }
    }

    fn plan() -> Plan {
        Plan::from_toml(include_str!("../../../lifeboat.toml"), "lifeboat.toml")
            .expect("the example plan")
    }

    #[test]
    fn monitoring_keys_and_their_validation() {
        let p = plan();
        let mut m = p.monitoring.clone();
        m.status_page_url = None;
        m.status_page_id = Some("5e2b8cd1a4e0b804c0c62e7c".into());
        assert_eq!(
            m.status_url().as_deref(),
            Some("https://api.status.io/1.0/status/5e2b8cd1a4e0b804c0c62e7c")
        );
        m.status_page_url = Some("http://127.0.0.1:9/1.0/status/x".into());
        assert_eq!(
            m.status_url().as_deref(),
            Some("http://127.0.0.1:9/1.0/status/x")
        );
        m.status_containers = vec![];
        m.status_container = None;
        assert_eq!(m.containers("us-east-1"), names(&["us-east-1"]));
        m.status_container = Some("AWS us-east-1".into());
        assert_eq!(m.containers("us-east-1"), names(&["AWS us-east-1"]));

        let refused = |edit: &dyn Fn(&mut Plan), key: &str| {
            let mut p = plan();
            edit(&mut p);
            match p.validate() {
                Err(crate::plan::PlanError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        };
        refused(
            &|p| p.monitoring.status_containers = names(&[" "]),
            "monitoring.status_containers[0]",
        );
        refused(
            &|p| p.monitoring.status_containers = names(&["AWS us-east-1", "AWS us-east-1\n"]),
            "monitoring.status_containers[1]",
        );
        refused(
            &|p| p.monitoring.status_containers = names(&["a", "A"]),
            "monitoring.status_containers[1]",
        );
        refused(
            &|p| {
                p.monitoring.status_containers = names(&["a"]);
                p.monitoring.status_container = Some("b".into());
            },
            "monitoring.status_container",
        );
        refused(
            &|p| p.monitoring.status_page_id = Some("abc/../x".into()),
            "monitoring.status_page_id",
        );
        refused(
            &|p| p.monitoring.status_page_id = Some(String::new()),
            "monitoring.status_page_id",
        );
        refused(
            &|p| p.monitoring.status_page_url = Some("ftp://x/y".into()),
            "monitoring.status_page_url",
        );
        refused(
            &|p| p.monitoring.deep_probes.latency_factor = 1.0,
            "monitoring.deep_probes.latency_factor",
        );
        refused(
            &|p| p.monitoring.deep_probes.latency_factor = f64::NAN,
            "monitoring.deep_probes.latency_factor",
        );
        refused(
            &|p| p.monitoring.deep_probes.failure_rate = 0.0,
            "monitoring.deep_probes.failure_rate",
        );
        refused(
            &|p| p.monitoring.deep_probes.consecutive_intervals = 0,
            "monitoring.deep_probes.consecutive_intervals",
        );
        refused(
            &|p| p.monitoring.deep_probes.baseline_samples = 2,
            "monitoring.deep_probes.baseline_samples",
        );
        // TOML: the new table parses, unknown keys in it are refused.
        let text = r#"
name = "p"
[objectives]
rto_minutes = 30
rpo_minutes = 15
[sites.primary]
region = "us-east-1"
workspace_url = "https://a.cloud.databricks.com"
auth = { type = "pat", secret_id = "a" }
[sites.dr]
region = "us-west-2"
workspace_url = "https://b.cloud.databricks.com"
auth = { type = "pat", secret_id = "b" }
[monitoring]
status_page_id = "abc123"
status_containers = ["AWS us-east-1"]
[monitoring.deep_probes]
latency_factor = 8.0
consecutive_intervals = 2
"#;
        let p = Plan::from_toml(text, "t").unwrap();
        assert_eq!(p.monitoring.deep_probes.latency_factor, 8.0);
        assert_eq!(p.monitoring.deep_probes.min_baseline_samples, 5);
        assert_eq!(
            p.monitoring.containers("us-east-1"),
            names(&["AWS us-east-1"])
        );
        let bad = text.replace("consecutive_intervals = 2", "consecutive = 2");
        let err = Plan::from_toml(&bad, "t").unwrap_err().to_string();
        assert!(err.contains("consecutive"), "{err}");
    }
}
