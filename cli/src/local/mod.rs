//! The local environment: everything a drill needs on one machine, on loopback only — two
//! emulated workspaces (primary, DR), moto executing the real state machine JSON, and the
//! Lambda host serving our real handlers — provisioned the way `infra/template.yaml` would.

pub mod delta_tables;
pub mod gate;
pub mod host;
pub mod moto;
pub mod names;
pub mod runtime;
pub mod template;
pub mod up;

use std::{path::PathBuf, time::Duration};

use anyhow::{bail, Context, Result};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_s3::{
    primitives::ByteStream,
    types::{
        BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, Destination,
        ReplicationConfiguration, ReplicationRule, ReplicationRuleFilter, ReplicationRuleStatus,
        VersioningConfiguration,
    },
};
use databricks_emulator::{
    AccountConfig, EmulatorConfig, Fixture, Role, RunningAccount, RunningEmulator,
};
use lifeboat_core::{
    aws::AwsClients,
    dispatch::Step,
    kernel::{DeployConfig, Deps},
    plan::{Plan, SiteAuth, SiteRole},
    replication::Canary,
};
use tokio::net::TcpListener;

use self::{host::LambdaHost, moto::Moto};

pub use names::*;

/// Knobs of the local environment.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Fixture of both workspaces (the DR one is the dormant twin).
    pub fixture: Fixture,
    /// Emulated lifecycle delay (cluster start, warehouse stop, ...).
    pub lifecycle_delay: Duration,
    /// How long a step may run in the host (the Lambda timeout).
    pub step_timeout: Duration,
    /// Client retry attempts (tests of outages lower it).
    pub client_max_attempts: u32,
    /// `Realistic`: clusters take minutes to start, tens of seconds to stop (emulated time).
    pub lifecycle_profile: databricks_emulator::LifecycleProfile,
    /// Emulated clock speed-up: realistic durations and cron schedules run this much faster.
    pub clock_speed: f64,
    /// The large fixture's DR twin carries its documented, seeded drift.
    pub dr_drift: bool,
    /// Multiplies every per-family rate limit, at the emulators and in the client alike (tests
    /// of the large fixture raise them; benchmarks keep the real ones, 1.0).
    pub rate_limit_scale: f64,
    /// Run the shipped artifacts: each function's real binary under the Lambda Runtime API,
    /// with the template's environment and its role's policy enforced on every AWS call
    /// (false: the handlers run in-process, for fast tests that tune client knobs).
    pub binaries: bool,
    /// The template binaries mode reads (default `infra/template.yaml`; tests pass an edited
    /// copy to prove a missing permission or variable fails).
    pub template: Option<PathBuf>,
    /// Sweeps per fence watch execution (the template's `FenceWatchMaxSweeps`; tests lower it
    /// to see the watch continue as new).
    pub fence_watch_max_sweeps: u32,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            fixture: Fixture::Demo,
            lifecycle_delay: Duration::from_millis(300),
            step_timeout: Duration::from_secs(120),
            client_max_attempts: 3,
            lifecycle_profile: databricks_emulator::LifecycleProfile::Uniform,
            clock_speed: 1.0,
            dr_drift: true,
            rate_limit_scale: 1.0,
            binaries: false,
            template: None,
            fence_watch_max_sweeps: lifeboat_core::kernel::config::DEFAULT_SWEEPS_PER_EXECUTION,
        }
    }
}

/// The emulators' published limits, scaled.
fn scaled_limits(scale: f64) -> databricks_emulator::RateLimits {
    let mut l = databricks_emulator::RateLimits::default();
    for rate in [
        &mut l.jobs_update,
        &mut l.jobs_read,
        &mut l.runs_read,
        &mut l.runs_write,
        &mut l.clusters,
        &mut l.pools,
        &mut l.warehouses,
        &mut l.pipelines,
        &mut l.permissions,
        &mut l.scim,
        &mut l.sql,
        &mut l.other,
    ] {
        *rate *= scale;
    }
    l
}

/// The running local environment. Dropping it stops everything.
pub struct LocalEnv {
    /// Repository root.
    pub root: PathBuf,
    /// moto.
    pub moto: Moto,
    /// The Lambda host.
    pub host: LambdaHost,
    /// Primary workspace emulator.
    pub primary: RunningEmulator,
    /// DR workspace emulator.
    pub dr: RunningEmulator,
    /// The Databricks account API (Managed DR failover groups, stable URLs).
    pub account: RunningAccount,
    /// The account admin's OAuth secret (generated).
    pub account_admin_secret: String,
    /// The provisioned plan's regions (primary, DR): a site's regional outage is its region's
    /// in the account API too.
    regions: std::sync::Mutex<Option<(String, String)>>,
    /// AWS clients on moto.
    pub aws: AwsClients,
    /// The same dependencies the handlers get (for CLI-side calls such as decisions).
    pub deps: Deps,
    /// The primary's PAT (generated).
    pub primary_token: String,
    /// The DR service principal's OAuth secret (generated).
    pub dr_oauth_secret: String,
    /// The local operator's verified identity (STS) and client.
    pub operator: Operator,
    /// Whether the functions run as their real binaries (see [`LocalOptions::binaries`]).
    pub binaries: bool,
    template: PathBuf,
    http: reqwest::Client,
    announcer: std::sync::Mutex<Option<Announcer>>,
}

/// The task that plays EventBridge's delivery of the `Announce` rule to `notify`; stops when
/// dropped.
struct Announcer(tokio::task::JoinHandle<()>);

impl Drop for Announcer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An IAM user in moto with its own credentials: who a CLI call runs as.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The ARN STS reports for it.
    pub arn: String,
    /// STS with its credentials (for `GetCallerIdentity`).
    pub sts: aws_sdk_sts::Client,
    /// Its access key id (moto's; never a real credential).
    pub access_key_id: String,
    /// Its secret key (moto's; never a real credential).
    pub secret_access_key: String,
}

/// The cargo target directory (`CARGO_TARGET_DIR`, else the repository's `target/`).
pub fn target_dir(root: &std::path::Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        _ => root.join("target"),
    }
}

/// Where the function binaries are built (debug profile).
pub fn function_bin_dir(root: &std::path::Path) -> PathBuf {
    target_dir(root).join("debug")
}

/// Builds every function binary (`cargo build` of the function crates, debug profile; a no-op
/// when they are fresh) — what binaries mode runs. Not callable from inside `cargo test`, which
/// holds the build lock: `scripts/test.sh` builds them first.
pub fn build_functions(root: &std::path::Path) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(root).arg("build").arg("--quiet");
    for step in Step::ALL {
        cmd.arg("-p").arg(step.name());
    }
    let status = cmd
        .status()
        .context("running cargo build for the function binaries")?;
    if !status.success() {
        bail!("cargo build of the function binaries failed ({status})");
    }
    Ok(())
}

/// A fresh, random test credential (never a real one).
fn generated_secret(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl LocalEnv {
    /// Starts the emulators, the Lambda host and moto.
    pub async fn start(options: LocalOptions) -> Result<LocalEnv> {
        let root = moto::repo_root()?;
        let server = moto::ensure_moto(&root).await?;
        let primary_token = generated_secret("local-pat-");
        let dr_token = generated_secret("local-pat-");
        let dr_oauth_secret = generated_secret("local-oauth-");
        let primary = databricks_emulator::start(
            EmulatorConfig::new(options.fixture, primary_token.clone())
                .role(Role::Primary)
                .lifecycle_delay(options.lifecycle_delay)
                .lifecycle_profile(options.lifecycle_profile)
                .clock_speed(options.clock_speed)
                .rate_limits(scaled_limits(options.rate_limit_scale)),
        )
        .await
        .context("starting the primary workspace emulator")?;
        let dr = databricks_emulator::start(
            EmulatorConfig::new(options.fixture, dr_token)
                .role(Role::Dr)
                .lifecycle_delay(options.lifecycle_delay)
                .lifecycle_profile(options.lifecycle_profile)
                .clock_speed(options.clock_speed)
                .rate_limits(scaled_limits(options.rate_limit_scale))
                .dr_drift(options.dr_drift)
                .oauth("lifeboat-sp", dr_oauth_secret.clone()),
        )
        .await
        .context("starting the DR workspace emulator")?;
        let account_admin_secret = generated_secret("local-account-");
        // Failovers of a group take a few seconds here; minutes in Databricks.
        let account = databricks_emulator::serve_account(
            AccountConfig::new(
                DATABRICKS_ACCOUNT_ID,
                ACCOUNT_ADMIN.0,
                account_admin_secret.clone(),
            )
            .failover_duration(options.lifecycle_delay.max(Duration::from_millis(500)) * 2),
            0,
        )
        .await
        .context("starting the Databricks account API")?;

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the Lambda host")?;
        let host_port = listener.local_addr()?.port();
        let moto_port = moto::free_port()?;
        let moto_url = format!("http://127.0.0.1:{moto_port}");
        let aws = AwsClients::for_endpoint(&moto_url, REGION).await;
        let config = DeployConfig {
            ledger_bucket: LEDGER_BUCKET.into(),
            topic_arn: Some(format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}")),
            failover_state_machine_arn: Some(machine_arn(FAILOVER_MACHINE)),
            plan_key: PLAN_KEY.into(),
            // The host plays API Gateway for the approval callback.
            approval_base_url: Some(format!("http://127.0.0.1:{host_port}")),
            approval_secret_id: Some(SIGNING_SECRET.into()),
            approval_topic_arn: Some(format!("arn:aws:sns:{REGION}:{ACCOUNT}:{APPROVAL_TOPIC}")),
            stack_id: STACK_ID.into(),
            readiness_state_machine_arn: Some(machine_arn(READINESS_MACHINE)),
            // Its tasks start the failover and failback as child executions (`.sync:2`): the
            // local stack runs them as AWS does (tests/moto/lifeboat_moto.py).
            full_drill_state_machine_arn: Some(machine_arn(FULL_DRILL_MACHINE)),
            fence_watch_state_machine_arn: Some(machine_arn(FENCE_WATCH_MACHINE)),
            fence_watch_max_sweeps: options.fence_watch_max_sweeps,
        };
        let mut deps = Deps::new(aws.clone(), config);
        deps.workspaces.retry.max_attempts = options.client_max_attempts;
        for rate in deps.workspaces.rate_limits.0.values_mut() {
            *rate *= options.rate_limit_scale;
        }
        let log_dir = target_dir(&root).join("lifeboat-local").join("logs");
        std::fs::create_dir_all(&log_dir)
            .with_context(|| format!("creating {}", log_dir.display()))?;
        let host = LambdaHost::start(
            listener,
            deps.clone(),
            moto_url.clone(),
            options.step_timeout,
            function_bin_dir(&root),
            log_dir,
        )?;
        let moto = Moto::start(&server, moto_port, host_port).await?;
        let operator = iam_user(&moto_url, OPERATOR_USER).await?;
        Ok(LocalEnv {
            binaries: options.binaries,
            template: options
                .template
                .clone()
                .unwrap_or_else(|| root.join("infra/template.yaml")),
            operator,
            root,
            moto,
            host,
            primary,
            dr,
            account,
            account_admin_secret,
            regions: std::sync::Mutex::new(None),
            aws,
            deps,
            primary_token,
            dr_oauth_secret,
            http: lifeboat_core::http::client(),
            announcer: std::sync::Mutex::new(None),
        })
    }

    /// Creates an IAM user in moto with an access key: another person at the CLI.
    pub async fn user(&self, name: &str) -> Result<Operator> {
        iam_user(&self.moto_url(), name).await
    }

    fn moto_url(&self) -> String {
        self.moto.url.clone()
    }

    /// Messages delivered to a local mailbox (an approver's address, or `broadcast`), as
    /// (subject, message), oldest first.
    pub fn inbox(&self, mailbox: &str) -> Vec<(String, String)> {
        self.host
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&mailbox_name(mailbox))
            .map(|msgs| {
                msgs.iter()
                    .map(|m| {
                        (
                            m["Subject"].as_str().unwrap_or_default().to_string(),
                            m["Message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Subscribes a local mailbox to a topic (an `http` subscription to the host), with an
    /// optional filter policy — as an e-mail subscription would be.
    pub async fn subscribe_mailbox(
        &self,
        topic: &str,
        mailbox: &str,
        filter_policy: Option<String>,
    ) -> Result<()> {
        let mut req = self
            .aws
            .sns
            .subscribe()
            .topic_arn(format!("arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"))
            .protocol("http")
            .endpoint(format!("{}/inbox/{}", self.host.url, mailbox_name(mailbox)))
            .return_subscription_arn(true);
        if let Some(p) = filter_policy {
            req = req.attributes("FilterPolicy", p);
        }
        req.send()
            .await
            .with_context(|| format!("subscribing mailbox {mailbox} to {topic}"))?;
        Ok(())
    }

    /// Rewrites a plan's sites to the local workspaces (URLs, secret ids, DNS targets).
    pub fn localize(&self, plan: &mut Plan) {
        plan.sites.primary.workspace_url = self.primary.url().to_string();
        plan.sites.primary.auth = SiteAuth::Pat {
            secret_id: "lifeboat/primary-token".into(),
        };
        plan.sites
            .primary
            .dns_target
            .get_or_insert_with(|| "primary.workspace.example.internal".into());
        plan.sites.dr.workspace_url = self.dr.url().to_string();
        plan.sites.dr.auth = SiteAuth::Oauth {
            client_id: "lifeboat-sp".into(),
            secret_id: "lifeboat/dr-oauth-secret".into(),
        };
        plan.sites
            .dr
            .dns_target
            .get_or_insert_with(|| "dr.workspace.example.internal".into());
        plan.sites.primary.workspace_id = Some(PRIMARY_WORKSPACE_ID.into());
        plan.sites.dr.workspace_id = Some(DR_WORKSPACE_ID.into());
        if let Some(m) = plan.managed_dr.as_mut() {
            m.account_url = self.account.url().to_string();
            m.account_id = DATABRICKS_ACCOUNT_ID.into();
            m.auth = SiteAuth::Oauth {
                client_id: ACCOUNT_ADMIN.0.into(),
                secret_id: ACCOUNT_ADMIN.1.into(),
            };
        }
        plan.notifications.webhook_secret_ids =
            WEBHOOKS.iter().map(|(id, _, _)| id.to_string()).collect();
        // The statically stable switch: three ARC cluster endpoints, played by the host.
        if let Some(dns) = plan.dns.as_mut() {
            if dns.switch == lifeboat_core::plan::SwitchMode::RoutingControl {
                let control = |name: &str| format!("{ARC_CONTROL_PANEL}/routingcontrol/{name}");
                dns.routing_control = Some(lifeboat_core::plan::RoutingControlPlan {
                    cluster_endpoints: ARC_ENDPOINT_REGIONS
                        .iter()
                        .enumerate()
                        .map(|(i, region)| lifeboat_core::plan::ClusterEndpoint {
                            url: format!("{}/arc/{}", self.host.url, i + 1),
                            region: region.to_string(),
                        })
                        .collect(),
                    control_arn: control("serve-primary"),
                    drill_control_arn: dns
                        .drill_record_name
                        .as_ref()
                        .map(|_| control("drill-serve-primary")),
                });
            }
        }
    }

    /// What a local webhook received (Slack, Teams, generic: see [`WEBHOOKS`]), in order.
    pub fn webhook_inbox(&self, channel: &str) -> Vec<serde_json::Value> {
        let Some((_, _, mailbox)) = WEBHOOKS.iter().find(|(_, kind, _)| *kind == channel) else {
            return Vec::new();
        };
        self.host
            .inbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(*mailbox)
            .cloned()
            .unwrap_or_default()
    }

    /// The `Announce` rule of the template (`source: lifeboat` → `notify`): moto delivers
    /// rule matches to SQS only, so the rule targets a queue that a task drains, in order,
    /// into `notify` through the host's Lambda API — as EventBridge invokes a Lambda target
    /// asynchronously.
    async fn start_announcer(&self) -> Result<()> {
        let sqs = aws_sdk_sqs::Client::new(&admin_config(&self.moto_url()).await);
        let queue_url = sqs
            .create_queue()
            .queue_name(ANNOUNCE_QUEUE)
            .send()
            .await
            .context("creating the announce queue")?
            .queue_url()
            .context("queue without URL")?
            .to_string();
        self.aws
            .events
            .put_rule()
            .name("lifeboat-announce")
            .event_pattern(r#"{"source": ["lifeboat"]}"#)
            .send()
            .await
            .context("creating the Announce rule")?;
        self.aws
            .events
            .put_targets()
            .rule("lifeboat-announce")
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("notify")
                    .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{ANNOUNCE_QUEUE}"))
                    .build()?,
            )
            .send()
            .await
            .context("targeting the Announce rule")?;
        let invoke_url = format!(
            "{}/2015-03-31/functions/lifeboat-notify/invocations",
            self.host.url
        );
        let http = self.http.clone();
        let task = tokio::spawn(async move {
            loop {
                let received = sqs
                    .receive_message()
                    .queue_url(&queue_url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send()
                    .await;
                let Ok(received) = received else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                for m in received.messages() {
                    let body = m.body().unwrap_or_default().to_string();
                    // EventBridge retries a failed asynchronous invocation; `notify` itself
                    // only fails on an event it cannot read, which a retry would not fix.
                    if let Err(e) = http.post(&invoke_url).body(body).send().await {
                        tracing::warn!(error = %e, "announcement not handed to notify");
                    }
                    if let Some(handle) = m.receipt_handle() {
                        let _ = sqs
                            .delete_message()
                            .queue_url(&queue_url)
                            .receipt_handle(handle)
                            .send()
                            .await;
                    }
                }
            }
        });
        *self
            .announcer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Announcer(task));
        Ok(())
    }

    /// Creates what the template would (ledger, topic, secrets, zone, parameters, state
    /// machine) plus the replicated buckets with fresh canaries, and stores the plan. The plan
    /// is localized first; its `dns.hosted_zone_id` becomes the created zone's.
    pub async fn provision(&self, plan: &mut Plan) -> Result<()> {
        self.localize(plan);
        let s3 = &self.aws.s3;
        let location = CreateBucketConfiguration::builder()
            .location_constraint(BucketLocationConstraint::from(REGION))
            .build();
        let mut buckets = vec![LEDGER_BUCKET.to_string()];
        for b in &plan.replication.buckets {
            buckets.push(b.source.clone());
            buckets.push(b.replica.clone());
        }
        for bucket in &buckets {
            s3.create_bucket()
                .bucket(bucket)
                .create_bucket_configuration(location.clone())
                .send()
                .await
                .with_context(|| format!("creating bucket {bucket}"))?;
            s3.put_bucket_versioning()
                .bucket(bucket)
                .versioning_configuration(
                    VersioningConfiguration::builder()
                        .status(BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .with_context(|| format!("versioning bucket {bucket}"))?;
        }
        let now = chrono::Utc::now();
        for b in &plan.replication.buckets {
            let rule = ReplicationRule::builder()
                .id("lifeboat-dr")
                .status(ReplicationRuleStatus::Enabled)
                .priority(1)
                .filter(ReplicationRuleFilter::builder().prefix("").build())
                .destination(
                    Destination::builder()
                        .bucket(format!("arn:aws:s3:::{}", b.replica))
                        .build()?,
                )
                .build()?;
            s3.put_bucket_replication()
                .bucket(&b.source)
                .replication_configuration(
                    ReplicationConfiguration::builder()
                        .role(format!("arn:aws:iam::{ACCOUNT}:role/s3-replication"))
                        .rules(rule)
                        .build()?,
                )
                .send()
                .await
                .with_context(|| format!("replication config of {}", b.source))?;
            // moto stores replication rules but does not replicate: write both sides, the
            // replica one minute behind, as a healthy replication would be.
            for (bucket, written_at) in [
                (&b.source, now),
                (&b.replica, now - chrono::Duration::seconds(60)),
            ] {
                s3.put_object()
                    .bucket(bucket)
                    .key(&b.canary_key)
                    .body(ByteStream::from(serde_json::to_vec(&Canary {
                        written_at,
                    })?))
                    .send()
                    .await
                    .with_context(|| format!("canary in {bucket}"))?;
            }
        }
        // The plan's critical Delta tables: six commits at the source (a checkpoint at 3), and
        // at the replica the same log with the last commit's data file still in flight — as
        // replication looks a minute behind a busy table.
        for table in &plan.replication.tables {
            let Ok(at) = table.locations(&plan.replication.buckets) else {
                continue; // the plan was validated; an unresolvable table is its finding
            };
            let synthetic = delta_tables::SyntheticTable {
                commits: 6,
                checkpoint_interval: 3,
                last_commit: now - chrono::Duration::seconds(30),
                interval: chrono::Duration::seconds(60),
                data_since: 0,
            };
            // Boxed: the writes' futures would otherwise inflate provisioning's own future,
            // which tests hold several of on one stack.
            Box::pin(synthetic.write(s3, &at.source, 5, &[]))
                .await
                .with_context(|| format!("Delta table {} at the source", table.name))?;
            Box::pin(synthetic.write(s3, &at.replica, 5, &[5]))
                .await
                .with_context(|| format!("Delta table {} at the replica", table.name))?;
        }
        // infra/forwarder.yaml, deployed in the primary region: its rule forwards AWS Health
        // events to the DR region's default bus (the readiness evaluation checks it is there).
        let primary_events = self.aws.events_in(&plan.sites.primary.region);
        primary_events
            .put_rule()
            .name(FORWARDER_RULE)
            .event_pattern(r#"{"source": ["aws.health"], "detail-type": ["AWS Health Event"]}"#)
            .send()
            .await
            .context("creating the forwarder rule")?;
        primary_events
            .put_targets()
            .rule(FORWARDER_RULE)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("lifeboat-dr-bus")
                    .arn(format!(
                        "arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"
                    ))
                    .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-forward"))
                    .build()?,
            )
            .send()
            .await
            .context("targeting the forwarder rule")?;
        let secrets = &self.aws.secrets;
        let signing_key = generated_secret("local-signing-");
        let mut secret_arns = std::collections::BTreeMap::new();
        let webhook_secrets: Vec<(&str, String)> = WEBHOOKS
            .iter()
            .map(|(id, kind, mailbox)| {
                let url = format!("{}/inbox/{mailbox}", self.host.url);
                (
                    *id,
                    serde_json::json!({"type": kind, "url": url}).to_string(),
                )
            })
            .collect();
        for (name, value) in [
            ("lifeboat/primary-token", &self.primary_token),
            ("lifeboat/dr-oauth-secret", &self.dr_oauth_secret),
            (ACCOUNT_ADMIN.1, &self.account_admin_secret),
            (SIGNING_SECRET, &signing_key),
        ]
        .into_iter()
        .chain(webhook_secrets.iter().map(|(id, v)| (*id, v)))
        {
            let created = secrets
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .with_context(|| format!("creating secret {name}"))?;
            secret_arns.insert(
                name.to_string(),
                created.arn().unwrap_or_default().to_string(),
            );
        }
        for topic in [TOPIC, APPROVAL_TOPIC] {
            self.aws
                .sns
                .create_topic()
                .name(topic)
                .send()
                .await
                .with_context(|| format!("creating the SNS topic {topic}"))?;
        }
        // As the template: each e-mail approver gets their own subscription, filtered to the
        // messages that carry their links; the broadcast topic has an unfiltered reader.
        self.subscribe_mailbox(TOPIC, "broadcast", None).await?;
        let approvers: Vec<String> = plan
            .approval
            .approvers
            .iter()
            .filter_map(|a| match lifeboat_core::identity::Identity::parse(a) {
                Ok(lifeboat_core::identity::Identity::Email(e)) => Some(e),
                _ => None,
            })
            .collect();
        for a in &approvers {
            self.subscribe_mailbox(
                APPROVAL_TOPIC,
                a,
                Some(serde_json::json!({ "approver": [a] }).to_string()),
            )
            .await?;
        }
        if plan.approval.approvers.is_empty() {
            let on_call = lifeboat_core::approval::ON_CALL;
            self.subscribe_mailbox(
                APPROVAL_TOPIC,
                on_call,
                Some(serde_json::json!({ "approver": [on_call] }).to_string()),
            )
            .await?;
        }
        // The local operator is the first e-mail approver at the CLI (as `approval.principals`
        // maps a person's IAM identity to their address).
        if let Some(first) = approvers.first() {
            let mapped = plan
                .approval
                .principals
                .values()
                .flatten()
                .any(|p| p == &self.operator.arn);
            if !mapped && !plan.approval.approvers.contains(&self.operator.arn) {
                plan.approval
                    .principals
                    .entry(first.clone())
                    .or_default()
                    .push(self.operator.arn.clone());
            }
        }
        if let Some(dns) = plan.dns.as_mut() {
            let zone_name = dns
                .record_name
                .split_once('.')
                .map(|(_, z)| z.to_string())
                .unwrap_or_else(|| dns.record_name.clone());
            let zone = self
                .aws
                .route53
                .create_hosted_zone()
                .name(&zone_name)
                .caller_reference(uuid::Uuid::new_v4().to_string())
                .send()
                .await
                .context("creating the hosted zone")?;
            let zone_id = zone
                .hosted_zone()
                .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
                .context("hosted zone without id")?;
            dns.hosted_zone_id = zone_id.clone();
            let record = ResourceRecordSet::builder()
                .name(format!("{}.", dns.record_name))
                .r#type(RrType::Cname)
                .ttl(dns.ttl)
                .resource_records(
                    ResourceRecord::builder()
                        .value(plan.sites.primary.cname_target())
                        .build()?,
                )
                .build()?;
            self.aws
                .route53
                .change_resource_record_sets()
                .hosted_zone_id(&zone_id)
                .change_batch(
                    ChangeBatch::builder()
                        .changes(
                            Change::builder()
                                .action(ChangeAction::Upsert)
                                .resource_record_set(record)
                                .build()?,
                        )
                        .build()?,
                )
                .send()
                .await
                .context("creating the workspace alias")?;
            // What clients read while the primary serves: its URL, its warehouses' paths.
            let primary = self
                .deps
                .workspaces
                .client(&plan.sites.primary)
                .await
                .context("the primary's client")?;
            let settings = lifeboat_core::clients::resolve(
                Some(&primary),
                &dns.all_client_settings(),
                &plan.sites.primary,
            )
            .await
            .context("resolving the client settings at the primary")?;
            for setting in settings {
                self.aws
                    .ssm
                    .put_parameter()
                    .name(&setting.parameter)
                    .value(&setting.value)
                    .r#type(aws_sdk_ssm::types::ParameterType::String)
                    .overwrite(true)
                    .send()
                    .await
                    .with_context(|| format!("creating parameter {}", setting.parameter))?;
            }
        }
        if let Some(dns) = plan.dns.as_ref() {
            if let Some(rc) = &dns.routing_control {
                // Set up as docs/deploying.md says: controls On, health checks, then the pairs.
                let records = std::iter::once((&dns.record_name, &rc.control_arn)).chain(
                    dns.drill_record_name
                        .iter()
                        .zip(rc.drill_control_arn.iter()),
                );
                for (record, control) in records {
                    self.host
                        .arc
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(
                            control.clone(),
                            (
                                control.rsplit('/').next().unwrap_or_default().to_string(),
                                "On".into(),
                            ),
                        );
                    let check =
                        lifeboat_core::switch::create_health_check(&self.aws.route53, control)
                            .await
                            .map_err(anyhow::Error::msg)
                            .context("creating the routing control's health check")?;
                    lifeboat_core::switch::install_failover_records(
                        &self.aws.route53,
                        &dns.hosted_zone_id,
                        record,
                        (
                            &plan.sites.primary.cname_target(),
                            &plan.sites.dr.cname_target(),
                        ),
                        &check,
                        dns.ttl,
                    )
                    .await
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("the failover records of {record}"))?;
                }
            }
        }
        plan.validate().context("the localized plan")?;
        let text = toml::to_string(&*plan).context("serialising the plan")?;
        self.deps
            .ledger
            .put_raw(PLAN_KEY, text.into_bytes(), "application/toml")
            .await?;
        for (file, name) in MACHINES {
            let created = self
                .aws
                .sfn
                .create_state_machine()
                .name(*name)
                .definition(self.definition(file)?)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-states"))
                .send()
                .await
                .with_context(|| format!("creating the state machine {name}"))?;
            if created.state_machine_arn() != machine_arn(name) {
                bail!(
                    "state machine ARN {} differs from the expected one",
                    created.state_machine_arn()
                );
            }
        }
        if self.binaries {
            self.install_functions(plan, &secret_arns).await?;
        }
        self.provision_managed_dr(plan).await?;
        self.start_announcer().await?;
        Ok(())
    }

    /// Binaries mode: reads every function's environment and policy from
    /// `infra/template.yaml` (resolved to this stack's resources), creates its role in moto
    /// with exactly that policy, assumes it, and hands the host the binary, the environment
    /// and the role's credentials. The only value the local stack substitutes is
    /// `APPROVAL_BASE_URL` (API Gateway is played by the host), and only where the template
    /// sets it.
    async fn install_functions(
        &self,
        plan: &Plan,
        secret_arns: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let mut values = runtime::base_values();
        let arn_of = |name: &str| secret_arns.get(name).cloned().unwrap_or_default();
        let mut data = Vec::new();
        for b in &plan.replication.buckets {
            for bucket in [&b.source, &b.replica] {
                data.push(format!("arn:aws:s3:::{bucket}"));
                data.push(format!("arn:aws:s3:::{bucket}/*"));
            }
        }
        let emails: Vec<String> = plan
            .approval
            .approvers
            .iter()
            .filter(|a| a.contains('@'))
            .map(|a| a.trim().to_lowercase())
            .collect();
        values
            .set(
                "WorkspaceSecretArns",
                serde_json::json!([
                    arn_of("lifeboat/primary-token"),
                    arn_of("lifeboat/dr-oauth-secret")
                ]),
            )
            .set("ApprovalSigningSecretArn", arn_of(SIGNING_SECRET))
            .set(
                "ManagedDrSecretArn",
                if plan.managed_dr.is_some() {
                    arn_of(ACCOUNT_ADMIN.1)
                } else {
                    String::new()
                },
            )
            .set(
                "WebhookSecretArns",
                serde_json::json!(WEBHOOKS
                    .iter()
                    .map(|(id, _, _)| arn_of(id))
                    .collect::<Vec<_>>()),
            )
            .set("DataBucketArns", serde_json::json!(data))
            .set(
                "HostedZoneId",
                plan.dns
                    .as_ref()
                    .map(|d| d.hosted_zone_id.clone())
                    .unwrap_or_else(|| "none".into()),
            )
            .set("ApproverEmails", serde_json::json!(emails))
            .set(
                "FenceWatchMaxSweeps",
                self.deps.config.fence_watch_max_sweeps.to_string(),
            );
        let specs = template::functions(&self.template, &values)?;
        let admin = admin_config(&self.moto_url()).await;
        let mut functions = Vec::new();
        for (_, mut spec) in specs {
            if let Some(url) = spec.environment.get_mut("APPROVAL_BASE_URL") {
                *url = self.host.url.clone();
            }
            let credentials = gate::function_role(&admin, &spec).await?;
            functions.push(runtime::Function { spec, credentials });
        }
        self.host
            .gate
            .install(&functions, secret_arns.values().cloned().collect());
        self.host.runtime.install(functions);
        Ok(())
    }

    /// A state machine definition with its `${...}` substitutions resolved as the template's
    /// `DefinitionSubstitutions` do.
    pub fn definition(&self, file: &str) -> Result<String> {
        let path = self.root.join("statemachine").join(file);
        let mut text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for step in Step::ALL {
            let pascal: String = step
                .name()
                .split('-')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            text = text.replace(
                &format!("${{{pascal}FunctionArn}}"),
                &format!(
                    "arn:aws:lambda:{REGION}:{ACCOUNT}:function:lifeboat-{}",
                    step.name()
                ),
            );
        }
        for (name, machine) in [
            ("Failover", FAILOVER_MACHINE),
            ("Failback", FAILBACK_MACHINE),
        ] {
            text = text.replace(
                &format!("${{{name}StateMachineArn}}"),
                &machine_arn(machine),
            );
        }
        if let Some(i) = text.find("${") {
            bail!(
                "{file}: unresolved substitution near {}",
                &text[i..text.len().min(i + 40)]
            );
        }
        Ok(text)
    }

    /// Invokes a function through the host's Lambda API (as EventBridge or the CLI would).
    pub async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        let resp = self
            .http
            .post(format!(
                "{}/2015-03-31/functions/lifeboat-{function}/invocations",
                self.host.url
            ))
            .json(payload)
            .send()
            .await
            .context("invoking through the Lambda host")?;
        let failed = resp.headers().contains_key("X-Amz-Function-Error");
        let body: serde_json::Value = resp
            .json()
            .await
            .context("decoding the invocation result")?;
        if failed {
            bail!(
                "{function} failed: {} {}",
                body["errorType"],
                body["errorMessage"]
            );
        }
        Ok(body)
    }

    /// A new container for `function`: in binaries mode its idle processes are retired (the
    /// next invocation starts cold, caches empty); in-process, the shared caches are emptied.
    pub fn new_container(&self, function: &str) {
        self.host.runtime.retire(function);
        self.deps.forget_signing_keys();
    }

    /// What the handlers logged: in binaries mode the function processes' output (JSON lines,
    /// `[function] ...`); in-process their logs go to this process's subscriber instead.
    pub fn function_output(&self) -> String {
        self.host.runtime.output().join("\n")
    }

    /// The emulator of a site.
    pub fn emulator(&self, site: SiteRole) -> &RunningEmulator {
        match site {
            SiteRole::Primary => &self.primary,
            SiteRole::Dr => &self.dr,
        }
    }

    /// GET an admin endpoint (`/__emulator/...`) of a site.
    pub async fn admin_get(&self, site: SiteRole, path: &str) -> Result<serde_json::Value> {
        let url = format!("{}/__emulator/{path}", self.emulator(site).url());
        Ok(self
            .http
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// POST an admin endpoint of a site.
    pub async fn admin_post(
        &self,
        site: SiteRole,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let url = format!("{}/__emulator/{path}", self.emulator(site).url());
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Switches a site's regional outage on or off.
    pub async fn outage(&self, site: SiteRole, enabled: bool) -> Result<()> {
        self.admin_post(site, "outage", serde_json::json!({"enabled": enabled}))
            .await
            .map(|_| ())
    }

    /// A whole regional outage at a site (API and scheduler down) or its end; the timeline
    /// records both, so the verdicts count the site as active nowhere in between.
    pub async fn region_outage(&self, site: SiteRole, down: bool) -> Result<()> {
        self.admin_post(
            site,
            "outage",
            serde_json::json!({"enabled": down, "region_down": down}),
        )
        .await?;
        let region = self
            .regions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .map(|(primary, dr)| match site {
                SiteRole::Primary => primary,
                SiteRole::Dr => dr,
            });
        if let Some(region) = region {
            self.account_admin(
                &format!("regions/{region}/outage"),
                serde_json::json!({ "down": down }),
            )
            .await?;
        }
        Ok(())
    }

    /// Stops everything.
    pub async fn stop(self) {
        self.moto.stop().await;
        self.primary.shutdown().await;
        self.dr.shutdown().await;
        self.account.shutdown().await;
    }

    /// Creates what an account admin sets up once for Managed DR: the workspaces' regions, the
    /// stable URL (on the primary) and the failover group over both sites, primary first.
    async fn provision_managed_dr(&self, plan: &Plan) -> Result<()> {
        *self
            .regions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((
            plan.sites.primary.region.clone(),
            plan.sites.dr.region.clone(),
        ));
        let Some(m) = &plan.managed_dr else {
            return Ok(());
        };
        for (id, site) in [
            (PRIMARY_WORKSPACE_ID, &plan.sites.primary),
            (DR_WORKSPACE_ID, &plan.sites.dr),
        ] {
            self.account_admin(
                "workspaces",
                serde_json::json!({"workspace_id": id, "region": site.region}),
            )
            .await?;
        }
        let token: serde_json::Value = self
            .http
            .post(format!(
                "{}/oidc/accounts/{DATABRICKS_ACCOUNT_ID}/v1/token",
                self.account.url()
            ))
            .basic_auth(ACCOUNT_ADMIN.0, Some(&self.account_admin_secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "all-apis")])
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = token["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let base = format!(
            "{}/api/disaster-recovery/v1/accounts/{DATABRICKS_ACCOUNT_ID}",
            self.account.url()
        );
        let mut stable_url_names = Vec::new();
        if let Some(id) = &m.stable_url {
            self.http
                .post(format!("{base}/stable-urls?stable_url_id={id}"))
                .bearer_auth(&token)
                .json(&serde_json::json!({"initial_workspace_id": PRIMARY_WORKSPACE_ID}))
                .send()
                .await?
                .error_for_status()
                .with_context(|| format!("creating the stable URL {id}"))?;
            stable_url_names.push(format!("accounts/{DATABRICKS_ACCOUNT_ID}/stable-urls/{id}"));
        }
        self.http
            .post(format!(
                "{base}/failover-groups?failover_group_id={}",
                m.failover_group
            ))
            .bearer_auth(&token)
            .json(&serde_json::json!({
                "initial_primary_region": plan.sites.primary.region,
                "regions": [plan.sites.primary.region, plan.sites.dr.region],
                "workspace_sets": [{
                    "name": plan.name,
                    "workspace_ids": [PRIMARY_WORKSPACE_ID, DR_WORKSPACE_ID],
                    "replicate_workspace_assets": true,
                    "stable_url_names": stable_url_names,
                }],
            }))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("creating the failover group {}", m.failover_group))?;
        Ok(())
    }

    /// POST an admin endpoint of the account API (`/__emulator/account/<path>`).
    pub async fn account_admin(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value> {
        let resp = self
            .http
            .post(format!("{}/__emulator/account/{path}", self.account.url()))
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(resp.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// The account API's requests so far (`method`, `path`, `status`, `body`).
    pub async fn account_requests(&self) -> Result<Vec<serde_json::Value>> {
        let v: serde_json::Value = self
            .http
            .get(format!(
                "{}/__emulator/account/requests",
                self.account.url()
            ))
            .send()
            .await?
            .json()
            .await?;
        Ok(v["requests"].as_array().cloned().unwrap_or_default())
    }
}

/// A mailbox's path segment (addresses hold `@` and `.`).
fn mailbox_name(mailbox: &str) -> String {
    mailbox
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// moto's administrator (its default credentials): what provisioning creates users and roles
/// with.
pub(crate) async fn admin_config(moto_url: &str) -> aws_config::SdkConfig {
    lifeboat_core::aws::config_loader()
        .endpoint_url(moto_url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "test", "test", None, None, "local",
        ))
        .load()
        .await
}

/// Creates an IAM user with an access key in moto and an STS client that runs as it.
async fn iam_user(moto_url: &str, name: &str) -> Result<Operator> {
    let iam = aws_sdk_iam::Client::new(&admin_config(moto_url).await);
    iam.create_user()
        .user_name(name)
        .send()
        .await
        .with_context(|| format!("creating IAM user {name}"))?;
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .with_context(|| format!("creating an access key for {name}"))?;
    let key = key.access_key().context("no access key")?;
    let config = lifeboat_core::aws::config_loader()
        .endpoint_url(moto_url)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            key.access_key_id(),
            key.secret_access_key(),
            None,
            None,
            "local-user",
        ))
        .load()
        .await;
    let sts = aws_sdk_sts::Client::new(&config);
    let arn = crate::identity::caller_arn(&sts).await?;
    Ok(Operator {
        arn,
        sts,
        access_key_id: key.access_key_id().to_string(),
        secret_access_key: key.secret_access_key().to_string(),
    })
}
