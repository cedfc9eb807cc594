//! Secrets API 2.0 — names and ACLs only. Lifeboat never reads a secret's value (the API has
//! no call that returns one to a REST client anyway), so nothing here can leak one.
//!
//! - `GET /api/2.0/secrets/scopes/list` → `{scopes?: [{name, backend_type}]}`.
//! - `GET /api/2.0/secrets/list?scope=` → `{secrets?: [{key, last_updated_timestamp}]}`.
//! - `GET /api/2.0/secrets/acls/list?scope=` → `{items?: [{principal, permission}]}`.
//!   An unknown scope answers 404 `RESOURCE_DOES_NOT_EXIST`.

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{ApiError, Family, WorkspaceClient};

/// A secret scope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretScope {
    pub name: String,
    #[serde(default)]
    pub backend_type: Option<String>,
}

/// A secret's metadata (never its value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretMetadata {
    pub key: String,
}

/// One ACL entry of a scope.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretAcl {
    pub principal: String,
    pub permission: String,
}

#[derive(Deserialize)]
struct Scopes {
    #[serde(default)]
    scopes: Vec<SecretScope>,
}

#[derive(Deserialize)]
struct Secrets {
    #[serde(default)]
    secrets: Vec<SecretMetadata>,
}

#[derive(Deserialize)]
struct Acls {
    #[serde(default)]
    items: Vec<SecretAcl>,
}

impl WorkspaceClient {
    /// Every secret scope.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn list_secret_scopes(&self) -> Result<Vec<SecretScope>, ApiError> {
        let r: Scopes = self
            .get(Family::Other, "/api/2.0/secrets/scopes/list", &[])
            .await?;
        Ok(r.scopes)
    }

    /// The key names in a scope.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn list_secret_keys(&self, scope: &str) -> Result<Vec<String>, ApiError> {
        let r: Secrets = self
            .get(
                Family::Other,
                "/api/2.0/secrets/list",
                &[("scope", scope.to_string())],
            )
            .await?;
        Ok(r.secrets.into_iter().map(|s| s.key).collect())
    }

    /// A scope's ACL.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn list_secret_acls(&self, scope: &str) -> Result<Vec<SecretAcl>, ApiError> {
        let r: Acls = self
            .get(
                Family::Other,
                "/api/2.0/secrets/acls/list",
                &[("scope", scope.to_string())],
            )
            .await?;
        Ok(r.items)
    }
}
