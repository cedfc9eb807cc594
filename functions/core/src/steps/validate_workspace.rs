//! `validate-workspace`: "a process that validates the target workspace is in good operating
//! condition" — simulated authentication (SCIM Me as the service principal), API calls,
//! automated queries with expected results (SQL Statement Execution), and ACL checks.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{Deps, StepError};
use crate::{
    databricks::{clusters::ClusterFilter, WorkspaceClient},
    plan::{AclObjectType, ExpectedAcl, ValidationQuery},
    run::RunContext,
};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ValidationInput {
    /// The run.
    pub run: RunContext,
}

/// One check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Label.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// All checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationOutput {
    /// Checks in order.
    pub checks: Vec<Check>,
    /// All passed.
    pub passed: bool,
}

fn check(name: impl Into<String>, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok,
        detail: detail.into(),
    }
}

/// Pure: do the rows match the query's expectation?
pub fn rows_match(q: &ValidationQuery, rows: &[Vec<Option<String>>]) -> Result<(), String> {
    if let Some(expected) = &q.expect_rows {
        let got: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.clone().unwrap_or_else(|| "NULL".into()))
                    .collect()
            })
            .collect();
        if &got != expected {
            return Err(format!("expected {expected:?}, got {got:?}"));
        }
    }
    if let Some(min) = q.expect_min_rows {
        if rows.len() < min {
            return Err(format!("expected at least {min} rows, got {}", rows.len()));
        }
    }
    Ok(())
}

/// Name → id of the target's objects, listed at most once per kind for all ACL checks
/// (a 10,000-job workspace takes 100 `jobs/list` pages: never once per check).
#[derive(Default)]
struct ObjectIndex {
    by_kind: std::collections::HashMap<&'static str, std::collections::HashMap<String, String>>,
}

impl ObjectIndex {
    async fn load(
        client: &WorkspaceClient,
        kind: AclObjectType,
    ) -> Result<std::collections::HashMap<String, String>, crate::databricks::ApiError> {
        Ok(match kind {
            AclObjectType::Job => client
                .all_jobs()
                .await?
                .into_iter()
                .map(|j| (j.settings.name, j.job_id.to_string()))
                .collect(),
            AclObjectType::Cluster => client
                .all_clusters(ClusterFilter::default())
                .await?
                .into_iter()
                .map(|c| (c.cluster_name, c.cluster_id.to_string()))
                .collect(),
            AclObjectType::Warehouse => client
                .all_warehouses()
                .await?
                .into_iter()
                .map(|w| (w.name, w.id.to_string()))
                .collect(),
            AclObjectType::Pool => client
                .list_pools()
                .await?
                .into_iter()
                .map(|p| (p.instance_pool_name, p.instance_pool_id.to_string()))
                .collect(),
            AclObjectType::Pipeline => client
                .all_pipelines()
                .await?
                .into_iter()
                .map(|p| (p.name, p.pipeline_id.to_string()))
                .collect(),
        })
    }

    async fn resolve(
        &mut self,
        client: &WorkspaceClient,
        acl: &ExpectedAcl,
    ) -> Result<Option<String>, crate::databricks::ApiError> {
        let kind = acl.object_type.path();
        if !self.by_kind.contains_key(kind) {
            let names = Self::load(client, acl.object_type).await?;
            self.by_kind.insert(kind, names);
        }
        Ok(self
            .by_kind
            .get(kind)
            .and_then(|m| m.get(&acl.object_name))
            .cloned())
    }
}

/// Runs every check against the target workspace.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: ValidationInput) -> Result<ValidationOutput, StepError> {
    let run = &input.run;
    let (_, target_role) = run.direction.roles();
    let client = deps.workspaces.client(run.plan.site(target_role)).await?;
    let v = &run.plan.validation;
    let mut checks = Vec::new();
    match client.me().await {
        Ok(me) => {
            let expected = run.plan.site(target_role).expected_identity();
            let ok = expected.is_none_or(|e| e == me.user_name);
            checks.push(check(
                "auth: SCIM Me",
                ok && me.active,
                format!("authenticated as {}", me.user_name),
            ));
        }
        Err(e) => checks.push(check("auth: SCIM Me", false, e.to_string())),
    }
    match client.all_jobs().await {
        Ok(jobs) => checks.push(check(
            "api: jobs list",
            true,
            format!("{} jobs", jobs.len()),
        )),
        Err(e) => checks.push(check("api: jobs list", false, e.to_string())),
    }
    match client.all_clusters(ClusterFilter::default()).await {
        Ok(c) => checks.push(check(
            "api: clusters list",
            true,
            format!("{} clusters", c.len()),
        )),
        Err(e) => checks.push(check("api: clusters list", false, e.to_string())),
    }
    if let Some(wh_name) = &v.warehouse {
        let timeout = Duration::from_secs(u64::from(v.query_timeout_seconds));
        let warehouse = client
            .all_warehouses()
            .await?
            .into_iter()
            .find(|w| &w.name == wh_name);
        match warehouse {
            None => checks.push(check(
                format!("sql: warehouse {wh_name}"),
                false,
                "does not exist at the target",
            )),
            Some(w) => {
                let builtin = ValidationQuery {
                    name: "SELECT 1".into(),
                    sql: "SELECT 1".into(),
                    expect_rows: Some(vec![vec!["1".into()]]),
                    expect_min_rows: None,
                };
                for q in std::iter::once(&builtin).chain(v.queries.iter()) {
                    let name = format!("sql: {}", q.name);
                    match client.execute_statement(&w.id.0, &q.sql, timeout).await {
                        Ok(s)
                            if s.status.state
                                == crate::databricks::sql::StatementState::Succeeded =>
                        {
                            let rows = s.rows();
                            match rows_match(q, &rows) {
                                Ok(()) => checks.push(check(
                                    name,
                                    true,
                                    format!("{} rows as expected", rows.len()),
                                )),
                                Err(d) => checks.push(check(name, false, d)),
                            }
                        }
                        Ok(s) => checks.push(check(
                            name,
                            false,
                            format!(
                                "{:?}: {}",
                                s.status.state,
                                s.status.error.and_then(|e| e.message).unwrap_or_default()
                            ),
                        )),
                        Err(e) => checks.push(check(name, false, e.to_string())),
                    }
                }
            }
        }
    }
    let mut index = ObjectIndex::default();
    for acl in &v.acls {
        let name = format!(
            "acl: {} {} {} {}",
            acl.object_type.path(),
            acl.object_name,
            acl.principal,
            acl.permission_level
        );
        match index.resolve(&client, acl).await {
            Ok(Some(id)) => match client.get_permissions(acl.object_type.path(), &id).await {
                Ok(perms) => {
                    let ok = perms.grants(&acl.principal, &acl.permission_level);
                    checks.push(check(name, ok, if ok { "granted" } else { "not granted" }));
                }
                Err(e) => checks.push(check(name, false, e.to_string())),
            },
            Ok(None) => checks.push(check(name, false, "object does not exist at the target")),
            Err(e) => checks.push(check(name, false, e.to_string())),
        }
    }
    Ok(ValidationOutput {
        passed: checks.iter().all(|c| c.ok),
        checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_rows() {
        let q = ValidationQuery {
            name: "n".into(),
            sql: "x".into(),
            expect_rows: Some(vec![vec!["1".into()]]),
            expect_min_rows: None,
        };
        assert!(rows_match(&q, &[vec![Some("1".into())]]).is_ok());
        assert!(rows_match(&q, &[vec![Some("2".into())]]).is_err());
        assert!(rows_match(&q, &[]).is_err());
        let q = ValidationQuery {
            expect_rows: None,
            expect_min_rows: Some(2),
            ..q
        };
        assert!(rows_match(&q, &[vec![None]]).is_err());
        assert!(rows_match(&q, &[vec![None], vec![None]]).is_ok());
    }
}
