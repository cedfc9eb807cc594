//! Permissions API: `GET /api/2.0/permissions/{type}/{id}` →
//! `{object_id, object_type, access_control_list[{user_name | group_name |
//! service_principal_name, all_permissions[{permission_level, inherited}]}]}`. One request per
//! object.

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{ApiError, Family, WorkspaceClient};

/// One permission of a principal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Permission {
    pub permission_level: String,
    #[serde(default)]
    pub inherited: bool,
}

/// One entry of an object's access control list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessControl {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_name: Option<String>,
    #[serde(default)]
    pub all_permissions: Vec<Permission>,
}

impl AccessControl {
    /// The principal as `user:NAME`, `group:NAME` or `service_principal:NAME`.
    pub fn principal(&self) -> String {
        if let Some(u) = &self.user_name {
            format!("user:{u}")
        } else if let Some(g) = &self.group_name {
            format!("group:{g}")
        } else if let Some(s) = &self.service_principal_name {
            format!("service_principal:{s}")
        } else {
            "unknown:".to_string()
        }
    }
}

/// An object's permissions.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectPermissions {
    #[serde(default)]
    pub object_id: String,
    #[serde(default)]
    pub object_type: String,
    #[serde(default)]
    pub access_control_list: Vec<AccessControl>,
}

impl ObjectPermissions {
    /// Whether `principal` (as in [`AccessControl::principal`]) holds `level`.
    pub fn grants(&self, principal: &str, level: &str) -> bool {
        self.access_control_list.iter().any(|ac| {
            ac.principal() == principal
                && ac
                    .all_permissions
                    .iter()
                    .any(|p| p.permission_level == level)
        })
    }
}

impl WorkspaceClient {
    /// Permissions of one object; `object_type` is the path segment (`jobs`, `clusters`,
    /// `instance-pools`, `warehouses`, `pipelines`, ...).
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_permissions(
        &self,
        object_type: &str,
        object_id: &str,
    ) -> Result<ObjectPermissions, ApiError> {
        self.get(
            Family::Permissions,
            &format!(
                "/api/2.0/permissions/{object_type}/{}",
                super::segment(object_id)
            ),
            &[],
        )
        .await
    }
}
