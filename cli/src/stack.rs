//! Where the operator commands act: a deployed Lifeboat stack (its CloudFormation outputs) or
//! the local one that `lifeboat local up` runs (its state file). Both give the same thing —
//! the ledger, the state machines, AWS clients and the caller's verified identity — so every
//! command behaves the same against either.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lifeboat_core::{
    aws::AwsClients,
    kernel::{DeployConfig, Deps},
    plan::Plan,
};
use serde::{Deserialize, Serialize};

/// A refusal the operator must act on (exit code 2: bad input, no such stack or run, a held
/// lock, a refused decision), as opposed to a failure; nothing was changed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(e: anyhow::Error) -> anyhow::Error {
    Refused(format!("{e:#}")).into()
}

/// The stack outputs the commands need (names as in `infra/template.yaml`'s `Outputs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Outputs {
    /// `LedgerBucketName`.
    pub ledger_bucket: String,
    /// `FailoverStateMachineArn`.
    pub failover_state_machine_arn: String,
    /// `FailbackStateMachineArn`.
    pub failback_state_machine_arn: String,
    /// `ReadinessStateMachineArn`.
    pub readiness_state_machine_arn: String,
    /// `PlanKey` (the template's parameter; default `plan/lifeboat.toml`).
    pub plan_key: String,
}

impl Outputs {
    /// From `DescribeStacks` outputs: each missing one is named.
    pub fn from_pairs(pairs: &[(String, String)], plan_key: Option<String>) -> Result<Outputs> {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .with_context(|| {
                    format!(
                        "the stack has no output `{k}`: is it a Lifeboat stack, fully deployed?"
                    )
                })
        };
        Ok(Outputs {
            ledger_bucket: get("LedgerBucketName")?,
            failover_state_machine_arn: get("FailoverStateMachineArn")?,
            failback_state_machine_arn: get("FailbackStateMachineArn")?,
            readiness_state_machine_arn: get("ReadinessStateMachineArn")?,
            plan_key: plan_key.unwrap_or_else(|| "plan/lifeboat.toml".into()),
        })
    }
}

/// What `lifeboat local up` writes so that other commands can reach the local stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalState {
    /// moto's endpoint.
    pub moto_url: String,
    /// Region of the local stack.
    pub region: String,
    /// The stack outputs.
    pub outputs: Outputs,
    /// The local operator's access key (an IAM user in moto; never a real credential).
    pub operator_access_key_id: String,
    /// Its secret key (moto's; never a real credential).
    pub operator_secret_access_key: String,
    /// Primary workspace emulator URL.
    pub primary_url: String,
    /// DR workspace emulator URL.
    pub dr_url: String,
    /// The Lambda host (approval links, mailboxes).
    pub host_url: String,
    /// Process id of `lifeboat local up`.
    pub pid: u32,
}

impl LocalState {
    /// Reads the state file `lifeboat local up` wrote.
    pub fn load(state_path: &Path) -> Result<LocalState> {
        let text = std::fs::read_to_string(state_path).with_context(|| {
            format!(
                "no local stack: {} is missing — start one with `lifeboat local up`",
                state_path.display()
            )
        })?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a local stack state", state_path.display()))
    }
}

/// Default location of the local state file.
pub fn default_state_path() -> PathBuf {
    PathBuf::from("target/lifeboat-local/state.json")
}

/// The stack a command acts on.
pub struct Stack {
    /// Ledger, AWS clients and state machine ARNs, as the handlers have them.
    pub deps: Deps,
    /// The outputs.
    pub outputs: Outputs,
    /// STS as the caller (for the verified identity).
    pub sts: aws_sdk_sts::Client,
    /// Set for the local stack.
    pub local: Option<LocalState>,
}

fn deploy_config(outputs: &Outputs) -> DeployConfig {
    DeployConfig {
        ledger_bucket: outputs.ledger_bucket.clone(),
        failover_state_machine_arn: Some(outputs.failover_state_machine_arn.clone()),
        readiness_state_machine_arn: Some(outputs.readiness_state_machine_arn.clone()),
        plan_key: outputs.plan_key.clone(),
        ..Default::default()
    }
}

impl Stack {
    /// The deployed stack `name`, from CloudFormation's outputs (credentials, region and
    /// endpoint from the usual AWS environment).
    pub async fn deployed(name: &str) -> Result<Stack> {
        let config = lifeboat_core::aws::config_loader().load().await;
        let cfn = aws_sdk_cloudformation::Client::new(&config);
        let out = cfn
            .describe_stacks()
            .stack_name(name)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!(lifeboat_core::aws::sdk_error_message(&e)))
            .with_context(|| {
                format!("reading stack `{name}` (CloudFormation DescribeStacks): does it exist in this account and region, and are AWS credentials set?")
            })?;
        let stack = out
            .stacks()
            .first()
            .with_context(|| format!("stack `{name}` not found"))?;
        let pairs: Vec<(String, String)> = stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect();
        let plan_key = stack
            .parameters()
            .iter()
            .find(|p| p.parameter_key() == Some("PlanKey"))
            .and_then(|p| p.parameter_value().map(str::to_string));
        let outputs =
            Outputs::from_pairs(&pairs, plan_key).with_context(|| format!("stack `{name}`"))?;
        let aws = AwsClients::from_env().await;
        Ok(Stack {
            deps: Deps::new(aws, deploy_config(&outputs)),
            outputs,
            sts: aws_sdk_sts::Client::new(&config),
            local: None,
        })
    }

    /// The local stack of `lifeboat local up`, from its state file.
    pub async fn local(state_path: &Path) -> Result<Stack> {
        let state = LocalState::load(state_path)?;
        let aws = AwsClients::for_endpoint(&state.moto_url, &state.region).await;
        let operator = lifeboat_core::aws::config_loader()
            .endpoint_url(&state.moto_url)
            .region(aws_config::Region::new(state.region.clone()))
            .credentials_provider(aws_sdk_sts::config::Credentials::new(
                state.operator_access_key_id.clone(),
                state.operator_secret_access_key.clone(),
                None,
                None,
                "lifeboat-local",
            ))
            .load()
            .await;
        let mut deps = Deps::new(aws, deploy_config(&state.outputs));
        deps.config.approval_base_url = Some(state.host_url.clone());
        Ok(Stack {
            deps,
            outputs: state.outputs.clone(),
            sts: aws_sdk_sts::Client::new(&operator),
            local: Some(state),
        })
    }

    /// The stack a command names: `--local` (the state file), else `--stack NAME`.
    pub async fn resolve(local: bool, state: Option<&Path>, stack: &str) -> Result<Stack> {
        if local {
            let path = state
                .map(Path::to_path_buf)
                .unwrap_or_else(default_state_path);
            Stack::local(&path).await.map_err(refused)
        } else {
            Stack::deployed(stack).await.map_err(refused)
        }
    }

    /// The plan the stack runs with (the ledger's copy), validated.
    pub async fn plan(&self) -> Result<Plan> {
        self.read_plan().await.map_err(refused)
    }

    async fn read_plan(&self) -> Result<Plan> {
        let key = &self.outputs.plan_key;
        let Some(bytes) = self.deps.ledger.get_raw(key).await? else {
            bail!(
                "no plan at s3://{}/{key}: upload it (`aws s3 cp lifeboat.toml s3://{}/{key}`)",
                self.outputs.ledger_bucket,
                self.outputs.ledger_bucket
            );
        };
        let text = String::from_utf8(bytes).context("the plan in the ledger is not UTF-8")?;
        Plan::from_toml(&text, &format!("s3://{}/{key}", self.outputs.ledger_bucket))
            .context("the plan in the ledger is not valid; fix it and upload it again")
    }

    /// The caller's verified identity (STS).
    pub async fn caller(&self) -> Result<String> {
        crate::identity::caller_arn(&self.sts)
            .await
            .map_err(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_name_what_is_missing() {
        let pairs: Vec<(String, String)> = [
            ("LedgerBucketName", "b"),
            ("FailoverStateMachineArn", "f"),
            ("FailbackStateMachineArn", "fb"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let e = Outputs::from_pairs(&pairs, None).unwrap_err().to_string();
        assert!(e.contains("ReadinessStateMachineArn"), "{e}");
        let mut all = pairs.clone();
        all.push(("ReadinessStateMachineArn".into(), "r".into()));
        let o = Outputs::from_pairs(&all, Some("plan/x.toml".into())).unwrap();
        assert_eq!(
            (o.ledger_bucket.as_str(), o.plan_key.as_str()),
            ("b", "plan/x.toml")
        );
    }
}
