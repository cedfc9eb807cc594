//! The names of the local stack: the account, region, buckets, topics, state machines and
//! secrets every part of it (the provisioning, the Lambda host, its IAM gate and runtime) agrees
//! on. A leaf module: it imports nothing of the local environment.

/// The account moto uses.
pub const ACCOUNT: &str = "123456789012";
/// Lifeboat deploys into the DR region.
pub const REGION: &str = "us-west-2";
/// The local ARC control panel (its routing controls are `<panel>/routingcontrol/<name>`).
pub const ARC_CONTROL_PANEL: &str =
    "arn:aws:route53-recovery-control::123456789012:controlpanel/lifeboatlocal";
/// The regions of the local ARC cluster's endpoints (`/arc/1`, `/arc/2`, ... on the host).
pub const ARC_ENDPOINT_REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "eu-west-1"];
/// Names of the provisioned resources (as the template's defaults).
pub const LEDGER_BUCKET: &str = "lifeboat-ledger";
/// SNS topic (broadcast: never carries approval links).
pub const TOPIC: &str = "lifeboat-events";
/// SNS topic of approval links (one subscription per approver, filtered).
pub const APPROVAL_TOPIC: &str = "lifeboat-approvals";
/// The plan's webhooks in the local stack: secret id, channel type, and the host mailbox
/// that receives its `POST`s.
pub const WEBHOOKS: &[(&str, &str, &str)] = &[
    ("lifeboat/notify/slack", "slack", "slack-webhook"),
    ("lifeboat/notify/teams", "teams", "teams-webhook"),
    ("lifeboat/notify/webhook", "webhook", "generic-webhook"),
];
/// The queue that stands in for EventBridge's Lambda target of the `Announce` rule (moto
/// delivers rule matches to SQS, not to Lambda): the local stack drains it into `notify`.
pub const ANNOUNCE_QUEUE: &str = "lifeboat-announce";
/// The forwarder rule's name (`infra/forwarder.yaml`'s default `RuleName`).
pub const FORWARDER_RULE: &str = "lifeboat-forward-health-events";
/// The local operator: an IAM user in moto whose STS identity the drill decides with.
pub const OPERATOR_USER: &str = "lifeboat-operator";
/// The local deployment's stack id (bound into approval links).
pub const STACK_ID: &str =
    "arn:aws:cloudformation:us-west-2:123456789012:stack/lifeboat/00000000-0000-0000-0000-000000000000";
/// The local stack's name (`AWS::StackName`): the state machines are `<name>-failover`, ...
pub const STACK_NAME: &str = "lifeboat";
/// Failover state machine.
pub const FAILOVER_MACHINE: &str = "lifeboat-failover";
/// Failback state machine.
pub const FAILBACK_MACHINE: &str = "lifeboat-failback";
/// Readiness drill state machine.
pub const READINESS_MACHINE: &str = "lifeboat-drill-readiness";
/// Fence watch state machine.
pub const FENCE_WATCH_MACHINE: &str = "lifeboat-fence-watch";
/// The quarterly full drill: the failover, then the failback, as child executions.
pub const FULL_DRILL_MACHINE: &str = "lifeboat-drill-full";
/// Every state machine file and the name it is created under.
pub const MACHINES: &[(&str, &str)] = &[
    ("failover.asl.json", FAILOVER_MACHINE),
    ("failback.asl.json", FAILBACK_MACHINE),
    ("drill-readiness.asl.json", READINESS_MACHINE),
    ("fence-watch.asl.json", FENCE_WATCH_MACHINE),
    ("drill-full.asl.json", FULL_DRILL_MACHINE),
];

/// The ARN a state machine gets in moto.
pub fn machine_arn(name: &str) -> String {
    format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
}
/// Secrets Manager id of the approval-link signing key.
pub const SIGNING_SECRET: &str = "lifeboat/approval-signing-key";

/// The emulated workspaces' ids (the emulator's defaults for each role).
pub const PRIMARY_WORKSPACE_ID: &str = "1234567890123456";
/// See [`PRIMARY_WORKSPACE_ID`].
pub const DR_WORKSPACE_ID: &str = "6543210987654321";

/// The local Databricks account (Managed DR's account API).
pub const DATABRICKS_ACCOUNT_ID: &str = "local-account";

/// The account admin service principal of the local account, and its secret's id.
pub const ACCOUNT_ADMIN: (&str, &str) = ("lifeboat-account-admin", "lifeboat/account-admin-secret");
/// Key of the plan in the ledger bucket.
pub const PLAN_KEY: &str = "plan/lifeboat.toml";
