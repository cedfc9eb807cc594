//! Unity Catalog (2.1), the parts a drift check reads:
//!
//! - `GET /api/2.1/unity-catalog/catalogs?max_results&page_token` →
//!   `{catalogs?: [{name, owner?, comment?, catalog_type?}], next_page_token?}`.
//! - `GET /api/2.1/unity-catalog/schemas?catalog_name=&max_results&page_token` →
//!   `{schemas?: [{name, catalog_name, full_name}], next_page_token?}`.
//! - `GET /api/2.1/unity-catalog/permissions/{securable_type}/{full_name}` →
//!   `{privilege_assignments?: [{principal, privileges: [..]}]}`.
//!
//! With a metastore shared by both regions (or replicated by Managed DR) these read the same
//! grants at both sites; where each region has its own metastore they are the drift to see.

use futures::{stream::BoxStream, TryStreamExt};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{paginate, ApiError, Family, WorkspaceClient};

/// A catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    pub name: String,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// A schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schema {
    pub name: String,
    #[serde(default)]
    pub full_name: String,
    #[serde(default)]
    pub owner: Option<String>,
}

/// The privileges one principal holds on a securable.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PrivilegeAssignment {
    pub principal: String,
    #[serde(default)]
    pub privileges: Vec<String>,
}

#[derive(Deserialize)]
struct Catalogs {
    #[serde(default)]
    catalogs: Vec<Catalog>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Schemas {
    #[serde(default)]
    schemas: Vec<Schema>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Grants {
    #[serde(default)]
    privilege_assignments: Vec<PrivilegeAssignment>,
}

impl WorkspaceClient {
    /// Streams every catalog the caller can see.
    pub fn list_catalogs(&self) -> BoxStream<'static, Result<Catalog, ApiError>> {
        let client = self.clone();
        paginate(move |token| {
            let client = client.clone();
            let mut query = vec![("max_results", "50".to_string())];
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            async move {
                let r: Catalogs = client
                    .get(Family::Other, "/api/2.1/unity-catalog/catalogs", &query)
                    .await?;
                Ok((r.catalogs, r.next_page_token))
            }
        })
    }

    /// Every schema of a catalog.
    pub async fn all_schemas(&self, catalog: &str) -> Result<Vec<Schema>, ApiError> {
        let client = self.clone();
        let catalog = catalog.to_string();
        paginate(move |token| {
            let client = client.clone();
            let mut query = vec![
                ("catalog_name", catalog.clone()),
                ("max_results", "50".to_string()),
            ];
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            async move {
                let r: Schemas = client
                    .get(Family::Other, "/api/2.1/unity-catalog/schemas", &query)
                    .await?;
                Ok((r.schemas, r.next_page_token))
            }
        })
        .try_collect()
        .await
    }

    /// The direct grants on a securable (`catalog`, `schema`, `table`, ...).
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_grants(
        &self,
        securable_type: &str,
        full_name: &str,
    ) -> Result<Vec<PrivilegeAssignment>, ApiError> {
        let path = format!(
            "/api/2.1/unity-catalog/permissions/{securable_type}/{}",
            super::segment(full_name)
        );
        let r: Grants = self.get(Family::Other, &path, &[]).await?;
        Ok(r.privilege_assignments)
    }
}
