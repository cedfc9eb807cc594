//! The DR plan (`lifeboat.toml`): one declarative file describing both sites and everything a
//! failover does. Parsing is strict — unknown keys, wrong types and contradictions are refused
//! before anything runs, with an error naming the key — because a half-executed plan with a
//! typo is worse than none.
//!
//! Secrets never live here: sites name a Secrets Manager secret id, resolved at run time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

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
    /// DNS record and parameters clients read.
    #[serde(default)]
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
}

/// Objectives the report measures against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery time objective, minutes.
    pub rto_minutes: u32,
    /// Default recovery point objective, minutes (per bucket/table overrides allowed).
    pub rpo_minutes: u32,
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
    /// Status.io JSON of the Databricks status page (`https://api.status.io/1.0/status/<page id>`).
    #[serde(default)]
    pub status_page_url: Option<String>,
    /// Name of the status page's container (region) for the primary, e.g. `us-east-1`;
    /// matched as a case-insensitive substring. Defaults to the primary's region.
    #[serde(default)]
    pub status_container: Option<String>,
    /// Consecutive failed deep probes of the primary (SCIM Me, clusters list) that declare an
    /// incident; 0 turns deep probes off.
    #[serde(default = "default_probe_failures")]
    pub probe_failures_to_declare: u32,
}

fn default_probe_failures() -> u32 {
    3
}

impl Default for Monitoring {
    fn default() -> Self {
        Self {
            services: default_services(),
            status_page_url: None,
            status_container: None,
            probe_failures_to_declare: default_probe_failures(),
        }
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
    /// SSM parameters that hold the workspace URL for REST/JDBC/ODBC clients.
    #[serde(default)]
    pub ssm_parameters: Vec<String>,
    /// The alias full drills switch instead of the production one (in the same zone).
    #[serde(default)]
    pub drill_record_name: Option<String>,
    /// Full drills switch the production alias and parameters (a real-world rehearsal).
    #[serde(default)]
    pub drill_uses_production: bool,
}

fn default_ttl() -> i64 {
    60
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
        for (key, site) in [
            ("sites.primary", &self.sites.primary),
            ("sites.dr", &self.sites.dr),
        ] {
            let url = url::Url::parse(&site.workspace_url)
                .map_err(|e| invalid(format!("{key}.workspace_url"), e.to_string()))?;
            if !matches!(url.scheme(), "https" | "http") {
                return Err(invalid(
                    format!("{key}.workspace_url"),
                    "must be an http(s) URL",
                ));
            }
            if site.region.trim().is_empty() {
                return Err(invalid(format!("{key}.region"), "must not be empty"));
            }
        }
        if self.sites.primary.workspace_url == self.sites.dr.workspace_url {
            return Err(invalid(
                "sites.dr.workspace_url",
                "is the same workspace as sites.primary: a DR site must be a different workspace",
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
        if self.approval.required_approvals == 0 || self.approval.required_approvals > 5 {
            return Err(invalid("approval.required_approvals", "must be 1–5"));
        }
        if self.approval.required_approvals as usize > self.approval.approvers.len().max(1)
            && !self.approval.approvers.is_empty()
        {
            return Err(invalid(
                "approval.required_approvals",
                "is more than the number of approvers listed",
            ));
        }
        if self.approval.timeout_seconds == 0 {
            return Err(invalid(
                "approval.timeout_seconds",
                "must be greater than 0",
            ));
        }
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
}
