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

use std::{collections::HashMap, sync::Arc, time::Instant};

use tokio::sync::Mutex;

use crate::{
    aws::{sdk_error_message, AwsClients},
    databricks::{ApiError, ClientConfig, Credentials, RateLimits, RetryPolicy, WorkspaceClient},
    ledger::{Ledger, LedgerError},
    plan::{Site, SiteAuth},
    secret::Secret,
};

/// Why a step failed. The variant name is the error name Step Functions sees (`errorType`),
/// so the state machine can `Catch` or `Retry` on it.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Another run holds the plan's lock.
    #[error("another run holds the lock of plan {plan}: {holder}")]
    LockHeld {
        /// Plan name.
        plan: String,
        /// Run id holding it.
        holder: String,
    },
    /// The input document is not what the step expects.
    #[error("invalid step input: {0}")]
    InvalidInput(String),
    /// A precondition of the step does not hold (e.g. failback without a failover).
    #[error("refused: {0}")]
    Refused(String),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A Databricks call failed for good.
    #[error("databricks: {0}")]
    Databricks(#[from] ApiError),
    /// An AWS call failed.
    #[error("aws {service}: {message}")]
    Aws {
        /// Service name.
        service: &'static str,
        /// Secret-free message.
        message: String,
    },
    /// A secret could not be resolved (its id is named, never its value).
    #[error("secret {secret_id}: {message}")]
    Secret {
        /// Secrets Manager id.
        secret_id: String,
        /// What went wrong.
        message: String,
    },
    /// The Managed DR failover this run asked for ended `FAILOVER_FAILED`.
    #[error("managed DR: {0}")]
    FailoverGroupFailed(String),
}

impl StepError {
    /// The error name Step Functions matches on.
    pub fn name(&self) -> &'static str {
        match self {
            StepError::LockHeld { .. } => "LockHeld",
            StepError::InvalidInput(_) => "InvalidInput",
            StepError::Refused(_) => "Refused",
            StepError::Ledger(_) => "LedgerUnavailable",
            StepError::Databricks(e) if e.kind.is_transient() => "WorkspaceUnavailable",
            StepError::Databricks(_) => "WorkspaceError",
            StepError::Aws { .. } => "AwsError",
            StepError::Secret { .. } => "SecretUnavailable",
            StepError::FailoverGroupFailed(_) => "FailoverGroupFailed",
        }
    }

    /// Wraps an AWS SDK error.
    pub fn aws<E, R>(service: &'static str, e: &aws_sdk_s3::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
    {
        StepError::Aws {
            service,
            message: sdk_error_message(e),
        }
    }
}

/// Deployment settings a Lambda reads from its environment.
#[derive(Debug, Clone, Default)]
pub struct DeployConfig {
    /// Ledger bucket (DR region).
    pub ledger_bucket: String,
    /// SNS topic for approvals and notifications.
    pub topic_arn: Option<String>,
    /// Failover state machine (for health-ingest).
    pub failover_state_machine_arn: Option<String>,
    /// Key of the plan in the ledger bucket (for health-ingest).
    pub plan_key: String,
    /// Base URL of the approval callback API (links in approval mails).
    pub approval_base_url: Option<String>,
    /// Secrets Manager id of the key that signs approval links.
    pub approval_secret_id: Option<String>,
    /// SNS topic that carries approval links, one message per approver (each subscription
    /// filtered on the `approver` attribute); never the broadcast topic.
    pub approval_topic_arn: Option<String>,
    /// This deployment (`AWS::StackId`): bound into every approval link.
    pub stack_id: String,
    /// Readiness drill state machine (scheduled drills).
    pub readiness_state_machine_arn: Option<String>,
    /// Full drill state machine (scheduled drills).
    pub full_drill_state_machine_arn: Option<String>,
    /// Fence watch state machine (started by a run whose fence loop gave up).
    pub fence_watch_state_machine_arn: Option<String>,
}

impl DeployConfig {
    /// Reads the template's variables: `LEDGER_BUCKET`, `PLAN_KEY` and `STACK_ID` (required),
    /// and the per-function ones (`TOPIC_ARN`, `APPROVAL_*`, the state machine ARNs).
    pub fn from_env() -> Result<Self, StepError> {
        // The template's Globals set these for every function: a missing one is a broken
        // deployment, refused at start (init error) rather than guessed.
        let required = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    StepError::InvalidInput(format!("environment variable {name} is not set"))
                })
        };
        let ledger_bucket = required("LEDGER_BUCKET")?;
        let plan_key = required("PLAN_KEY")?;
        let stack_id = required("STACK_ID")?;
        Ok(Self {
            ledger_bucket,
            topic_arn: std::env::var("TOPIC_ARN").ok().filter(|s| !s.is_empty()),
            failover_state_machine_arn: std::env::var("FAILOVER_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            plan_key,
            approval_base_url: std::env::var("APPROVAL_BASE_URL")
                .ok()
                .filter(|s| !s.is_empty()),
            approval_secret_id: std::env::var("APPROVAL_SIGNING_SECRET_ID")
                .ok()
                .filter(|s| !s.is_empty()),
            approval_topic_arn: std::env::var("APPROVAL_TOPIC_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            stack_id,
            readiness_state_machine_arn: std::env::var("READINESS_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            full_drill_state_machine_arn: std::env::var("FULL_DRILL_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
            fence_watch_state_machine_arn: std::env::var("FENCE_WATCH_STATE_MACHINE_ARN")
                .ok()
                .filter(|s| !s.is_empty()),
        })
    }
}

/// Reads a string secret from Secrets Manager; errors name the secret id, never its value.
pub async fn read_secret(
    secrets: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Secret, StepError> {
    let out = secrets
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| StepError::Secret {
            secret_id: secret_id.to_string(),
            message: sdk_error_message(&e),
        })?;
    out.secret_string()
        .map(Secret::new)
        .ok_or_else(|| StepError::Secret {
            secret_id: secret_id.to_string(),
            message: "has no string value".into(),
        })
}

/// Builds (and caches) workspace clients from a site's secret reference.
#[derive(Debug, Clone)]
pub struct Workspaces {
    secrets: aws_sdk_secretsmanager::Client,
    cache: Arc<Mutex<HashMap<String, WorkspaceClient>>>,
    /// Client-side limits (tests and benchmarks may change them).
    pub rate_limits: RateLimits,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl Workspaces {
    /// A resolver backed by Secrets Manager.
    pub fn new(secrets: aws_sdk_secretsmanager::Client) -> Self {
        Self {
            secrets,
            cache: Arc::new(Mutex::new(HashMap::new())),
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
        }
    }

    async fn secret(&self, secret_id: &str) -> Result<Secret, StepError> {
        read_secret(&self.secrets, secret_id).await
    }

    /// The credentials a plan's auth reference stands for (the secret read now).
    async fn credentials(&self, auth: &SiteAuth) -> Result<Credentials, StepError> {
        Ok(match auth {
            SiteAuth::Pat { secret_id } => Credentials::Pat(self.secret(secret_id).await?),
            SiteAuth::Oauth {
                client_id,
                secret_id,
            } => Credentials::OAuthM2m {
                client_id: client_id.clone(),
                client_secret: self.secret(secret_id).await?,
            },
        })
    }

    /// The client of a site (credentials resolved once per container).
    pub async fn client(&self, site: &Site) -> Result<WorkspaceClient, StepError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(&site.workspace_url) {
            return Ok(c.clone());
        }
        let credentials = self.credentials(&site.auth).await?;
        let mut config = ClientConfig::new(site.workspace_url.clone(), credentials);
        config.rate_limits = self.rate_limits.clone();
        config.retry = self.retry.clone();
        let client = WorkspaceClient::new(config)?;
        cache.insert(site.workspace_url.clone(), client.clone());
        Ok(client)
    }

    /// The account-host client of Managed DR (an account admin's OAuth M2M; the plan refuses a
    /// PAT there).
    pub async fn account(
        &self,
        managed: &crate::plan::ManagedDr,
    ) -> Result<crate::databricks::disaster_recovery::AccountClient, StepError> {
        let cache_key = format!("account:{}/{}", managed.account_url, managed.account_id);
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.get(&cache_key) {
            return Ok(c.clone());
        }
        let credentials = self.credentials(&managed.auth).await?;
        let mut config = crate::databricks::disaster_recovery::account_config(
            &managed.account_url,
            &managed.account_id,
            credentials,
        );
        config.retry = self.retry.clone();
        let client = WorkspaceClient::new(config)?;
        cache.insert(cache_key, client.clone());
        Ok(client)
    }
}

/// What every handler gets: AWS clients, the ledger, workspace clients and settings.
#[derive(Debug, Clone)]
pub struct Deps {
    /// AWS SDK clients.
    pub aws: AwsClients,
    /// The ledger bucket.
    pub ledger: Ledger,
    /// Deployment settings.
    pub config: DeployConfig,
    /// Workspace client factory.
    pub workspaces: Workspaces,
    /// The approval-link signing keys, read once per container and kept for
    /// [`SIGNING_KEY_TTL`] (a rotation reaches every container within that time).
    pub signing_keys: Arc<std::sync::Mutex<Option<(Instant, crate::approval_link::SigningKeys)>>>,
    /// The AWS Health API (the poll path of detection); `None` where the deployment does not
    /// poll it.
    pub health: Option<HealthPort>,
}

/// The Health API behind its port: the SDK adapter in AWS, a stand-in where nothing can run it.
#[derive(Clone)]
pub struct HealthPort(pub Arc<dyn crate::health_api::HealthApi>);

impl std::fmt::Debug for HealthPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HealthPort")
    }
}

impl std::ops::Deref for HealthPort {
    type Target = dyn crate::health_api::HealthApi;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

/// How long a container keeps the signing keys before reading Secrets Manager again.
pub const SIGNING_KEY_TTL: std::time::Duration = std::time::Duration::from_secs(300);

impl Deps {
    /// Wires everything from AWS clients and settings.
    pub fn new(aws: AwsClients, config: DeployConfig) -> Self {
        Self {
            ledger: Ledger::new((*aws.s3).clone(), config.ledger_bucket.clone()),
            workspaces: Workspaces::new((*aws.secrets).clone()),
            aws,
            config,
            signing_keys: Arc::default(),
            health: None,
        }
    }

    /// The approval-link signing keys of this deployment (cached, see [`SIGNING_KEY_TTL`]);
    /// `Ok(None)` when the deployment has no approval links.
    pub async fn signing_keys(
        &self,
    ) -> Result<Option<crate::approval_link::SigningKeys>, StepError> {
        let Some(secret_id) = &self.config.approval_secret_id else {
            return Ok(None);
        };
        let cached = self
            .lock_signing_keys()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < SIGNING_KEY_TTL)
            .map(|(_, keys)| keys.clone());
        if cached.is_some() {
            return Ok(cached);
        }
        let secret = read_secret(&self.aws.secrets, secret_id).await?;
        let keys =
            crate::approval_link::SigningKeys::parse(&secret).map_err(|e| StepError::Secret {
                secret_id: secret_id.clone(),
                message: e.to_string(),
            })?;
        *self.lock_signing_keys() = Some((Instant::now(), keys.clone()));
        Ok(Some(keys))
    }

    /// Forgets the cached signing keys (after a rotation, in tests and drills).
    pub fn forget_signing_keys(&self) {
        *self.lock_signing_keys() = None;
    }

    fn lock_signing_keys(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(Instant, crate::approval_link::SigningKeys)>> {
        self.signing_keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// From the Lambda environment.
    pub async fn from_env() -> Result<Self, StepError> {
        let config = DeployConfig::from_env()?;
        Ok(Self::new(AwsClients::from_env().await, config))
    }

    /// Adds the AWS Health API port when the deployment polls it (`HEALTH_API_POLL=true`).
    /// Only `health-ingest` calls this, so no other binary links the Health SDK.
    pub async fn with_health_api_from_env(mut self) -> Self {
        if std::env::var("HEALTH_API_POLL").as_deref() == Ok("true") {
            self.health = Some(HealthPort(Arc::new(
                crate::health_api::SdkHealthApi::from_env().await,
            )));
        }
        self
    }
}

/// The deployment's plan (`PLAN_KEY` in the ledger), validated: the steps that run outside an
/// execution (ingest, probes, the canary writer) read it here.
pub async fn load_plan(deps: &Deps) -> Result<crate::plan::Plan, StepError> {
    let text = deps
        .ledger
        .get_raw(&deps.config.plan_key)
        .await?
        .ok_or_else(|| {
            StepError::Refused(format!(
                "no plan at s3://{}/{}",
                deps.ledger.bucket(),
                deps.config.plan_key
            ))
        })?;
    let text = String::from_utf8(text)
        .map_err(|e| StepError::InvalidInput(format!("plan is not UTF-8: {e}")))?;
    crate::plan::Plan::from_toml(&text, &deps.config.plan_key)
        .map_err(|e| StepError::InvalidInput(e.to_string()))
}

/// When a step must have returned by: the Lambda deadline less a safety margin.
pub fn budget(deadline: Instant, margin: std::time::Duration) -> Instant {
    deadline.checked_sub(margin).unwrap_or(deadline)
}

/// Runs a step and writes its [`crate::report::StepRecord`] to the ledger before returning,
/// whether it succeeded or not — the ledger is the audit trail and the report's timeline.
pub async fn recorded<T, F>(
    deps: &Deps,
    run: &crate::run::RunContext,
    step: &str,
    work: F,
) -> Result<T, StepError>
where
    T: serde::Serialize,
    F: std::future::Future<Output = Result<T, StepError>>,
{
    let started_at = chrono::Utc::now();
    let result = work.await;
    let ended_at = chrono::Utc::now();
    let summary = match &result {
        Ok(v) => serde_json::to_string(v)
            .map(|s| s.chars().take(300).collect())
            .unwrap_or_default(),
        Err(e) => format!("{}: {e}", e.name()),
    };
    let record = crate::report::StepRecord {
        step: step.to_string(),
        started_at,
        ended_at,
        ok: result.is_ok(),
        summary,
    };
    let key = format!(
        "{}/steps/{}-{}.json",
        run.prefix(),
        started_at.format("%Y%m%dT%H%M%S%.6fZ"),
        step
    );
    if let Err(e) = deps.ledger.put(&key, &record).await {
        tracing::error!(error = %e, "could not record step outcome");
        if result.is_ok() {
            return Err(e.into());
        }
    }
    result
}

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

/// An SSM parameter's value (`None`: absent), as the switch and the client check read it.
pub(crate) async fn read_parameter(deps: &Deps, name: &str) -> Result<Option<String>, StepError> {
    match deps.aws.ssm.get_parameter().name(name).send().await {
        Ok(out) => Ok(out.parameter().and_then(|p| p.value().map(str::to_string))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StepError::aws("ssm", &e)),
    }
}

/// The timeline name of `validate-workspace` run through the clients after the switch.
pub const VERIFY_CLIENTS: &str = "verify-clients";

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
