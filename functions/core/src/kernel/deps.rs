//! `Deps`: what every handler gets — AWS clients, the ledger, workspace clients, settings — and
//! the few reads every floor above needs (the plan, a secret, an SSM parameter, the time left).

use std::{sync::Arc, time::Instant};

use super::{signing::SigningKeys, DeployConfig, StepError, Workspaces};
use crate::{
    aws::{sdk_error_message, AwsClients},
    ledger::Ledger,
    secret::Secret,
};

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
    pub signing_keys: Arc<std::sync::Mutex<Option<(Instant, SigningKeys)>>>,
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
    pub async fn signing_keys(&self) -> Result<Option<SigningKeys>, StepError> {
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
        let keys = SigningKeys::parse(&secret).map_err(|e| StepError::Secret {
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

    fn lock_signing_keys(&self) -> std::sync::MutexGuard<'_, Option<(Instant, SigningKeys)>> {
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

/// An SSM parameter's value (`None`: absent), as the switch and the client check read it.
pub async fn read_parameter(deps: &Deps, name: &str) -> Result<Option<String>, StepError> {
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
