//! `[monitoring]`: the health signals that may start a failover — AWS Health events, the
//! Databricks status page, and deep probes of the primary judged against their own baseline — and
//! how often each site's configuration is snapshotted for the drift check.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// Signals that may start a failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitoring {
    /// AWS services whose `issue` events in the primary region qualify (e.g. `EC2`, `S3`).
    #[serde(default = "default_services")]
    pub services: Vec<String>,
    /// Status.io JSON of the Databricks status page; overrides `status_page_id`.
    #[serde(default)]
    pub status_page_url: Option<String>,
    /// Status.io page id: the page read is `https://api.status.io/1.0/status/<id>`.
    #[serde(default)]
    pub status_page_id: Option<String>,
    /// Status page containers that must all be present for the primary, e.g.
    /// `["AWS us-east-1"]`; case-insensitive, a name may stand for a whole word of a longer
    /// one (`us-east-1` matches `AWS us-east-1`). Defaults to `status_container`, else the
    /// primary's region. A name missing from the page reads as unknown, never as healthy.
    #[serde(default)]
    pub status_containers: Vec<String>,
    /// One container name (older spelling of `status_containers`).
    #[serde(default)]
    pub status_container: Option<String>,
    /// Consecutive failed deep probes of the primary (SCIM Me, clusters list unanswered) that
    /// declare an incident; 0 turns every deep probe off, `deep_probes` included.
    #[serde(default = "default_probe_failures")]
    pub probe_failures_to_declare: u32,
    /// When slow or failing (but answering) deep probes declare an incident.
    #[serde(default)]
    pub deep_probes: DeepProbes,
    /// Minutes between scheduled configuration snapshots of each site (`dr-config-check` on the
    /// snapshot schedule): how old, at worst, the state a failover compares with is when the
    /// primary is gone.
    #[serde(default = "default_snapshot_minutes")]
    pub snapshot_minutes: u32,
}

fn default_probe_failures() -> u32 {
    3
}

fn default_snapshot_minutes() -> u32 {
    15
}

impl Default for Monitoring {
    fn default() -> Self {
        Self {
            services: default_services(),
            status_page_url: None,
            status_page_id: None,
            status_containers: Vec::new(),
            status_container: None,
            probe_failures_to_declare: default_probe_failures(),
            deep_probes: DeepProbes::default(),
            snapshot_minutes: default_snapshot_minutes(),
        }
    }
}

/// Where Status.io serves a public page's JSON.
pub const STATUS_IO_API: &str = "https://api.status.io/1.0/status";

impl Monitoring {
    /// The status page to read, if any.
    pub fn status_url(&self) -> Option<String> {
        self.status_page_url.clone().or_else(|| {
            self.status_page_id
                .as_ref()
                .map(|id| format!("{STATUS_IO_API}/{id}"))
        })
    }

    /// The status page containers of the primary (see `status_containers`).
    pub fn containers(&self, primary_region: &str) -> Vec<String> {
        if !self.status_containers.is_empty() {
            return self.status_containers.clone();
        }
        vec![self
            .status_container
            .clone()
            .unwrap_or_else(|| primary_region.to_string())]
    }

    /// Checks values no parser catches, naming the key.
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(5..=1440).contains(&self.snapshot_minutes) {
            return Err(invalid(
                "monitoring.snapshot_minutes",
                "must be 5–1440 (the snapshot schedule ticks every 5 minutes)",
            ));
        }
        let text = |key: &str, v: &str| -> Result<(), PlanError> {
            if v.trim().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
            if v.chars().any(char::is_control) {
                return Err(invalid(key, "must not contain control characters"));
            }
            Ok(())
        };
        if let Some(url) = &self.status_page_url {
            let key = "monitoring.status_page_url";
            text(key, url)?;
            if url.chars().any(char::is_whitespace) {
                return Err(invalid(key, "must not contain spaces"));
            }
            let parsed =
                url::Url::parse(url).map_err(|e| invalid(key, format!("is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "https" | "http") {
                return Err(invalid(key, "must be an http(s) URL"));
            }
        }
        if let Some(id) = &self.status_page_id {
            let key = "monitoring.status_page_id";
            text(key, id)?;
            // It becomes a URL path segment.
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    key,
                    "only letters, digits, '-' and '_' are allowed (a Status.io page id)",
                ));
            }
        }
        if let Some(c) = &self.status_container {
            text("monitoring.status_container", c)?;
            if !self.status_containers.is_empty() {
                return Err(invalid(
                    "monitoring.status_container",
                    "set it or monitoring.status_containers, not both",
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, c) in self.status_containers.iter().enumerate() {
            let key = format!("monitoring.status_containers[{i}]");
            text(&key, c)?;
            if !seen.insert(c.trim().to_lowercase()) {
                return Err(invalid(key, "duplicate container name"));
            }
        }
        self.deep_probes.validate()
    }
}

/// Thresholds of the deep probes: a probe deviates against its own rolling baseline (latency)
/// or an absolute limit (job failure rate); only a deviation lasting `consecutive_intervals`
/// probes declares an incident, so one slow call never starts a failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeepProbes {
    /// A latency deviates at this many times its baseline (the median of recent healthy
    /// samples).
    #[serde(default = "default_latency_factor")]
    pub latency_factor: f64,
    /// ... and only when at least this slow: jitter of a fast API is no incident.
    #[serde(default = "default_latency_floor_ms")]
    pub latency_floor_ms: u64,
    /// Job failure rate (failed / completed runs) that deviates, whatever the baseline.
    #[serde(default = "default_failure_rate")]
    pub failure_rate: f64,
    /// Completed runs needed before the failure rate says anything.
    #[serde(default = "default_min_runs")]
    pub min_runs: u32,
    /// Runs started this many minutes back count towards the failure rate.
    #[serde(default = "default_failure_window")]
    pub failure_window_minutes: u32,
    /// Consecutive deviating probes (intervals) that declare an incident.
    #[serde(default = "default_consecutive")]
    pub consecutive_intervals: u32,
    /// Healthy samples a baseline needs before anything deviates from it.
    #[serde(default = "default_min_baseline")]
    pub min_baseline_samples: u32,
    /// Healthy samples a baseline keeps (the newest).
    #[serde(default = "default_baseline_samples")]
    pub baseline_samples: u32,
}

fn default_latency_factor() -> f64 {
    5.0
}
fn default_latency_floor_ms() -> u64 {
    250
}
fn default_failure_rate() -> f64 {
    0.5
}
fn default_min_runs() -> u32 {
    10
}
fn default_failure_window() -> u32 {
    60
}
fn default_consecutive() -> u32 {
    3
}
fn default_min_baseline() -> u32 {
    5
}
fn default_baseline_samples() -> u32 {
    20
}

impl Default for DeepProbes {
    fn default() -> Self {
        Self {
            latency_factor: default_latency_factor(),
            latency_floor_ms: default_latency_floor_ms(),
            failure_rate: default_failure_rate(),
            min_runs: default_min_runs(),
            failure_window_minutes: default_failure_window(),
            consecutive_intervals: default_consecutive(),
            min_baseline_samples: default_min_baseline(),
            baseline_samples: default_baseline_samples(),
        }
    }
}

impl DeepProbes {
    fn validate(&self) -> Result<(), PlanError> {
        let key = |k: &str| format!("monitoring.deep_probes.{k}");
        if !(self.latency_factor.is_finite() && self.latency_factor > 1.0) {
            return Err(invalid(key("latency_factor"), "must be a number above 1"));
        }
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(invalid(
                key("failure_rate"),
                "must be above 0 and at most 1",
            ));
        }
        if self.min_runs == 0 {
            return Err(invalid(key("min_runs"), "must be at least 1"));
        }
        if !(1..=1440).contains(&self.failure_window_minutes) {
            return Err(invalid(key("failure_window_minutes"), "must be 1–1440"));
        }
        if !(1..=100).contains(&self.consecutive_intervals) {
            return Err(invalid(key("consecutive_intervals"), "must be 1–100"));
        }
        if !(1..=1000).contains(&self.min_baseline_samples) {
            return Err(invalid(key("min_baseline_samples"), "must be 1–1000"));
        }
        if self.baseline_samples < self.min_baseline_samples || self.baseline_samples > 1000 {
            return Err(invalid(
                key("baseline_samples"),
                "must be at least min_baseline_samples and at most 1000",
            ));
        }
        Ok(())
    }
}

fn default_services() -> Vec<String> {
    ["EC2", "S3", "VPC", "IAM", "STS", "ELASTICLOADBALANCING"]
        .into_iter()
        .map(str::to_string)
        .collect()
}
