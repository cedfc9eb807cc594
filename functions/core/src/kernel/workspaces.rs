//! `Workspaces`: Databricks clients built from a site's secret reference, one per workspace and
//! container (credentials resolved once).

use std::{collections::HashMap, sync::Arc};

use tokio::sync::Mutex;

use super::StepError;
use crate::{
    databricks::{ClientConfig, Credentials, RateLimits, WorkspaceClient},
    plan::{Site, SiteAuth},
    retry::RetryPolicy,
    secret::Secret,
};

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
        super::deps::read_secret(&self.secrets, secret_id).await
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
