//! The operator's verified identity: the ARN STS `GetCallerIdentity` returns for the
//! credentials the CLI runs with — not an environment variable anyone can set. Approvals,
//! rejections, overrides and interventions are recorded under it.

use anyhow::{Context, Result};

/// The caller's ARN, from STS.
pub async fn caller_arn(sts: &aws_sdk_sts::Client) -> Result<String> {
    let out = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| anyhow::anyhow!(lifeboat_core::aws::sdk_error_message(&e)))
        .context("asking STS who the CLI runs as (GetCallerIdentity); are AWS credentials set?")?;
    out.arn()
        .map(str::to_string)
        .context("STS GetCallerIdentity returned no ARN")
}

/// The caller's ARN with the CLI's AWS configuration (credentials chain, region, endpoint).
pub async fn from_env() -> Result<String> {
    let config = lifeboat_core::aws::config_loader().load().await;
    caller_arn(&aws_sdk_sts::Client::new(&config)).await
}
