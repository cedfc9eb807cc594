//! `[validation]`: the proof that the target works before it is declared serving — queries with
//! expected results on a named warehouse, and the permissions objects must carry there.

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// Validation of the target workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validation {
    /// Warehouse (by name) to run queries on.
    #[serde(default)]
    pub warehouse: Option<String>,
    /// Queries with expected results.
    #[serde(default)]
    pub queries: Vec<ValidationQuery>,
    /// Expected ACLs.
    #[serde(default)]
    pub acls: Vec<ExpectedAcl>,
    /// Seconds each query may take.
    #[serde(default = "default_query_timeout")]
    pub query_timeout_seconds: u32,
}

impl Default for Validation {
    fn default() -> Self {
        Self {
            warehouse: None,
            queries: Vec::new(),
            acls: Vec::new(),
            query_timeout_seconds: default_query_timeout(),
        }
    }
}

fn default_query_timeout() -> u32 {
    60
}

/// A validation query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationQuery {
    /// Label.
    pub name: String,
    /// SQL.
    pub sql: String,
    /// Expected rows, as strings (the API's JSON_ARRAY format).
    #[serde(default)]
    pub expect_rows: Option<Vec<Vec<String>>>,
    /// Or: at least this many rows.
    #[serde(default)]
    pub expect_min_rows: Option<usize>,
}

/// An expected permission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedAcl {
    /// Object kind.
    pub object_type: AclObjectType,
    /// Object name (resolved to an id at the target).
    pub object_name: String,
    /// `user:NAME`, `group:NAME` or `service_principal:NAME`.
    pub principal: String,
    /// e.g. `CAN_MANAGE`.
    pub permission_level: String,
}

/// Objects whose ACLs can be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclObjectType {
    Job,
    Cluster,
    Warehouse,
    Pool,
    Pipeline,
}

impl AclObjectType {
    /// Path segment of the permissions API.
    pub fn path(self) -> &'static str {
        match self {
            AclObjectType::Job => "jobs",
            AclObjectType::Cluster => "clusters",
            AclObjectType::Warehouse => "warehouses",
            AclObjectType::Pool => "instance-pools",
            AclObjectType::Pipeline => "pipelines",
        }
    }
}

impl Validation {
    /// Checks each query expects one kind of result and has a warehouse to run on, and each
    /// ACL names a principal by kind.
    pub(super) fn validate(&self) -> Result<(), PlanError> {
        for (i, q) in self.queries.iter().enumerate() {
            if q.expect_rows.is_some() && q.expect_min_rows.is_some() {
                return Err(invalid(
                    format!("validation.queries[{i}]"),
                    "set expect_rows or expect_min_rows, not both",
                ));
            }
            if self.warehouse.is_none() {
                return Err(invalid(
                    "validation.warehouse",
                    "required when validation.queries are declared",
                ));
            }
        }
        for (i, a) in self.acls.iter().enumerate() {
            if !["user:", "group:", "service_principal:"]
                .iter()
                .any(|p| a.principal.starts_with(p))
            {
                return Err(invalid(
                    format!("validation.acls[{i}].principal"),
                    "must start with user:, group: or service_principal:",
                ));
            }
        }
        Ok(())
    }
}
