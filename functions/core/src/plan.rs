//! The DR plan (`lifeboat.toml`): one declarative file describing both sites and everything a
//! failover does. Parsing is strict — unknown keys, wrong types and contradictions are refused
//! before anything runs, with an error naming the key — because a half-executed plan with a
//! typo is worse than none.
//!
//! Secrets never live here: sites name a Secrets Manager secret id, resolved at run time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::identity::{Identity, Principal};

/// Why a plan was refused.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// TOML syntax, an unknown key or a wrong type.
    #[error("plan {source_name}: {message}")]
    Parse {
        /// File name or other origin.
        source_name: String,
        /// The parser's message, which names the key and shows the line.
        message: String,
    },
    /// A value that parses but cannot be right.
    #[error("plan key `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the offending key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> PlanError {
    PlanError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Name of the protected platform; part of lock and run ids.
    pub name: String,
    /// RTO/RPO objectives.
    pub objectives: Objectives,
    /// The two sites.
    pub sites: Sites,
    /// Health signals that may start a failover.
    #[serde(default)]
    pub monitoring: Monitoring,
    /// What to check for data freshness.
    #[serde(default)]
    pub replication: Replication,
    /// How to fence a site.
    #[serde(default)]
    pub shutdown: Shutdown,
    /// What to start at the target.
    #[serde(default)]
    pub startup: Startup,
    /// DNS record and parameters clients read. Absent (not `null`) when unset: the state
    /// machines' `IsPresent` choices read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// External data sources that must be reachable.
    #[serde(default)]
    pub data_sources: Vec<DataSource>,
    /// Proof that the target works.
    #[serde(default)]
    pub validation: Validation,
    /// Who decides, and how long they have.
    #[serde(default)]
    pub approval: Approval,
    /// Who hears about it.
    #[serde(default)]
    pub notifications: Notifications,
    /// Databricks Managed Disaster Recovery: the failover group Lifeboat fails over (and back)
    /// between fencing and start-up, and whose replication point is an RPO source. Absent (not
    /// `null`) when unset, like `dns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_dr: Option<ManagedDr>,
    /// What configuration drift between the sites blocks a run, what only warns, what is not
    /// compared, and the region-specific values that differ by design.
    #[serde(default)]
    pub drift: DriftRules,
}

/// `[drift]`: rules over the per-object comparison (`crate::drift`). A selector is a kind
/// (`job`, `cluster_policy`, `pool`, `cluster`, `warehouse`, `pipeline`, `secret_scope`,
/// `repo`, `folder`, `catalog`, `schema`) or a kind and a dotted field path in its normal form
/// (`job.tags`, `pool.node_type_id`, `job.tasks.main.libraries`); it covers everything under it.
/// Without a selector, drift blocks when a job to be activated is the object or uses it, and
/// warns otherwise; the most specific selector wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftRules {
    /// Selectors whose drift blocks, used or not (e.g. `["warehouse"]`).
    #[serde(default)]
    pub block: Vec<String>,
    /// Selectors whose drift only warns, even where a job to be activated uses it (e.g.
    /// `["job.tags", "job.email_notifications"]`).
    #[serde(default)]
    pub warn: Vec<String>,
    /// Selectors not compared at all.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Node types that differ by region: the primary's → DR's (reversed for a failback).
    #[serde(default)]
    pub node_types: BTreeMap<String, String>,
    /// Other values that differ by region, as prefixes: the primary's → DR's (bucket URLs,
    /// instance profile ARNs, paths; reversed for a failback).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// Seconds a failover's drift check spends on per-object reads (ACLs, pipeline specs,
    /// grants) beyond the listings; what it does not reach comes from the scheduled
    /// snapshots' cache. 0–60, default 5.
    #[serde(default = "default_detail_seconds")]
    pub detail_seconds: u32,
}

fn default_detail_seconds() -> u32 {
    5
}

impl Default for DriftRules {
    /// No selectors, no region values, the default per-object budget (as an absent `[drift]`).
    fn default() -> Self {
        DriftRules {
            block: Vec::new(),
            warn: Vec::new(),
            ignore: Vec::new(),
            node_types: BTreeMap::new(),
            values: BTreeMap::new(),
            detail_seconds: default_detail_seconds(),
        }
    }
}

impl DriftRules {
    /// The `ignore` selectors of one kind, as field paths (`""`: the whole object).
    pub fn ignore_for(&self, kind: ObjectKind) -> Vec<String> {
        self.ignore
            .iter()
            .filter_map(|s| {
                let (k, field) = s.split_once('.').unwrap_or((s.as_str(), ""));
                (k == kind.name()).then(|| field.to_string())
            })
            .collect()
    }

    /// Checks each selector names a kind, and the maps are usable.
    pub fn validate(&self) -> Result<(), PlanError> {
        for (list, name) in [
            (&self.block, "block"),
            (&self.warn, "warn"),
            (&self.ignore, "ignore"),
        ] {
            for (i, s) in list.iter().enumerate() {
                let key = format!("drift.{name}[{i}]");
                let kind = s.split('.').next().unwrap_or_default();
                if ObjectKind::parse(kind).is_none() {
                    return Err(invalid(
                        key,
                        format!(
                            "{s:?} does not start with a kind (one of {})",
                            ObjectKind::ALL.map(|k| k.name()).join(", ")
                        ),
                    ));
                }
                if s.split('.').any(str::is_empty) || s.chars().any(char::is_control) {
                    return Err(invalid(key, format!("{s:?} has an empty path segment")));
                }
            }
        }
        for (map, name) in [(&self.node_types, "node_types"), (&self.values, "values")] {
            for (from, to) in map {
                if from.trim().is_empty() || to.trim().is_empty() {
                    return Err(invalid(
                        format!("drift.{name}.{from:?}"),
                        "both the primary's and DR's value must be given",
                    ));
                }
            }
            let mut seen = std::collections::BTreeSet::new();
            for to in map.values() {
                if !seen.insert(to) {
                    return Err(invalid(
                        format!("drift.{name}"),
                        format!("two values map to {to:?}: a failback could not map it back"),
                    ));
                }
            }
        }
        if self.detail_seconds > 60 {
            return Err(invalid(
                "drift.detail_seconds",
                "must be 0–60 (the check runs inside a 120 s Lambda)",
            ));
        }
        Ok(())
    }
}

/// The kinds of workspace object the drift check compares, as the `[drift]` selectors name
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A job (its settings, not its activation state).
    Job,
    /// A cluster policy.
    ClusterPolicy,
    /// An instance pool.
    Pool,
    /// An all-purpose cluster.
    Cluster,
    /// A SQL warehouse.
    Warehouse,
    /// A DLT / Lakeflow pipeline.
    Pipeline,
    /// A secret scope: its key names and ACL, never a value.
    SecretScope,
    /// A Git folder (repo), by path.
    Repo,
    /// A workspace folder a job's notebooks or files sit in (outside repos).
    Folder,
    /// A Unity Catalog catalog and its grants.
    Catalog,
    /// A Unity Catalog schema and its grants.
    Schema,
}

impl ObjectKind {
    /// Every kind, in report order.
    pub const ALL: [ObjectKind; 11] = [
        ObjectKind::Job,
        ObjectKind::ClusterPolicy,
        ObjectKind::Pool,
        ObjectKind::Cluster,
        ObjectKind::Warehouse,
        ObjectKind::Pipeline,
        ObjectKind::SecretScope,
        ObjectKind::Repo,
        ObjectKind::Folder,
        ObjectKind::Catalog,
        ObjectKind::Schema,
    ];

    /// The name used in reports and in the plan's `[drift]` selectors.
    pub fn name(self) -> &'static str {
        match self {
            ObjectKind::Job => "job",
            ObjectKind::ClusterPolicy => "cluster_policy",
            ObjectKind::Pool => "pool",
            ObjectKind::Cluster => "cluster",
            ObjectKind::Warehouse => "warehouse",
            ObjectKind::Pipeline => "pipeline",
            ObjectKind::SecretScope => "secret_scope",
            ObjectKind::Repo => "repo",
            ObjectKind::Folder => "folder",
            ObjectKind::Catalog => "catalog",
            ObjectKind::Schema => "schema",
        }
    }

    /// The kind a selector's first segment names.
    pub fn parse(s: &str) -> Option<ObjectKind> {
        ObjectKind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// Databricks Managed DR (account level). Managed DR replicates; Lifeboat still fences, gates,
/// validates and reports around its failover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedDr {
    /// The account host, e.g. `https://accounts.cloud.databricks.com`.
    pub account_url: String,
    /// The Databricks account id.
    pub account_id: String,
    /// The failover group's id (its name is `accounts/{account_id}/failover-groups/{id}`).
    pub failover_group: String,
    /// An account admin service principal (OAuth M2M; the account API takes no PATs).
    pub auth: SiteAuth,
    /// The stable URL clients use (its id), if any: after the failover it must route to the
    /// target's workspace (`sites.*.workspace_id`). Without `[dns]`, clients move with it
    /// alone: no DNS switch runs, and the client check reads where it routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable_url: Option<String>,
    /// How long the group may stay `FAILING_OVER` before a human is asked.
    #[serde(default = "default_managed_failover_timeout")]
    pub failover_timeout_seconds: u32,
    /// RPO objective of the group's replication point; defaults to `objectives.rpo_minutes`.
    #[serde(default)]
    pub rpo_minutes: Option<u32>,
}

fn default_managed_failover_timeout() -> u32 {
    1800
}

impl ManagedDr {
    /// The group's resource name.
    pub fn group_name(&self) -> String {
        format!(
            "accounts/{}/failover-groups/{}",
            self.account_id, self.failover_group
        )
    }

    /// The stable URL's resource name, if one is configured.
    pub fn stable_url_name(&self) -> Option<String> {
        self.stable_url
            .as_ref()
            .map(|id| format!("accounts/{}/stable-urls/{id}", self.account_id))
    }
}

/// An id that goes into a resource name: letters, digits, `-` and `_` only, so it cannot climb
/// out of its path segment (`..`, `/`, `?`).
fn resource_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn validate_managed_dr(plan: &Plan) -> Result<(), PlanError> {
    for (key, site) in [
        ("sites.primary", &plan.sites.primary),
        ("sites.dr", &plan.sites.dr),
    ] {
        if let Some(id) = &site.workspace_id {
            if id.is_empty() || id.len() > 20 || !id.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid(
                    format!("{key}.workspace_id"),
                    "must be the workspace's numeric id",
                ));
            }
        }
        match (&site.failover_group, &plan.managed_dr) {
            (Some(_), None) => {
                return Err(invalid(
                    format!("{key}.failover_group"),
                    "name the group in [managed_dr] (failover_group, with the account id and an \
                     account admin's credentials the failover needs)",
                ))
            }
            (Some(g), Some(m)) if *g != m.failover_group => {
                return Err(invalid(
                    format!("{key}.failover_group"),
                    format!(
                        "differs from managed_dr.failover_group ({})",
                        m.failover_group
                    ),
                ))
            }
            _ => {}
        }
    }
    let Some(m) = &plan.managed_dr else {
        return Ok(());
    };
    let url = url::Url::parse(&m.account_url)
        .map_err(|e| invalid("managed_dr.account_url", format!("not a URL: {e}")))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(invalid(
            "managed_dr.account_url",
            "must be https (credentials travel to it)",
        ));
    }
    if url.path() != "/" || url.query().is_some() {
        return Err(invalid(
            "managed_dr.account_url",
            "must be the account host only, e.g. https://accounts.cloud.databricks.com",
        ));
    }
    if !resource_id_ok(&m.account_id) {
        return Err(invalid(
            "managed_dr.account_id",
            "letters, digits, '-' and '_' only",
        ));
    }
    if !resource_id_ok(&m.failover_group) {
        return Err(invalid(
            "managed_dr.failover_group",
            "the group's id: letters, digits, '-' and '_' only",
        ));
    }
    if let SiteAuth::Pat { .. } = m.auth {
        return Err(invalid(
            "managed_dr.auth",
            "the account API takes OAuth M2M only (type = \"oauth\", an account admin)",
        ));
    }
    if let Some(id) = &m.stable_url {
        if !resource_id_ok(id) {
            return Err(invalid(
                "managed_dr.stable_url",
                "the stable URL's id: letters, digits, '-' and '_' only",
            ));
        }
        for (key, site) in [
            ("sites.primary", &plan.sites.primary),
            ("sites.dr", &plan.sites.dr),
        ] {
            if site.workspace_id.is_none() {
                return Err(invalid(
                    format!("{key}.workspace_id"),
                    "required with managed_dr.stable_url (where the stable URL must route)",
                ));
            }
        }
    }
    if !(60..=86_400).contains(&m.failover_timeout_seconds) {
        return Err(invalid(
            "managed_dr.failover_timeout_seconds",
            "must be 60–86400",
        ));
    }
    if m.rpo_minutes == Some(0) {
        return Err(invalid("managed_dr.rpo_minutes", "must be greater than 0"));
    }
    Ok(())
}

/// Objectives the report measures against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery time objective, minutes.
    pub rto_minutes: u32,
    /// Default recovery point objective, minutes (per bucket/table overrides allowed).
    pub rpo_minutes: u32,
    /// The trend flags a phase of a run as a regression when it took more than this many times
    /// its median over the earlier runs.
    #[serde(default = "default_regression_factor")]
    pub regression_factor: f64,
}

fn default_regression_factor() -> f64 {
    1.5
}

/// Primary and DR.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sites {
    /// Where production runs normally.
    pub primary: Site,
    /// Where it runs after a failover.
    pub dr: Site,
}

/// One workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// AWS region, e.g. `us-east-1`.
    pub region: String,
    /// Workspace URL.
    pub workspace_url: String,
    /// How to authenticate; the secret itself lives in Secrets Manager.
    pub auth: SiteAuth,
    /// Optional Databricks Managed DR failover group.
    #[serde(default)]
    pub failover_group: Option<String>,
    /// The identity SCIM `Me` must report at this site (simulated auth); defaults to the OAuth
    /// client id for service principals, and to "any active identity" for PATs.
    #[serde(default)]
    pub identity: Option<String>,
    /// What the DNS alias points at while this site serves (a CNAME target such as the
    /// workspace's or a PrivateLink endpoint's host name); defaults to the URL's host.
    #[serde(default)]
    pub dns_target: Option<String>,
    /// The workspace's numeric id: where a Managed DR stable URL must route while this site
    /// serves.
    #[serde(default)]
    pub workspace_id: Option<String>,
}

impl Site {
    /// The identity validation expects SCIM `Me` to report, if any.
    pub fn expected_identity(&self) -> Option<&str> {
        self.identity.as_deref().or(match &self.auth {
            SiteAuth::Oauth { client_id, .. } => Some(client_id.as_str()),
            SiteAuth::Pat { .. } => None,
        })
    }

    /// The CNAME target for this site.
    pub fn cname_target(&self) -> String {
        self.dns_target.clone().unwrap_or_else(|| {
            url::Url::parse(&self.workspace_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| self.workspace_url.clone())
        })
    }
}

/// Authentication of a site; only references to secrets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SiteAuth {
    /// A PAT stored in Secrets Manager under `secret_id`.
    Pat {
        /// Secrets Manager id or ARN.
        secret_id: String,
    },
    /// OAuth M2M: the client secret stored under `secret_id`.
    Oauth {
        /// Service principal application id.
        client_id: String,
        /// Secrets Manager id or ARN of the client secret.
        secret_id: String,
    },
}

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

/// Data freshness checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// Replicated bucket pairs with a canary object.
    #[serde(default)]
    pub buckets: Vec<BucketPair>,
    /// Critical Delta tables: RPO from the newest version a reader can load at the replica.
    #[serde(default)]
    pub tables: Vec<DeltaTable>,
    /// What to do when RPO exceeds its objective.
    #[serde(default)]
    pub on_breach: RpoBreachPolicy,
}

/// A source bucket and its replica in the DR region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketPair {
    /// Label in reports.
    pub name: String,
    /// Bucket in the primary region.
    pub source: String,
    /// Replica bucket in the DR region.
    pub replica: String,
    /// Canary object key, rewritten at the source on a schedule; its replica's age is the RPO.
    #[serde(default = "default_canary")]
    pub canary_key: String,
    /// Overrides `objectives.rpo_minutes`.
    #[serde(default)]
    pub rpo_minutes: Option<u32>,
}

/// Most Delta tables a plan may list: each costs a few S3 requests per check, and the
/// measurements travel in the state document (256 KB).
pub const MAX_DELTA_TABLES: usize = 100;

/// A critical Delta table: where it lives at the source and at the replica — either a bucket
/// pair's name and a path inside both buckets, or two `s3://` URIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaTable {
    /// Label in reports.
    pub name: String,
    /// A `replication.buckets` name: the table sits at `path` in both of its buckets.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Path of the table's root inside the pair's buckets (with `bucket`).
    #[serde(default)]
    pub path: Option<String>,
    /// `s3://bucket/path` at the primary (instead of `bucket` + `path`).
    #[serde(default)]
    pub source: Option<String>,
    /// `s3://bucket/path` at the DR site (instead of `bucket` + `path`).
    #[serde(default)]
    pub replica: Option<String>,
    /// Overrides `objectives.rpo_minutes`.
    #[serde(default)]
    pub rpo_minutes: Option<u32>,
}

/// A table's two locations, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLocations {
    /// At the primary.
    pub source: crate::delta::s3::TableLocation,
    /// At the DR site.
    pub replica: crate::delta::s3::TableLocation,
    /// The bucket pair whose canary tells idle tables from stale ones, if any.
    pub bucket_pair: Option<String>,
}

impl DeltaTable {
    /// Resolves the locations; the error names the field at fault (relative to the table).
    pub fn locations(
        &self,
        buckets: &[BucketPair],
    ) -> Result<TableLocations, (&'static str, String)> {
        use crate::delta::s3::TableLocation;
        match (&self.bucket, &self.path, &self.source, &self.replica) {
            (Some(bucket), Some(path), None, None) => {
                let pair = buckets.iter().find(|b| &b.name == bucket).ok_or((
                    "bucket",
                    format!("{bucket:?} is not a replication.buckets name"),
                ))?;
                let at = |b: &str| TableLocation::parse(&format!("s3://{b}/{path}"));
                if path.is_empty() || path.starts_with('/') {
                    return Err((
                        "path",
                        format!("{path:?} is not a table path inside the bucket"),
                    ));
                }
                Ok(TableLocations {
                    source: at(&pair.source).map_err(|e| ("path", e))?,
                    replica: at(&pair.replica).map_err(|e| ("path", e))?,
                    bucket_pair: Some(pair.name.clone()),
                })
            }
            (None, None, Some(source), Some(replica)) => {
                let source = TableLocation::parse(source).map_err(|e| ("source", e))?;
                let replica = TableLocation::parse(replica).map_err(|e| ("replica", e))?;
                if source == replica {
                    return Err(("replica", "is the source location".into()));
                }
                let bucket_pair = buckets
                    .iter()
                    .find(|b| b.replica == replica.bucket && b.source == source.bucket)
                    .map(|b| b.name.clone());
                Ok(TableLocations {
                    source,
                    replica,
                    bucket_pair,
                })
            }
            (Some(_), None, ..) => Err(("path", "is required with `bucket`".into())),
            (None, Some(_), ..) => Err(("bucket", "is required with `path`".into())),
            (None, None, Some(_), None) => Err(("replica", "is required with `source`".into())),
            (None, None, None, Some(_)) => Err(("source", "is required with `replica`".into())),
            (None, None, None, None) => Err((
                "bucket",
                "a table needs `bucket` + `path`, or `source` + `replica` (s3:// URIs)".into(),
            )),
            _ => Err((
                "source",
                "give either `bucket` + `path` or `source` + `replica`, not both".into(),
            )),
        }
    }
}

fn default_canary() -> String {
    "_lifeboat/canary.json".to_string()
}

/// RPO breach policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoBreachPolicy {
    /// Stop the failover before the target is activated.
    #[default]
    Stop,
    /// Record the breach and continue (the approver accepted the data loss up front).
    Continue,
    /// Ask for a second approval with the measured RPO before activating the target.
    Ask,
}

/// How to fence a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    /// Resources carrying any of these tags are left alone.
    #[serde(default)]
    pub exclude_tags: BTreeMap<String, String>,
    /// Resources with these exact names are left alone.
    #[serde(default)]
    pub exclude_names: Vec<String>,
    /// What to do with active job runs.
    #[serde(default)]
    pub active_runs: ActiveRunPolicy,
    /// Seconds between fence attempts at an unreachable or unconfirmed site.
    #[serde(default = "default_retry_interval")]
    pub retry_interval_seconds: u32,
    /// Fence attempts before giving up (the failover continues; unconfirmed items stay
    /// recorded and schedules at the target stay gated).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            exclude_tags: BTreeMap::new(),
            exclude_names: Vec::new(),
            active_runs: ActiveRunPolicy::default(),
            retry_interval_seconds: default_retry_interval(),
            max_attempts: default_max_attempts(),
        }
    }
}

fn default_retry_interval() -> u32 {
    30
}
fn default_max_attempts() -> u32 {
    20
}

/// Active run policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveRunPolicy {
    /// Cancel active runs (default: a run writing data in both regions is the risk).
    #[default]
    Cancel,
    /// Let them finish; only stop new ones.
    LetFinish,
}

/// What to start at the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Startup {
    /// Pools to warm, by name.
    #[serde(default)]
    pub pools: Vec<PoolWarmup>,
    /// All-purpose clusters to start, by name.
    #[serde(default)]
    pub clusters: Vec<String>,
    /// SQL warehouses to start, by name.
    #[serde(default)]
    pub warehouses: Vec<String>,
    /// `max_concurrent_runs` overrides, by job name.
    #[serde(default)]
    pub concurrency: Vec<ConcurrencyOverride>,
    /// Jobs to run once at the target (with an idempotency token), once the source is fenced.
    #[serde(default)]
    pub run_once: Vec<String>,
    /// Seconds to wait for everything to be ready.
    #[serde(default = "default_ready_timeout")]
    pub ready_timeout_seconds: u32,
    /// Seconds between readiness polls (start-up, schedule gate).
    #[serde(default = "default_poll")]
    pub poll_seconds: u32,
}

fn default_poll() -> u32 {
    5
}

impl Default for Startup {
    fn default() -> Self {
        Self {
            pools: Vec::new(),
            clusters: Vec::new(),
            warehouses: Vec::new(),
            concurrency: Vec::new(),
            run_once: Vec::new(),
            ready_timeout_seconds: default_ready_timeout(),
            poll_seconds: default_poll(),
        }
    }
}

fn default_ready_timeout() -> u32 {
    600
}

/// A pool and its warm size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolWarmup {
    /// Pool name.
    pub name: String,
    /// `min_idle_instances` at the target.
    pub min_idle: u32,
}

/// A job concurrency override.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyOverride {
    /// Job name.
    pub job: String,
    /// New `max_concurrent_runs` (1–1000).
    pub max_concurrent_runs: u32,
}

/// DNS and client configuration to switch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// Route 53 hosted zone id.
    pub hosted_zone_id: String,
    /// The alias clients use, e.g. `databricks.example.com`.
    pub record_name: String,
    /// TTL of the CNAME.
    #[serde(default = "default_ttl")]
    pub ttl: i64,
    /// SSM parameters that hold the workspace URL for REST/JDBC/ODBC clients (shorthand for
    /// `client_settings` of kind `workspace_url`).
    #[serde(default)]
    pub ssm_parameters: Vec<String>,
    /// Every other client-facing value to rewrite when clients move: a warehouse's HTTP path,
    /// JDBC URL or ODBC connection string, resolved by name at the site clients move to.
    #[serde(default)]
    pub client_settings: Vec<ClientSetting>,
    /// The alias full drills switch instead of the production one (in the same zone).
    #[serde(default)]
    pub drill_record_name: Option<String>,
    /// Full drills switch the production alias and parameters (a real-world rehearsal).
    #[serde(default)]
    pub drill_uses_production: bool,
    /// How the alias moves: `upsert` (rewrite the CNAME; needs Route 53's control plane in
    /// us-east-1 during the run) or `routing_control` (statically stable: pre-created
    /// PRIMARY/SECONDARY failover records whose health check follows an ARC routing control).
    #[serde(default)]
    pub switch: SwitchMode,
    /// The ARC cluster and routing controls of `switch = "routing_control"`.
    #[serde(default)]
    pub routing_control: Option<RoutingControlPlan>,
}

/// How the client alias moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchMode {
    /// UPSERT the CNAME and wait until INSYNC.
    #[default]
    Upsert,
    /// Set the routing control that the PRIMARY failover record's health check follows.
    RoutingControl,
}

/// The ARC pieces of the statically stable switch (from the template's outputs and
/// `aws route53-recovery-control-config describe-cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingControlPlan {
    /// The cluster's regional endpoints, tried in turn until one answers.
    pub cluster_endpoints: Vec<ClusterEndpoint>,
    /// The routing control of `record_name` (On: the primary serves; Off: the DR site does).
    pub control_arn: String,
    /// The routing control of `drill_record_name`, for full drills.
    #[serde(default)]
    pub drill_control_arn: Option<String>,
}

/// One regional endpoint of an ARC cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterEndpoint {
    /// `https://....route53-recovery-cluster.<region>.amazonaws.com/v1`.
    pub url: String,
    /// The endpoint's region (requests are signed for it).
    pub region: String,
}

/// Whether `arn` is a routing control ARN
/// (`arn:<partition>:route53-recovery-control::<account>:controlpanel/<id>/routingcontrol/<id>`).
fn routing_control_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let id = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    match parts.as_slice() {
        ["arn", partition, "route53-recovery-control", "", account, resource] => {
            partition.starts_with("aws")
                && account.len() == 12
                && account.chars().all(|c| c.is_ascii_digit())
                && matches!(
                    resource.split('/').collect::<Vec<_>>().as_slice(),
                    ["controlpanel", cp, "routingcontrol", rc] if id(cp) && id(rc)
                )
        }
        _ => false,
    }
}

fn default_ttl() -> i64 {
    60
}

impl Dns {
    /// The record a run switches (`drill`: a full drill's), and whether it switches the client
    /// settings: full drills rehearse on the drill alias and leave the settings alone, unless
    /// the plan opts into production. `None`: a drill with neither.
    pub fn switched_by(&self, drill: bool) -> Option<(&str, bool)> {
        if drill && !self.drill_uses_production {
            self.drill_record_name.as_deref().map(|r| (r, false))
        } else {
            Some((self.record_name.as_str(), true))
        }
    }

    /// Every parameter clients read, the `ssm_parameters` shorthand first, in plan order.
    pub fn all_client_settings(&self) -> Vec<ClientSetting> {
        self.ssm_parameters
            .iter()
            .map(|p| ClientSetting {
                parameter: p.clone(),
                kind: ClientSettingKind::WorkspaceUrl,
                warehouse: None,
            })
            .chain(self.client_settings.iter().cloned())
            .collect()
    }
}

/// One client-facing value kept in SSM Parameter Store: what JDBC/ODBC/REST clients (or the
/// tooling that configures them) read, so moving clients is rewriting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSetting {
    /// The SSM parameter name (`/...`, under the deployment's client parameter path).
    pub parameter: String,
    /// What value it holds.
    pub kind: ClientSettingKind,
    /// The SQL warehouse, by name (ids differ between workspaces), for the warehouse kinds.
    #[serde(default)]
    pub warehouse: Option<String>,
}

/// The value a client setting holds; warehouse kinds are resolved at the site clients move to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSettingKind {
    /// The site's workspace URL.
    WorkspaceUrl,
    /// The warehouse's HTTP path (`/sql/1.0/warehouses/<id>`).
    HttpPath,
    /// `jdbc:databricks://<host>:<port>/default;transportMode=http;ssl=1;AuthMech=3;httpPath=<path>`.
    JdbcUrl,
    /// `Host=<host>;Port=<port>;HTTPPath=<path>;SSL=1;ThriftTransport=2;AuthMech=3` (DSN-less;
    /// the driver name and the token stay with the client).
    OdbcConnectionString,
}

impl ClientSettingKind {
    /// The plan spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WorkspaceUrl => "workspace_url",
            Self::HttpPath => "http_path",
            Self::JdbcUrl => "jdbc_url",
            Self::OdbcConnectionString => "odbc_connection_string",
        }
    }

    /// Whether the value depends on a SQL warehouse.
    pub fn needs_warehouse(self) -> bool {
        !matches!(self, Self::WorkspaceUrl)
    }
}

/// Whether `name` is a parameter name SSM accepts: `/`-rooted, at most 1,011 characters of
/// letters, digits and `_.-/`, no empty segment.
fn valid_parameter_name(name: &str) -> bool {
    name.starts_with('/')
        && name.len() <= 1011
        && !name.contains("//")
        && !name.ends_with('/')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !name.to_ascii_lowercase().starts_with("/aws")
        && !name.to_ascii_lowercase().starts_with("/ssm")
}

/// An external data source to probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSource {
    /// Label.
    pub name: String,
    /// What kind of probe.
    pub kind: DataSourceKind,
    /// `host:port` for tcp, URL for http, bucket name for s3.
    pub target: String,
    /// Whether an unreachable source stops the failover.
    #[serde(default = "yes")]
    pub critical: bool,
}

fn yes() -> bool {
    true
}

/// Probe kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataSourceKind {
    /// TCP connect.
    Tcp,
    /// HTTP GET answering 2xx/3xx.
    Http,
    /// S3 HeadBucket.
    S3,
}

/// Validation of the target workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// Warehouse (by name) to run queries on.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// Queries with expected results.
    #[serde(default)]
    pub queries: Vec<ValidationQuery>,
    /// Expected ACLs.
    #[serde(default)]
    pub acls: Vec<ExpectedAcl>,
    /// Seconds each query may take.
    #[serde(default = "default_query_timeout")]
    pub query_timeout_seconds: u32,
}

impl Default for Validation {
    fn default() -> Self {
        Self {
            warehouse: None,
            queries: Vec::new(),
            acls: Vec::new(),
            query_timeout_seconds: default_query_timeout(),
        }
    }
}

fn default_query_timeout() -> u32 {
    60
}

/// A validation query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationQuery {
    /// Label.
    pub name: String,
    /// SQL.
    pub sql: String,
    /// Expected rows, as strings (the API's JSON_ARRAY format).
    #[serde(default)]
    pub expect_rows: Option<Vec<Vec<String>>>,
    /// Or: at least this many rows.
    #[serde(default)]
    pub expect_min_rows: Option<usize>,
}

/// An expected permission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAcl {
    /// Object kind.
    pub object_type: AclObjectType,
    /// Object name (resolved to an id at the target).
    pub object_name: String,
    /// `user:NAME`, `group:NAME` or `service_principal:NAME`.
    pub principal: String,
    /// e.g. `CAN_MANAGE`.
    pub permission_level: String,
}

/// Objects whose ACLs can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclObjectType {
    Job,
    Cluster,
    Warehouse,
    Pool,
    Pipeline,
}

impl AclObjectType {
    /// Path segment of the permissions API.
    pub fn path(self) -> &'static str {
        match self {
            AclObjectType::Job => "jobs",
            AclObjectType::Cluster => "clusters",
            AclObjectType::Warehouse => "warehouses",
            AclObjectType::Pool => "instance-pools",
            AclObjectType::Pipeline => "pipelines",
        }
    }
}

/// Approval settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// How long a request stays open.
    #[serde(default = "default_approval_timeout")]
    pub timeout_seconds: u32,
    /// Who may approve (e-mail addresses or IAM principals).
    #[serde(default)]
    pub approvers: Vec<String>,
    /// Full drills run without asking.
    #[serde(default)]
    pub drill_preapproved: bool,
    /// Readiness drills (non-disruptive) ask too.
    #[serde(default)]
    pub readiness_requires_approval: bool,
    /// Distinct approvers needed before the execution continues (two-person rule: 2).
    #[serde(default = "one_approval")]
    pub required_approvals: u32,
    /// IAM principals (user, role or assumed-role session ARNs) that are the same person as an
    /// e-mail approver, so a vote by link and one by CLI count once: `"alice@x" = ["arn:..."]`.
    #[serde(default)]
    pub principals: BTreeMap<String, Vec<String>>,
}

fn one_approval() -> u32 {
    1
}

impl Default for Approval {
    fn default() -> Self {
        Self {
            timeout_seconds: default_approval_timeout(),
            approvers: Vec::new(),
            drill_preapproved: false,
            readiness_requires_approval: false,
            required_approvals: one_approval(),
            principals: BTreeMap::new(),
        }
    }
}

fn default_approval_timeout() -> u32 {
    3600
}

/// Notification targets beyond the SNS topic of the deployment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// Slack/Teams incoming webhook URLs (Secrets Manager ids, since they are credentials).
    #[serde(default)]
    pub webhook_secret_ids: Vec<String>,
}

impl Plan {
    /// Parses and validates a plan; nothing is acted on unless this succeeds.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Plan, PlanError> {
        let plan: Plan = toml::from_str(text).map_err(|e| PlanError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        plan.validate()?;
        Ok(plan)
    }

    /// Checks contradictions and values no parser catches.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.name.trim().is_empty() || self.name.len() > 40 {
            return Err(invalid("name", "must be 1–40 characters"));
        }
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name",
                "only letters, digits, '-' and '_' are allowed",
            ));
        }
        if self.objectives.rto_minutes == 0 {
            return Err(invalid("objectives.rto_minutes", "must be greater than 0"));
        }
        if !(1.0..=100.0).contains(&self.objectives.regression_factor) {
            return Err(invalid(
                "objectives.regression_factor",
                "must be 1.0–100.0 (times the phase's median)",
            ));
        }
        let mut workspaces = Vec::with_capacity(2);
        for (key, site) in [
            ("sites.primary", &self.sites.primary),
            ("sites.dr", &self.sites.dr),
        ] {
            workspaces.push(workspace_key(key, &site.workspace_url)?);
            if site.region.trim().is_empty() {
                return Err(invalid(format!("{key}.region"), "must not be empty"));
            }
        }
        if workspaces[0] == workspaces[1] {
            return Err(invalid(
                "sites.dr.workspace_url",
                "is the same workspace as sites.primary (URLs compare without case of scheme and \
                 host, default port or trailing '/'): a DR site must be a different workspace",
            ));
        }
        if self.sites.primary.region == self.sites.dr.region {
            return Err(invalid(
                "sites.dr.region",
                "is the primary's region: the DR site must survive the loss of that region",
            ));
        }
        let mut names = BTreeSet::new();
        for (i, b) in self.replication.buckets.iter().enumerate() {
            if !names.insert(&b.name) {
                return Err(invalid(
                    format!("replication.buckets[{i}].name"),
                    "duplicate name",
                ));
            }
            if b.source == b.replica {
                return Err(invalid(
                    format!("replication.buckets[{i}].replica"),
                    "equals the source bucket",
                ));
            }
            // The canary writer may write under `_lifeboat/` only (its IAM grant): a key
            // elsewhere could overwrite data.
            if !b.canary_key.starts_with("_lifeboat/")
                || b.canary_key.contains("..")
                || b.canary_key.chars().any(char::is_control)
            {
                return Err(invalid(
                    format!("replication.buckets[{i}].canary_key"),
                    "must be under `_lifeboat/` (the canary writer may write nowhere else)",
                ));
            }
        }
        if self.replication.tables.len() > MAX_DELTA_TABLES {
            return Err(invalid(
                format!("replication.tables[{MAX_DELTA_TABLES}]"),
                format!("at most {MAX_DELTA_TABLES} tables"),
            ));
        }
        let mut table_names = BTreeSet::new();
        for (i, t) in self.replication.tables.iter().enumerate() {
            if t.name.trim().is_empty() || !table_names.insert(&t.name) {
                return Err(invalid(
                    format!("replication.tables[{i}].name"),
                    "empty or duplicate name",
                ));
            }
            t.locations(&self.replication.buckets)
                .map_err(|(field, why)| invalid(format!("replication.tables[{i}].{field}"), why))?;
        }
        for (i, p) in self.startup.pools.iter().enumerate() {
            if p.min_idle > 1000 {
                return Err(invalid(
                    format!("startup.pools[{i}].min_idle"),
                    "at most 1000",
                ));
            }
        }
        for (i, c) in self.startup.concurrency.iter().enumerate() {
            if !(1..=1000).contains(&c.max_concurrent_runs) {
                return Err(invalid(
                    format!("startup.concurrency[{i}].max_concurrent_runs"),
                    "must be 1–1000",
                ));
            }
        }
        for (i, q) in self.validation.queries.iter().enumerate() {
            if q.expect_rows.is_some() && q.expect_min_rows.is_some() {
                return Err(invalid(
                    format!("validation.queries[{i}]"),
                    "set expect_rows or expect_min_rows, not both",
                ));
            }
            if self.validation.warehouse.is_none() {
                return Err(invalid(
                    "validation.warehouse",
                    "required when validation.queries are declared",
                ));
            }
        }
        for (i, a) in self.validation.acls.iter().enumerate() {
            if !["user:", "group:", "service_principal:"]
                .iter()
                .any(|p| a.principal.starts_with(p))
            {
                return Err(invalid(
                    format!("validation.acls[{i}].principal"),
                    "must start with user:, group: or service_principal:",
                ));
            }
        }
        for (i, d) in self.data_sources.iter().enumerate() {
            if d.kind == DataSourceKind::Tcp && !d.target.contains(':') {
                return Err(invalid(
                    format!("data_sources[{i}].target"),
                    "tcp needs host:port",
                ));
            }
        }
        if let Some(dns) = &self.dns {
            if dns.drill_uses_production && dns.drill_record_name.is_some() {
                return Err(invalid(
                    "dns.drill_record_name",
                    "set it or dns.drill_uses_production, not both",
                ));
            }
            if dns.drill_record_name.as_deref() == Some(dns.record_name.as_str()) {
                return Err(invalid(
                    "dns.drill_record_name",
                    "is the production record; use dns.drill_uses_production = true to drill on it",
                ));
            }
            if !(0..=86400).contains(&dns.ttl) {
                return Err(invalid("dns.ttl", "must be 0–86400"));
            }
            match (dns.switch, &dns.routing_control) {
                (SwitchMode::RoutingControl, None) => {
                    return Err(invalid(
                        "dns.routing_control",
                        "switch = \"routing_control\" needs the cluster endpoints and control ARN",
                    ))
                }
                (SwitchMode::Upsert, Some(_)) => {
                    return Err(invalid(
                        "dns.routing_control",
                        "is only read with switch = \"routing_control\"",
                    ))
                }
                (SwitchMode::RoutingControl, Some(rc)) => {
                    if rc.cluster_endpoints.is_empty() {
                        return Err(invalid(
                            "dns.routing_control.cluster_endpoints",
                            "list at least one endpoint (ARC clusters have five)",
                        ));
                    }
                    for (i, e) in rc.cluster_endpoints.iter().enumerate() {
                        let ok = url::Url::parse(&e.url).is_ok_and(|u| {
                            u.scheme() == "https"
                                || (u.scheme() == "http"
                                    && matches!(
                                        u.host_str(),
                                        Some("127.0.0.1" | "localhost" | "[::1]")
                                    ))
                        });
                        if !ok {
                            return Err(invalid(
                                format!("dns.routing_control.cluster_endpoints[{i}].url"),
                                "must be an https URL (http only to loopback)",
                            ));
                        }
                        if e.region.trim().is_empty() {
                            return Err(invalid(
                                format!("dns.routing_control.cluster_endpoints[{i}].region"),
                                "must name the endpoint's region",
                            ));
                        }
                    }
                    if !routing_control_arn(&rc.control_arn) {
                        return Err(invalid(
                            "dns.routing_control.control_arn",
                            "must be a routing control ARN (arn:aws:route53-recovery-control::<account>:controlpanel/<id>/routingcontrol/<id>)",
                        ));
                    }
                    match (&rc.drill_control_arn, &dns.drill_record_name) {
                        (Some(arn), _) if !routing_control_arn(arn) => {
                            return Err(invalid(
                                "dns.routing_control.drill_control_arn",
                                "must be a routing control ARN",
                            ))
                        }
                        (Some(arn), _) if arn == &rc.control_arn => {
                            return Err(invalid(
                                "dns.routing_control.drill_control_arn",
                                "is the production control; use dns.drill_uses_production = true to drill on it",
                            ))
                        }
                        (None, Some(_)) => {
                            return Err(invalid(
                                "dns.routing_control.drill_control_arn",
                                "full drills switch dns.drill_record_name: name its routing control",
                            ))
                        }
                        _ => {}
                    }
                }
                (SwitchMode::Upsert, None) => {}
            }
            let mut seen = std::collections::BTreeSet::new();
            let shorthand = dns
                .ssm_parameters
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("dns.ssm_parameters[{i}]"), p, None));
            let settings = dns.client_settings.iter().enumerate().map(|(i, c)| {
                (
                    format!("dns.client_settings[{i}].parameter"),
                    &c.parameter,
                    Some((i, c)),
                )
            });
            for (key, name, setting) in shorthand.chain(settings) {
                if !valid_parameter_name(name) {
                    return Err(invalid(
                        key,
                        "must be an SSM parameter name: /-rooted, letters, digits and _.-/ only, \
                         not under /aws or /ssm",
                    ));
                }
                if !seen.insert(name.as_str()) {
                    return Err(invalid(key, format!("{name} is listed twice")));
                }
                let Some((i, c)) = setting else { continue };
                match (&c.warehouse, c.kind.needs_warehouse()) {
                    (None, true) => {
                        return Err(invalid(
                            format!("dns.client_settings[{i}].warehouse"),
                            format!("{} needs the SQL warehouse's name", c.kind.as_str()),
                        ))
                    }
                    (Some(_), false) => {
                        return Err(invalid(
                            format!("dns.client_settings[{i}].warehouse"),
                            "workspace_url does not depend on a warehouse; remove it",
                        ))
                    }
                    (Some(w), true) if w.trim().is_empty() => {
                        return Err(invalid(
                            format!("dns.client_settings[{i}].warehouse"),
                            "must not be empty",
                        ))
                    }
                    _ => {}
                }
            }
        }
        if self.startup.poll_seconds == 0 || self.startup.poll_seconds > 300 {
            return Err(invalid("startup.poll_seconds", "must be 1–300"));
        }
        if self.shutdown.retry_interval_seconds == 0 {
            return Err(invalid(
                "shutdown.retry_interval_seconds",
                "must be at least 1",
            ));
        }
        if self.shutdown.max_attempts == 0 {
            return Err(invalid("shutdown.max_attempts", "must be at least 1"));
        }
        self.monitoring.validate()?;
        self.drift.validate()?;
        validate_approval(&self.approval)?;
        validate_managed_dr(self)?;
        Ok(())
    }

    /// The site a direction fences and the one it activates.
    pub fn sites_for(&self, direction: Direction) -> (&Site, &Site) {
        match direction {
            Direction::Failover => (&self.sites.primary, &self.sites.dr),
            Direction::Failback => (&self.sites.dr, &self.sites.primary),
        }
    }

    /// Whether a resource with this name and these tags is excluded from the sweep.
    pub fn excluded(&self, name: &str, tags: &BTreeMap<String, String>) -> bool {
        self.shutdown.exclude_names.iter().any(|n| n == name)
            || self
                .shutdown
                .exclude_tags
                .iter()
                .any(|(k, v)| tags.get(k) == Some(v))
    }
}

/// Shortest approval wait (tests use seconds; a real plan gives people minutes to hours).
pub const MIN_APPROVAL_TIMEOUT_SECONDS: u32 = 1;

/// Longest approval wait: a Standard Step Functions execution lasts at most one year, so the
/// wait (the task's `TimeoutSecondsPath`) must end inside it to time out cleanly.
pub const MAX_APPROVAL_TIMEOUT_SECONDS: u32 = 31_536_000;

/// Whether an `http://` URL stays on this machine (the local emulator), where no token can be
/// read off the wire.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// What identifies a workspace: scheme, host, port and path without trailing '/', so that two
/// spellings of one workspace compare equal (the URL parser lower-cases scheme and host).
type WorkspaceKey = (String, String, Option<u16>, String);

/// Checks a site's workspace URL (`key` is the site's dotted key) and returns its identity.
fn workspace_key(key: &str, raw: &str) -> Result<WorkspaceKey, PlanError> {
    let key = format!("{key}.workspace_url");
    // The parser silently drops tabs, newlines and surrounding spaces, but clients use the
    // text as written: what is checked must be what is used.
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            key,
            "must not contain spaces or control characters",
        ));
    }
    let url = url::Url::parse(raw).map_err(|e| invalid(&key, format!("is not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(invalid(
                key,
                "must be https: over http the workspace token travels in clear (http is \
                 accepted only for loopback hosts such as the local emulator)",
            ))
        }
        _ => return Err(invalid(key, "must be an https URL")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            key,
            "must not carry credentials (user:password@): URLs end up in logs and reports; \
             credentials belong in Secrets Manager (auth.secret_id)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            key,
            "must not have a query string or fragment: API paths are appended to it",
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(invalid(key, "must name a host"));
    };
    Ok((
        url.scheme().to_string(),
        host.to_ascii_lowercase(),
        url.port_or_known_default(),
        url.path().trim_end_matches('/').to_string(),
    ))
}

/// Why two principals would let one person vote twice: the same principal, or a role and a
/// session of it (anyone who can assume the role picks the session name).
fn overlap(a: &Principal, b: &Principal) -> Option<&'static str> {
    let covers = |role: &Principal, session: &Principal| match (role, session) {
        (
            Principal::Role {
                partition,
                account,
                name,
            },
            Principal::Session {
                partition: p,
                account: a,
                role,
                ..
            },
        ) => partition == p && account == a && name == role,
        _ => false,
    };
    if a == b {
        Some("the same principal")
    } else if covers(a, b) || covers(b, a) {
        Some("a role and a session of it (whoever assumes the role picks the session name)")
    } else {
        None
    }
}

/// E-mail approvers the template can subscribe, one filtered subscription each
/// (`ApproverSubscription0..7` in `infra/template.yaml`; `sam build` cannot read `Fn::ForEach`).
pub const MAX_EMAIL_APPROVERS: usize = 8;

/// Checks the approval settings: every approver a distinct person, every IAM principal mapped
/// to exactly one of them, and a two-person rule that can be met.
fn validate_approval(a: &Approval) -> Result<(), PlanError> {
    if a.required_approvals == 0 || a.required_approvals > 5 {
        return Err(invalid("approval.required_approvals", "must be 1–5"));
    }
    let mut listed: Vec<Identity> = Vec::with_capacity(a.approvers.len());
    for (i, raw) in a.approvers.iter().enumerate() {
        let key = format!("approval.approvers[{i}]");
        let id = Identity::parse(raw).map_err(|e| invalid(&key, e.to_string()))?;
        for (j, other) in listed.iter().enumerate() {
            let why = match (other, &id) {
                (x, y) if x == y => {
                    Some("the same identity once normalised: trimmed, e-mail lower-cased")
                }
                (Identity::Principal(x), Identity::Principal(y)) => overlap(x, y),
                _ => None,
            };
            if let Some(why) = why {
                return Err(invalid(
                    key,
                    format!(
                        "repeats approval.approvers[{j}] ({why}): the two-person rule counts \
                         people, so each approver must be listed once"
                    ),
                ));
            }
        }
        if matches!(id, Identity::Email(_))
            && listed
                .iter()
                .filter(|l| matches!(l, Identity::Email(_)))
                .count()
                == MAX_EMAIL_APPROVERS
        {
            return Err(invalid(
                key,
                format!(
                    "is e-mail approver number {}, but the template gives at most \
                     {MAX_EMAIL_APPROVERS} e-mail approvers a subscription of their own: this \
                     one would never receive links",
                    MAX_EMAIL_APPROVERS + 1
                ),
            ));
        }
        listed.push(id);
    }
    // Principal → (approver e-mail, key it is mapped at).
    let mut mapped: Vec<(Principal, String, String)> = Vec::new();
    let mut emails: BTreeMap<String, String> = BTreeMap::new();
    for (raw_email, arns) in &a.principals {
        let key = format!("approval.principals.{raw_email:?}");
        let email = match Identity::parse(raw_email) {
            Ok(Identity::Email(e)) => e,
            Ok(Identity::Principal(_)) => {
                return Err(invalid(
                    key,
                    "must be an e-mail approver: principals maps an e-mail to the IAM \
                     principals of the same person",
                ))
            }
            Err(e) => return Err(invalid(key, e.to_string())),
        };
        if !listed.contains(&Identity::Email(email.clone())) {
            return Err(invalid(
                key,
                "is not listed in approval.approvers: only an approver's principals may vote \
                 for them",
            ));
        }
        if let Some(first) = emails.insert(email.clone(), raw_email.clone()) {
            return Err(invalid(
                key,
                format!("is approval.principals.{first:?} again (after trimming and lower-casing)"),
            ));
        }
        for (k, raw_arn) in arns.iter().enumerate() {
            let key = format!("{key}[{k}]");
            let principal = match Identity::parse(raw_arn) {
                Ok(Identity::Principal(p)) => p,
                Ok(Identity::Email(_)) => {
                    return Err(invalid(
                        key,
                        "must be an IAM user or role ARN or an STS assumed-role ARN, not an \
                         e-mail address",
                    ))
                }
                Err(e) => return Err(invalid(key, e.to_string())),
            };
            for (j, other) in listed.iter().enumerate() {
                if let Identity::Principal(other) = other {
                    if let Some(why) = overlap(other, &principal) {
                        return Err(invalid(
                            key,
                            format!(
                                "and approval.approvers[{j}] are {why}: one person cannot vote \
                                 as two approvers"
                            ),
                        ));
                    }
                }
            }
            for (other, owner, at) in &mapped {
                if let Some(why) = overlap(other, &principal) {
                    let whose = if *owner == email {
                        "listed twice for this approver".to_string()
                    } else {
                        format!("mapped to {owner} too: one person cannot vote as two approvers")
                    };
                    return Err(invalid(key, format!("and {at} are {why}, {whose}")));
                }
            }
            mapped.push((principal, email.clone(), key));
        }
    }
    let required = a.required_approvals as usize;
    if listed.is_empty() && required > 1 {
        return Err(invalid(
            "approval.required_approvals",
            format!(
                "is {required} but approval.approvers is empty: without a list anyone counts as \
                 themself, so one person voting by link and by CLI would count twice"
            ),
        ));
    }
    if !listed.is_empty() && required > listed.len() {
        return Err(invalid(
            "approval.required_approvals",
            format!(
                "is {required} but approval.approvers lists {} distinct approver(s): the \
                 failover could never be approved",
                listed.len()
            ),
        ));
    }
    if !(MIN_APPROVAL_TIMEOUT_SECONDS..=MAX_APPROVAL_TIMEOUT_SECONDS).contains(&a.timeout_seconds) {
        return Err(invalid(
            "approval.timeout_seconds",
            format!(
                "must be {MIN_APPROVAL_TIMEOUT_SECONDS}–{MAX_APPROVAL_TIMEOUT_SECONDS} seconds: a \
                 Standard Step Functions execution lasts at most a year, so a longer wait could \
                 never time out cleanly"
            ),
        ));
    }
    Ok(())
}

/// Which way a run moves production.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Primary → DR.
    Failover,
    /// DR → primary.
    Failback,
}

/// Names the two sites in ledger keys and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteRole {
    /// The primary workspace.
    Primary,
    /// The DR workspace.
    Dr,
}

impl Direction {
    /// (site fenced, site activated).
    pub fn roles(self) -> (SiteRole, SiteRole) {
        match self {
            Direction::Failover => (SiteRole::Primary, SiteRole::Dr),
            Direction::Failback => (SiteRole::Dr, SiteRole::Primary),
        }
    }
}

impl Plan {
    /// A site by role.
    pub fn site(&self, role: SiteRole) -> &Site {
        match role {
            SiteRole::Primary => &self.sites.primary,
            SiteRole::Dr => &self.sites.dr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../lifeboat.toml");

    #[test]
    fn example_plan_is_valid() {
        let plan = Plan::from_toml(EXAMPLE, "lifeboat.toml").unwrap();
        assert_eq!(plan.name, "sales-platform");
        assert_eq!(plan.sites_for(Direction::Failover).1.region, "us-west-2");
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let typo = EXAMPLE.replace("rpo_minutes = 15", "rpo_minuts = 15");
        let err = Plan::from_toml(&typo, "lifeboat.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rpo_minuts"), "{err}");
        let typo = EXAMPLE.replace("active_runs = \"cancel\"", "active_runs = \"cancle\"");
        let err = Plan::from_toml(&typo, "lifeboat.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cancle"), "{err}");
    }

    #[test]
    fn wrong_type_is_refused() {
        let bad = EXAMPLE.replace("rto_minutes = 30", "rto_minutes = \"thirty\"");
        let err = Plan::from_toml(&bad, "lifeboat.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("rto_minutes"), "{err}");
    }

    #[test]
    fn contradictions_are_refused_naming_the_key() {
        let same = EXAMPLE.replace("region = \"us-west-2\"", "region = \"us-east-1\"");
        match Plan::from_toml(&same, "p").unwrap_err() {
            PlanError::Invalid { key, .. } => assert_eq!(key, "sites.dr.region"),
            other => panic!("{other}"),
        }
        let both = EXAMPLE.replace(
            "expect_rows = [[\"50\"]]",
            "expect_rows = [[\"50\"]]\nexpect_min_rows = 1",
        );
        match Plan::from_toml(&both, "p").unwrap_err() {
            PlanError::Invalid { key, .. } => assert_eq!(key, "validation.queries[0]"),
            other => panic!("{other}"),
        }
        let zero = EXAMPLE.replace("max_concurrent_runs = 2", "max_concurrent_runs = 0");
        match Plan::from_toml(&zero, "p").unwrap_err() {
            PlanError::Invalid { key, .. } => {
                assert_eq!(key, "startup.concurrency[0].max_concurrent_runs")
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn no_secret_values_in_plans() {
        // Sites name secrets; a literal token field is an unknown key.
        let leak = EXAMPLE.replace(
            "auth = { type = \"pat\", secret_id = \"lifeboat/primary-token\" }",
            "auth = { type = \"pat\", token = \"abc\" }",
        );
        assert!(Plan::from_toml(&leak, "p").is_err());
    }

    #[test]
    fn exclusions_by_name_and_tag() {
        let plan = Plan::from_toml(EXAMPLE, "p").unwrap();
        let mut tags = BTreeMap::new();
        assert!(!plan.excluded("Nightly Sales ETL", &tags));
        tags.insert("lifeboat".to_string(), "exclude".to_string());
        assert!(plan.excluded("Nightly Sales ETL", &tags));
    }

    const RC_ENDPOINTS: &str = "cluster_endpoints = [{ url = \"https://a1.route53-recovery-cluster.us-west-2.amazonaws.com/v1\", region = \"us-west-2\" }, { url = \"https://b2.route53-recovery-cluster.eu-west-1.amazonaws.com/v1\", region = \"eu-west-1\" }]";
    const RC_ARN: &str = "arn:aws:route53-recovery-control::123456789012:controlpanel/0123abcd/routingcontrol/serve-primary";
    const RC_DRILL: &str = "arn:aws:route53-recovery-control::123456789012:controlpanel/0123abcd/routingcontrol/drill-primary";
    const PRIMARY_URL: &str = "workspace_url = \"https://dbc-primary.cloud.databricks.com\"";
    const DR_URL: &str = "workspace_url = \"https://dbc-dr.cloud.databricks.com\"";
    const APPROVERS: &str = "approvers = [\"oncall-dr@example.com\"]";
    const TIMEOUT: &str = "timeout_seconds = 900";
    /// The last line of the plan, inside `[approval]`: approval keys are appended to it.
    const APPROVAL_END: &str = "drill_preapproved = false";

    /// `(from, to)`: replace a line of the example.
    type Edit = (&'static str, String);
    /// A case: name, edits, and the refused key with a fragment of the reason (`None`: valid).
    type Row = (
        &'static str,
        Vec<Edit>,
        Option<(&'static str, &'static str)>,
    );

    /// The example with each `(from, to)` applied; `from` must occur exactly once.
    fn edited(edits: &[Edit]) -> String {
        let mut text = EXAMPLE.to_string();
        for (from, to) in edits {
            assert_eq!(text.matches(from).count(), 1, "{from}");
            text = text.replace(from, to);
        }
        text
    }

    #[test]
    fn unsafe_settings_are_refused_naming_the_key() {
        let primary = |url: &str| (PRIMARY_URL, format!("workspace_url = \"{url}\""));
        let dr = |url: &str| (DR_URL, format!("workspace_url = \"{url}\""));
        let approvers = |list: &str| (APPROVERS, format!("approvers = {list}"));
        let approval = |extra: &str| (APPROVAL_END, format!("{APPROVAL_END}\n{extra}"));
        let timeout = |t: &str| (TIMEOUT, format!("timeout_seconds = {t}"));
        let two = approvers(r#"["alice@x.com", "bob@x.com"]"#);
        // Appended to `[dns]` (before its client settings).
        let dns_switch = |body: &str| {
            (
                "drill_record_name = \"databricks-drill.sales.example.internal\"\n",
                format!(
                    "drill_record_name = \"databricks-drill.sales.example.internal\"\n{body}\n"
                ),
            )
        };
        // A third client setting, after the example's two.
        let setting = |body: &str| {
            (
                "[[data_sources]]",
                format!("[[dns.client_settings]]\n{body}\n\n[[data_sources]]"),
            )
        };
        let long = format!(r#"["oncall-dr@example.com", "{}@x.com"]"#, "a".repeat(300));
        let rows: Vec<Row> = vec![
            // 1. Plain http only to loopback hosts.
            (
                "http to a remote host",
                vec![primary("http://dbc-primary.cloud.databricks.com")],
                Some(("sites.primary.workspace_url", "in clear")),
            ),
            (
                "http to the DR site",
                vec![dr("http://dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "in clear")),
            ),
            (
                "http to a host named like localhost",
                vec![dr("http://localhost.example.com")],
                Some(("sites.dr.workspace_url", "in clear")),
            ),
            (
                "http to a host named like 127.0.0.1",
                vec![dr("http://127.0.0.1.nip.io:8080")],
                Some(("sites.dr.workspace_url", "in clear")),
            ),
            (
                "another scheme",
                vec![dr("ftp://dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "https")),
            ),
            (
                "not a URL",
                vec![dr("dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "not a URL")),
            ),
            (
                "a newline the URL parser would drop",
                vec![dr(r"https://dbc-dr.cloud.data\nbricks.com")],
                Some(("sites.dr.workspace_url", "control")),
            ),
            // 2. No credentials, query or fragment.
            (
                "user and password in the URL",
                vec![dr("https://user:secret@dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "credentials")),
            ),
            (
                "user only in the URL",
                vec![primary("https://dapi123@dbc-primary.cloud.databricks.com")],
                Some(("sites.primary.workspace_url", "credentials")),
            ),
            (
                "password only in the URL",
                vec![dr("https://:secret@dbc-dr.cloud.databricks.com")],
                Some(("sites.dr.workspace_url", "credentials")),
            ),
            (
                "query string",
                vec![dr("https://dbc-dr.cloud.databricks.com/?o=123")],
                Some(("sites.dr.workspace_url", "query")),
            ),
            (
                "empty query string",
                vec![dr("https://dbc-dr.cloud.databricks.com?")],
                Some(("sites.dr.workspace_url", "query")),
            ),
            (
                "fragment",
                vec![dr("https://dbc-dr.cloud.databricks.com#x")],
                Some(("sites.dr.workspace_url", "fragment")),
            ),
            // 3. DR is another workspace, however spelt.
            (
                "DR = primary up to case and trailing slash",
                vec![dr("https://DBC-Primary.cloud.databricks.com/")],
                Some(("sites.dr.workspace_url", "same workspace")),
            ),
            (
                "DR = primary with its default port",
                vec![dr("HTTPS://dbc-primary.cloud.databricks.com:443")],
                Some(("sites.dr.workspace_url", "same workspace")),
            ),
            (
                "DR = primary on one loopback port",
                vec![
                    primary("http://127.0.0.1:8080"),
                    dr("http://127.0.0.1:8080/"),
                ],
                Some(("sites.dr.workspace_url", "same workspace")),
            ),
            // 4. Approvers are identities, each listed once.
            (
                "approver with a newline",
                vec![approvers(
                    r#"["oncall-dr@example.com", "bob@x.com\nBcc: all@x.com"]"#,
                )],
                Some(("approval.approvers[1]", "control character")),
            ),
            (
                "blank approver",
                vec![approvers(r#"["oncall-dr@example.com", " "]"#)],
                Some(("approval.approvers[1]", "empty")),
            ),
            (
                "approver too long",
                vec![approvers(&long)],
                Some(("approval.approvers[1]", "longer than")),
            ),
            (
                "approver neither e-mail nor ARN",
                vec![approvers(r#"["on-call"]"#)],
                Some(("approval.approvers[0]", "neither")),
            ),
            (
                "nine e-mail approvers",
                vec![approvers(&format!(
                    "[{}]",
                    (0..9)
                        .map(|i| format!("\"a{i}@x.com\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))],
                Some(("approval.approvers[8]", "at most 8 e-mail approvers")),
            ),
            (
                "approver a group ARN",
                vec![approvers(r#"["arn:aws:iam::123456789012:group/ops"]"#)],
                Some(("approval.approvers[0]", "neither")),
            ),
            (
                "same approver in two spellings",
                vec![approvers(r#"["Alice@X.com", "alice@x.com "]"#)],
                Some(("approval.approvers[1]", "repeats approval.approvers[0]")),
            ),
            (
                "same IAM user with a path",
                vec![approvers(
                    r#"["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/ops/alice"]"#,
                )],
                Some(("approval.approvers[1]", "repeats approval.approvers[0]")),
            ),
            (
                "a role and a session of it",
                vec![approvers(
                    r#"["arn:aws:iam::123456789012:role/OnCall", "arn:aws:sts::123456789012:assumed-role/OnCall/bob"]"#,
                )],
                Some(("approval.approvers[1]", "session")),
            ),
            // 5. Principals map a listed e-mail approver to IAM principals of no one else.
            (
                "principals of an unlisted person",
                vec![approval(
                    r#"principals = { "bob@x.com" = ["arn:aws:iam::123456789012:user/bob"] }"#,
                )],
                Some((r#"approval.principals."bob@x.com""#, "not listed")),
            ),
            (
                "principals keyed by an ARN",
                vec![
                    approvers(r#"["arn:aws:iam::123456789012:role/OnCall"]"#),
                    approval(
                        r#"principals = { "arn:aws:iam::123456789012:role/OnCall" = ["arn:aws:iam::123456789012:user/bob"] }"#,
                    ),
                ],
                Some((
                    r#"approval.principals."arn:aws:iam::123456789012:role/OnCall""#,
                    "e-mail",
                )),
            ),
            (
                "principals keyed twice by one approver",
                vec![
                    approvers(r#"["alice@x.com"]"#),
                    approval(
                        r#"principals = { "Alice@x.com" = ["arn:aws:iam::123456789012:user/a"], "alice@x.com" = ["arn:aws:iam::123456789012:user/b"] }"#,
                    ),
                ],
                Some((r#"approval.principals."alice@x.com""#, "again")),
            ),
            (
                "principal that is an e-mail",
                vec![approval(
                    r#"principals = { "oncall-dr@example.com" = ["alice@x.com"] }"#,
                )],
                Some((
                    r#"approval.principals."oncall-dr@example.com"[0]"#,
                    "not an e-mail",
                )),
            ),
            (
                "principal that is no IAM principal",
                vec![approval(
                    r#"principals = { "oncall-dr@example.com" = ["arn:aws:iam::123456789012:user/a", "arn:aws:s3:::bucket"] }"#,
                )],
                Some((
                    r#"approval.principals."oncall-dr@example.com"[1]"#,
                    "neither",
                )),
            ),
            (
                "principal with a newline",
                vec![approval(
                    r#"principals = { "oncall-dr@example.com" = ["arn:aws:iam::123456789012:user/a\n"] }"#,
                )],
                Some((
                    r#"approval.principals."oncall-dr@example.com"[0]"#,
                    "control character",
                )),
            ),
            (
                "one principal mapped to two approvers",
                vec![
                    two.clone(),
                    approval(
                        r#"principals = { "alice@x.com" = ["arn:aws:iam::123456789012:user/x"], "bob@x.com" = ["arn:aws:iam::123456789012:user/x"] }"#,
                    ),
                ],
                Some((
                    r#"approval.principals."bob@x.com"[0]"#,
                    "mapped to alice@x.com",
                )),
            ),
            (
                "principal that is another approver",
                vec![
                    approvers(r#"["alice@x.com", "arn:aws:iam::123456789012:user/bob"]"#),
                    approval(
                        r#"principals = { "alice@x.com" = ["arn:aws:iam::123456789012:user/bob"] }"#,
                    ),
                ],
                Some((
                    r#"approval.principals."alice@x.com"[0]"#,
                    "approval.approvers[1]",
                )),
            ),
            (
                "principal a role whose session is another approver",
                vec![
                    approvers(
                        r#"["alice@x.com", "arn:aws:sts::123456789012:assumed-role/OnCall/bob"]"#,
                    ),
                    approval(
                        r#"principals = { "alice@x.com" = ["arn:aws:iam::123456789012:role/OnCall"] }"#,
                    ),
                ],
                Some((r#"approval.principals."alice@x.com"[0]"#, "session")),
            ),
            // 6. A two-person rule that can be met, by listed people.
            (
                "more approvals than approvers",
                vec![two.clone(), approval("required_approvals = 3")],
                Some(("approval.required_approvals", "lists 2")),
            ),
            (
                "two approvals and no list",
                vec![approvers("[]"), approval("required_approvals = 2")],
                Some(("approval.required_approvals", "empty")),
            ),
            // 7. A wait that a person can answer and Step Functions can end.
            (
                "timeout over a year",
                vec![timeout("31536001")],
                Some(("approval.timeout_seconds", "Step Functions")),
            ),
            (
                "no timeout",
                vec![timeout("0")],
                Some(("approval.timeout_seconds", "1–31536000")),
            ),
            // Still valid.
            (
                "localized plan: two loopback ports",
                vec![
                    primary("http://127.0.0.1:8080"),
                    dr("http://127.0.0.1:8081"),
                ],
                None,
            ),
            (
                "localhost and ::1",
                vec![primary("http://LocalHost:9000"), dr("http://[::1]:9001/")],
                None,
            ),
            ("any 127/8 address", vec![primary("http://127.1.2.3")], None),
            (
                "https with a port and a trailing slash",
                vec![dr("https://dbc-dr.cloud.databricks.com:8443/")],
                None,
            ),
            (
                "approver ARNs",
                vec![approvers(
                    r#"["oncall-dr@example.com", "arn:aws:iam::123456789012:role/OnCall", "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/carol@x.com", "arn:aws-us-gov:iam::123456789012:user/dave"]"#,
                )],
                None,
            ),
            (
                "principals mapping and two-person rule",
                vec![
                    two.clone(),
                    approval(
                        r#"required_approvals = 2
principals = { "Alice@X.com " = ["arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:role/AliceAdmin"], "bob@x.com" = ["arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin/bob"] }"#,
                    ),
                ],
                None,
            ),
            ("no approvers, one approval", vec![approvers("[]")], None),
            // Client settings: SSM names, one owner per parameter, warehouse where needed.
            (
                "a client setting without its warehouse",
                vec![setting(
                    r#"parameter = "/lifeboat/x/jdbc"
kind = "jdbc_url""#,
                )],
                Some(("dns.client_settings[2].warehouse", "jdbc_url needs")),
            ),
            (
                "a workspace URL setting naming a warehouse",
                vec![setting(
                    r#"parameter = "/lifeboat/x/url"
kind = "workspace_url"
warehouse = "Shared BI""#,
                )],
                Some(("dns.client_settings[2].warehouse", "remove it")),
            ),
            (
                "a parameter listed twice",
                vec![setting(
                    r#"parameter = "/lifeboat/sales-platform/workspace-url"
kind = "workspace_url""#,
                )],
                Some(("dns.client_settings[2].parameter", "listed twice")),
            ),
            (
                "a parameter name SSM refuses",
                vec![setting(
                    r#"parameter = "lifeboat/no-root"
kind = "workspace_url""#,
                )],
                Some(("dns.client_settings[2].parameter", "SSM parameter name")),
            ),
            (
                "a reserved parameter path",
                vec![setting(
                    r#"parameter = "/aws/reference/x"
kind = "workspace_url""#,
                )],
                Some(("dns.client_settings[2].parameter", "not under /aws")),
            ),
            // The statically stable switch: complete, safe, one control per record.
            (
                "routing control without its section",
                vec![dns_switch("switch = \"routing_control\"")],
                Some(("dns.routing_control", "needs the cluster endpoints")),
            ),
            (
                "routing control section with upsert",
                vec![dns_switch(&format!("[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\""))],
                Some(("dns.routing_control", "only read with")),
            ),
            (
                "routing control in clear to a remote endpoint",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\ncluster_endpoints = [{{ url = \"http://x.example/v1\", region = \"us-west-2\" }}]\ncontrol_arn = \"{RC_ARN}\"\ndrill_control_arn = \"{RC_DRILL}\""))],
                Some(("dns.routing_control.cluster_endpoints[0].url", "https")),
            ),
            (
                "routing control ARN of another service",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"arn:aws:route53:::healthcheck/abc\"\ndrill_control_arn = \"{RC_DRILL}\""))],
                Some(("dns.routing_control.control_arn", "routing control ARN")),
            ),
            (
                "a drill record without its routing control",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\""))],
                Some(("dns.routing_control.drill_control_arn", "name its routing control")),
            ),
            (
                "the drill on the production control",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\"\ndrill_control_arn = \"{RC_ARN}\""))],
                Some(("dns.routing_control.drill_control_arn", "production control")),
            ),
            (
                "a complete routing control switch",
                vec![dns_switch(&format!("switch = \"routing_control\"\n[dns.routing_control]\n{RC_ENDPOINTS}\ncontrol_arn = \"{RC_ARN}\"\ndrill_control_arn = \"{RC_DRILL}\""))],
                None,
            ),
            (
                "an ODBC connection string",
                vec![setting(
                    r#"parameter = "/lifeboat/x/odbc"
kind = "odbc_connection_string"
warehouse = "Shared BI""#,
                )],
                None,
            ),
            ("shortest timeout", vec![timeout("60")], None),
            ("longest timeout", vec![timeout("31536000")], None),
        ];
        for (name, edits, want) in rows {
            let got = Plan::from_toml(&edited(&edits), name);
            match (want, got) {
                (None, Ok(_)) => {}
                (None, Err(e)) => panic!("{name}: refused: {e}"),
                (Some((key, reason)), Err(PlanError::Invalid { key: k, reason: r })) => {
                    assert_eq!(k, key, "{name}: {r}");
                    assert!(r.contains(reason), "{name}: {r}");
                }
                (Some(_), other) => panic!("{name}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_typo_in_a_client_setting_is_refused_naming_it() {
        let text = EXAMPLE.replace("kind = \"jdbc_url\"", "kind = \"jdbc\"");
        let err = Plan::from_toml(&text, "p").unwrap_err().to_string();
        assert!(err.contains("unknown variant `jdbc`"), "{err}");
        assert!(err.contains("kind = \"jdbc\""), "the line is shown: {err}");
        let plan = Plan::from_toml(EXAMPLE, "p").unwrap();
        let settings = plan.dns.unwrap().all_client_settings();
        let kinds: Vec<_> = settings.iter().map(|c| c.kind.as_str()).collect();
        assert_eq!(kinds, ["workspace_url", "http_path", "jdbc_url"]);
    }

    #[test]
    fn repository_plans_are_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("lifeboat.toml")];
        for entry in std::fs::read_dir(root.join("plans")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
        assert!(files.len() > 1, "{files:?}");
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Err(e) = Plan::from_toml(&text, &path.display().to_string()) {
                panic!("{e}");
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn config() -> ProptestConfig {
            // No regression files: they would be written into the source tree.
            ProptestConfig {
                failure_persistence: None,
                ..ProptestConfig::default()
            }
        }

        fn example() -> Plan {
            Plan::from_toml(EXAMPLE, "lifeboat.toml").unwrap()
        }

        fn approver() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[ \\t]?[A-Za-z0-9._%+'|-]{0,10}@?[A-Za-z0-9.-]{0,10}[ \\n]?",
                "[ ]?[A-Za-z0-9._+-]{1,10}@[A-Za-z0-9-]{1,8}(\\.[A-Za-z0-9-]{1,8}){0,2}[ ]?",
                "arn:aws(-cn)?:(iam|sts|s3)::[0-9]{11,13}:(user|role|group|assumed-role)(/[A-Za-z0-9+=,.@_-]{0,6}){0,3}",
                "arn:aws:(iam::[0-9]{12}:(user|role)(/[A-Za-z0-9_+=,.@-]{1,8}){1,3}|sts::[0-9]{12}:assumed-role/[A-Za-z0-9_]{1,8}/[A-Za-z0-9_@.]{1,8})",
                Just("ONCALL-DR@example.com ".to_string()),
            ]
        }

        /// Mostly near-valid URLs, so that accepted ones are common enough to check.
        fn workspace_url() -> impl Strategy<Value = String> {
            let host = prop_oneof![
                Just("localhost".to_string()),
                Just("LocalHost".to_string()),
                Just("[::1]".to_string()),
                Just("[::2]".to_string()),
                Just("0x7f.1".to_string()),
                "127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
                "[a-z0-9.-]{1,12}",
                "[A-Za-z0-9-]{1,8}\\.cloud\\.databricks\\.com",
            ];
            let structured = (
                prop::sample::select(vec!["https", "HTTPS", "http", "Http", "ftp", "ws"]),
                prop::option::weighted(0.15, "[a-z]{0,4}(:[a-z]{0,4})?"),
                host,
                prop::option::weighted(0.5, any::<u16>()),
                "(/[a-z%/ ]{0,6})?",
                prop::option::weighted(0.15, "[a-z=]{0,4}"),
                prop::option::weighted(0.1, "[a-z]{0,3}"),
            )
                .prop_map(|(scheme, user, host, port, path, query, fragment)| {
                    let user = user.map(|u| format!("{u}@")).unwrap_or_default();
                    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                    let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                    let fragment = fragment.map(|f| format!("#{f}")).unwrap_or_default();
                    format!("{scheme}://{user}{host}{port}{path}{query}{fragment}")
                });
            prop_oneof![1 => any::<String>(), 4 => structured]
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn from_toml_never_panics(text in any::<String>()) {
                let _ = Plan::from_toml(&text, "p");
            }

            #[test]
            fn from_toml_never_panics_on_a_spliced_example(
                insert in prop_oneof![any::<String>(), "[\\[\\]{}=\",.:#'\\\\ \\na-z0-9_-]{0,24}"],
                at in any::<prop::sample::Index>(),
            ) {
                let bounds: Vec<usize> = EXAMPLE
                    .char_indices()
                    .map(|(i, _)| i)
                    .chain(std::iter::once(EXAMPLE.len()))
                    .collect();
                let at = bounds[at.index(bounds.len())];
                let text = format!("{}{insert}{}", &EXAMPLE[..at], &EXAMPLE[at..]);
                let _ = Plan::from_toml(&text, "p");
            }

            #[test]
            fn approvers_are_identities_or_refused_by_index(raw in approver()) {
                let mut plan = example();
                plan.approval.approvers = vec!["oncall-dr@example.com".into(), raw.clone()];
                match plan.validate() {
                    Ok(()) => prop_assert!(Identity::parse(&raw).is_ok(), "{raw:?}"),
                    Err(PlanError::Invalid { key, .. }) => {
                        prop_assert_eq!(key, "approval.approvers[1]")
                    }
                    Err(e) => prop_assert!(false, "{e}"),
                }
            }

            #[test]
            fn accepted_workspace_urls_are_https_or_loopback(raw in workspace_url()) {
                let mut plan = example();
                plan.sites.dr.workspace_url = raw.clone();
                if plan.validate().is_ok() {
                    let url = url::Url::parse(&raw);
                    prop_assert!(url.is_ok(), "{raw:?}");
                    let url = url.unwrap();
                    let loopback = match url.host() {
                        Some(url::Host::Ipv4(ip)) => ip.octets()[0] == 127,
                        _ => matches!(url.host_str(), Some("localhost" | "[::1]")),
                    };
                    prop_assert!(
                        url.scheme() == "https" || (url.scheme() == "http" && loopback),
                        "{raw:?}"
                    );
                    prop_assert!(url.username().is_empty() && url.password().is_none(), "{raw:?}");
                    prop_assert!(url.query().is_none() && url.fragment().is_none(), "{raw:?}");
                }
            }
        }
    }

    #[test]
    fn canary_keys_stay_under_the_lifeboat_prefix() {
        let plan = |key: &str| {
            Plan::from_toml(
                &EXAMPLE.replace(
                    "replica = \"sales-lake-usw2\"",
                    &format!("replica = \"sales-lake-usw2\"\ncanary_key = \"{key}\""),
                ),
                "p",
            )
        };
        assert!(plan("_lifeboat/canary.json").is_ok());
        for bad in [
            "data/part-0001.parquet",
            "_lifeboat/../data/x",
            "canary.json",
        ] {
            match plan(bad) {
                Err(PlanError::Invalid { key, .. }) => {
                    assert_eq!(key, "replication.buckets[0].canary_key", "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn delta_tables_name_the_field_at_fault() {
        let with = |table: &str| {
            Plan::from_toml(
                &EXAMPLE.replace(
                    "[shutdown]",
                    &format!("[[replication.tables]]\n{table}\n\n[shutdown]"),
                ),
                "p",
            )
        };
        let ok = with("name = \"t\"\nbucket = \"sales-lake\"\npath = \"delta/t\"").expect("valid");
        let t = ok.replication.tables.last().expect("added");
        let at = t.locations(&ok.replication.buckets).expect("resolves");
        assert_eq!(at.source.uri(), "s3://sales-lake-use1/delta/t");
        assert_eq!(at.replica.uri(), "s3://sales-lake-usw2/delta/t");
        assert_eq!(at.bucket_pair.as_deref(), Some("sales-lake"));
        let cases: &[(&str, &str, &str)] = &[
            (
                "name = \"t\"\nbucket = \"nope\"\npath = \"t\"",
                ".bucket",
                "not a replication.buckets name",
            ),
            ("name = \"t\"\nbucket = \"sales-lake\"", ".path", "required"),
            ("name = \"t\"\npath = \"t\"", ".bucket", "required"),
            (
                "name = \"t\"\nsource = \"s3://a-b-c/t\"",
                ".replica",
                "required",
            ),
            (
                "name = \"t\"\nsource = \"https://a-b-c/t\"\nreplica = \"s3://d-e-f/t\"",
                ".source",
                "not an s3:// URI",
            ),
            (
                "name = \"t\"\nsource = \"s3://a-b-c/t\"\nreplica = \"s3://a-b-c/t\"",
                ".replica",
                "is the source",
            ),
            (
                "name = \"t\"\nbucket = \"sales-lake\"\npath = \"../x\"",
                ".path",
                "not a table path",
            ),
            (
                "name = \"t\"\nbucket = \"sales-lake\"\npath = \"t/_delta_log\"",
                ".path",
                "names the log",
            ),
            (
                "name = \"t\"\nbucket = \"sales-lake\"\npath = \"t\"\nsource = \"s3://a-b-c/t\"",
                ".source",
                "not both",
            ),
            ("name = \"t\"", ".bucket", "needs"),
            (
                "name = \"orders\"\nbucket = \"sales-lake\"\npath = \"t\"",
                ".name",
                "duplicate",
            ),
        ];
        for (table, field, why) in cases {
            match with(table) {
                Err(PlanError::Invalid { key, reason }) => {
                    assert!(
                        key.starts_with("replication.tables[") && key.ends_with(field),
                        "{table}: {key}"
                    );
                    assert!(reason.contains(why), "{table}: {reason}");
                }
                other => panic!("{table}: {other:?}"),
            }
        }
        // A typo in a table's keys is refused by name.
        match with("name = \"t\"\nbuckett = \"sales-lake\"") {
            Err(e) => assert!(e.to_string().contains("buckett"), "{e}"),
            Ok(_) => panic!("a typo was accepted"),
        }
    }
    #[test]
    fn managed_dr_names_the_field_at_fault() {
        const GOOD: &str = "account_url = \"https://accounts.cloud.databricks.com\"\n\
            account_id = \"0d26-acc\"\nfailover_group = \"sales\"\n\
            auth = { type = \"oauth\", client_id = \"acc-admin\", secret_id = \"lifeboat/acc\" }\n\
            stable_url = \"sales-prod\"";
        // `ids`: whether both sites carry their workspace id.
        let with = |section: &str, ids: bool| {
            let mut text = EXAMPLE.to_string();
            if ids {
                text = text
                    .replace("[sites.dr]", "workspace_id = \"1234\"\n\n[sites.dr]")
                    .replace("[monitoring]", "workspace_id = \"5678\"\n\n[monitoring]");
            }
            Plan::from_toml(&format!("{text}\n[managed_dr]\n{section}\n"), "p")
        };
        let ok = with(GOOD, true).expect("valid");
        let m = ok.managed_dr.as_ref().expect("parsed");
        assert_eq!(m.group_name(), "accounts/0d26-acc/failover-groups/sales");
        assert_eq!(
            m.stable_url_name().as_deref(),
            Some("accounts/0d26-acc/stable-urls/sales-prod")
        );
        assert_eq!(m.failover_timeout_seconds, 1800);
        let swap = |from: &str, to: &str| GOOD.replace(from, to);
        let cases: Vec<(String, bool, &str, &str)> =
            vec![
            (GOOD.into(), false, "sites.primary.workspace_id", "required with"),
            (
                swap("https://accounts.cloud", "http://accounts.cloud"),
                true,
                "managed_dr.account_url",
                "https",
            ),
            (
                swap(".com\"", ".com/api\""),
                true,
                "managed_dr.account_url",
                "host only",
            ),
            (
                swap("\"sales\"", "\"../sales\""),
                true,
                "managed_dr.failover_group",
                "letters",
            ),
            (
                swap("0d26-acc", "acc/../x"),
                true,
                "managed_dr.account_id",
                "letters",
            ),
            (
                swap("sales-prod", "prod?w=1"),
                true,
                "managed_dr.stable_url",
                "letters",
            ),
            (
                swap(
                    "{ type = \"oauth\", client_id = \"acc-admin\", secret_id = \"lifeboat/acc\" }",
                    "{ type = \"pat\", secret_id = \"lifeboat/acc\" }",
                ),
                true,
                "managed_dr.auth",
                "OAuth M2M only",
            ),
            (
                format!("{GOOD}\nfailover_timeout_seconds = 5"),
                true,
                "managed_dr.failover_timeout_seconds",
                "60–86400",
            ),
            (
                format!("{GOOD}\nrpo_minutes = 0"),
                true,
                "managed_dr.rpo_minutes",
                "greater than 0",
            ),
        ];
        for (section, ids, key_want, why) in &cases {
            match with(section, *ids) {
                Err(PlanError::Invalid { key, reason }) => {
                    assert_eq!(key, *key_want, "{section}");
                    assert!(reason.contains(why), "{section}: {reason}");
                }
                other => panic!("{section}: {other:?}"),
            }
        }
        // A site naming a group without [managed_dr], or another group than it.
        let text = EXAMPLE.replace("[sites.dr]", "failover_group = \"sales\"\n\n[sites.dr]");
        match Plan::from_toml(&text, "p") {
            Err(PlanError::Invalid { key, .. }) => assert_eq!(key, "sites.primary.failover_group"),
            other => panic!("{other:?}"),
        }
        match Plan::from_toml(
            &format!(
                "{text}\n[managed_dr]\n{}\n",
                swap("\"sales\"", "\"other\"").replace("stable_url = \"sales-prod\"", "")
            ),
            "p",
        ) {
            Err(PlanError::Invalid { key, reason }) => {
                assert_eq!(key, "sites.primary.failover_group");
                assert!(reason.contains("other"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A typo is refused by name.
        match with(&format!("{GOOD}\nfailover_grup = \"x\""), true) {
            Err(e) => assert!(e.to_string().contains("failover_grup"), "{e}"),
            Ok(_) => panic!("a typo was accepted"),
        }
    }

    #[test]
    fn drift_rules_name_the_key_of_each_mistake() {
        let with =
            |section: &str| Plan::from_toml(&format!("{EXAMPLE}\n[drift]\n{section}\n"), "t");
        // (section, key, reason)
        let cases = [
            (
                "block = [\"jobs\"]",
                "drift.block[0]",
                "does not start with a kind",
            ),
            (
                "warn = [\"job.tags\", \"poool\"]",
                "drift.warn[1]",
                "does not start with a kind",
            ),
            (
                "ignore = [\"job..tags\"]",
                "drift.ignore[0]",
                "empty path segment",
            ),
            (
                "node_types = { \"i3.xlarge\" = \"\" }",
                "drift.node_types.\"i3.xlarge\"",
                "both",
            ),
            (
                "values = { \"s3://a/\" = \"s3://x/\", \"s3://b/\" = \"s3://x/\" }",
                "drift.values",
                "could not map it back",
            ),
            ("detail_seconds = 61", "drift.detail_seconds", "0–60"),
        ];
        for (section, want_key, why) in cases {
            match with(section) {
                Err(PlanError::Invalid { key, reason }) => {
                    assert_eq!(key, want_key, "{section}");
                    assert!(reason.contains(why), "{section}: {reason}");
                }
                other => panic!("{section}: {other:?}"),
            }
        }
        let ok = with("block = [\"warehouse\"]\nwarn = [\"job.tags\"]\nignore = [\"catalog\"]\nnode_types = { \"i3.xlarge\" = \"i3en.xlarge\" }").unwrap();
        assert_eq!(ok.drift.detail_seconds, 5);
        assert_eq!(
            ok.drift.ignore_for(ObjectKind::Catalog),
            vec![String::new()]
        );
        assert_eq!(
            ok.drift.node_types.get("i3.xlarge").map(String::as_str),
            Some("i3en.xlarge")
        );
        // A typo in a key of the section is refused by name.
        match with("blocks = []") {
            Err(e) => assert!(e.to_string().contains("blocks"), "{e}"),
            Ok(_) => panic!("a typo was accepted"),
        }
        // Without the section: the defaults.
        assert_eq!(
            Plan::from_toml(EXAMPLE, "t").unwrap().drift,
            DriftRules::default()
        );
    }
}
