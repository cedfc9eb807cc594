//! `validate-workspace`: "a process that validates the target workspace is in good operating
//! condition" — simulated authentication (SCIM Me as the service principal), API calls,
//! automated queries with expected results (SQL Statement Execution), and ACL checks.

use std::time::Duration;

use serde::Deserialize;
use tracing::instrument;

use crate::kernel::{Deps, StepError};
use crate::validation::{Check, ValidationOutput};
use crate::{
    clients,
    databricks::{clusters::ClusterFilter, WorkspaceClient},
    plan::{AclObjectType, ClientSettingKind, ExpectedAcl, ValidationQuery},
    run::RunContext,
};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ValidationInput {
    /// The run.
    pub run: RunContext,
    /// After the switch: check the way clients arrive — the switched name as Route 53 answers
    /// it, and the workspace URL and warehouse HTTP paths as clients read them from SSM — not
    /// the target's URL from the plan.
    #[serde(default)]
    pub through_clients: bool,
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

/// `SELECT 1`, then each query, on one warehouse; a check per query named `<label>: <query>`.
/// `judge_rows`: a query passes only with the expected rows (validation); otherwise it passes
/// when it executes (the client path: the rows are validation's to judge, and were, before the
/// switch — an operator who continued past a mismatch is not asked again).
async fn run_queries(
    client: &WorkspaceClient,
    warehouse_id: &str,
    queries: &[ValidationQuery],
    timeout: Duration,
    label: &str,
    judge_rows: bool,
) -> Vec<Check> {
    let builtin = ValidationQuery {
        name: "SELECT 1".into(),
        sql: "SELECT 1".into(),
        expect_rows: Some(vec![vec!["1".into()]]),
        expect_min_rows: None,
    };
    let mut checks = Vec::new();
    for q in std::iter::once(&builtin).chain(queries.iter()) {
        let name = format!("{label}: {}", q.name);
        match client
            .execute_statement(warehouse_id, &q.sql, timeout)
            .await
        {
            Ok(s) if s.status.state == crate::databricks::sql::StatementState::Succeeded => {
                let rows = s.rows();
                match rows_match(q, &rows) {
                    Ok(()) => checks.push(check(
                        name,
                        true,
                        format!("{} rows as expected", rows.len()),
                    )),
                    Err(d) if !judge_rows => {
                        checks.push(check(name, true, format!("executed; {d}")))
                    }
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
    checks
}

/// Runs every check against the target workspace (or, `through_clients`, against what clients
/// reach after the switch).
#[instrument(skip_all, fields(run = %input.run.run_id, through_clients = input.through_clients))]
pub async fn handle(deps: &Deps, input: ValidationInput) -> Result<ValidationOutput, StepError> {
    if input.through_clients {
        return through_clients(deps, &input.run).await;
    }
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
                checks
                    .extend(run_queries(&client, &w.id.0, &v.queries, timeout, "sql", true).await);
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
        through_clients: false,
    })
}

/// The move, verified as clients make it: the switched name must answer the target's host;
/// each client setting must name the target's host and a warehouse that answers the plan's
/// queries there. Credentials go only to the target's own URL: a setting that names another
/// host fails without being called.
async fn through_clients(deps: &Deps, run: &RunContext) -> Result<ValidationOutput, StepError> {
    let Some(dns) = &run.plan.dns else {
        return through_stable_url(deps, run).await;
    };
    let Some((record, with_settings)) = dns.switched_by(run.kind == crate::run::RunKind::Drill)
    else {
        return Err(StepError::Refused(
            "a full drill needs dns.drill_record_name (or dns.drill_uses_production = true)".into(),
        ));
    };
    let (_, target_role) = run.direction.roles();
    let site = run.plan.site(target_role);
    let want_host = site
        .cname_target()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let mut checks = Vec::new();
    // Failover records answer by their health check: read the routing control it follows.
    let primary_healthy = match (dns.switch, &dns.routing_control) {
        (crate::plan::SwitchMode::RoutingControl, Some(rc)) => {
            let control = if record == dns.record_name {
                Some(rc.control_arn.as_str())
            } else {
                rc.drill_control_arn.as_deref()
            };
            match control {
                Some(arn) => match crate::switch::serving(&deps.aws, rc, arn).await {
                    Ok(s) => s.map(|s| s == crate::switch::Serving::Primary),
                    Err(e) => {
                        checks.push(check(format!("switch: {arn}"), false, e.to_string()));
                        None
                    }
                },
                None => None,
            }
        }
        _ => None,
    };
    // Route 53 may take a few seconds to follow a flipped control: look again for up to 30 s
    // before calling the move wrong.
    let dns_answer = || {
        clients::dns_answer(
            &deps.aws.route53,
            &dns.hosted_zone_id,
            record,
            primary_healthy,
        )
    };
    let mut answer = dns_answer().await;
    let started = std::time::Instant::now();
    while answer
        .as_ref()
        .is_ok_and(|a| a.values != [want_host.clone()])
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_secs(3)).await;
        answer = dns_answer().await;
    }
    match answer {
        Ok(a) => {
            let ok = a.values.len() == 1 && a.values[0] == want_host;
            checks.push(check(
                format!("dns: {record}"),
                ok,
                format!(
                    "answers {} ({}); the target is {want_host}",
                    if a.values.is_empty() {
                        "nothing".to_string()
                    } else {
                        a.values.join(", ")
                    },
                    a.how
                ),
            ));
        }
        Err(e) => checks.push(check(format!("dns: {record}"), false, e)),
    }
    let settings = if with_settings {
        dns.all_client_settings()
    } else {
        // Said, not skipped silently: a drill on its own alias leaves the settings alone.
        checks.push(check(
            "client settings",
            true,
            "left as they are: a drill switches dns.drill_record_name only \
             (dns.drill_uses_production = false)",
        ));
        Vec::new()
    };
    let (want_host, want_port) = clients::host_and_port(&site.workspace_url);
    let want_authority = format!("{}:{want_port}", want_host.to_ascii_lowercase());
    let client = deps.workspaces.client(site).await?;
    let v = &run.plan.validation;
    let timeout = Duration::from_secs(u64::from(v.query_timeout_seconds));
    // Each distinct warehouse clients are sent to is queried once.
    let mut queried: std::collections::BTreeMap<String, bool> = Default::default();
    for s in &settings {
        let name = format!("client setting {} ({})", s.parameter, s.kind.as_str());
        let value = match crate::kernel::read_parameter(deps, &s.parameter).await {
            Ok(value) => value,
            Err(e) => {
                checks.push(check(name, false, e.to_string()));
                continue;
            }
        };
        let Some(value) = value else {
            checks.push(check(name, false, "the parameter has no value"));
            continue;
        };
        if s.kind == ClientSettingKind::WorkspaceUrl
            && value.trim_end_matches('/') != site.workspace_url.trim_end_matches('/')
        {
            checks.push(check(
                name,
                false,
                format!(
                    "holds {}, not the target's URL {}",
                    clip_for_report(&value),
                    site.workspace_url
                ),
            ));
            continue;
        }
        let read = clients::read_setting(s.kind, &value);
        if let Some(authority) = &read.host_port {
            if authority != &want_authority {
                checks.push(check(
                    name,
                    false,
                    format!(
                        "sends clients to {}, not the target {want_authority}",
                        clip_for_report(authority)
                    ),
                ));
                continue;
            }
        } else if s.kind != ClientSettingKind::HttpPath {
            checks.push(check(name, false, "names no host clients could use"));
            continue;
        }
        if s.kind == ClientSettingKind::WorkspaceUrl {
            // The URL clients read is the target's: the API answers through it.
            let detail = match client.me().await {
                Ok(me) => Ok(format!("the API answers as {}", me.user_name)),
                Err(e) => Err(e.to_string()),
            };
            checks.push(match detail {
                Ok(d) => check(name, true, d),
                Err(e) => check(name, false, e),
            });
            continue;
        }
        let Some(id) = read
            .http_path
            .as_deref()
            .and_then(clients::warehouse_id_of_http_path)
        else {
            checks.push(check(name, false, "names no warehouse HTTP path"));
            continue;
        };
        match client
            .get_warehouse(&crate::databricks::warehouses::WarehouseId(id.to_string()))
            .await
        {
            Ok(w) if w.state.is_active() => {
                checks.push(check(
                    name,
                    true,
                    format!("reaches warehouse {} ({id}, {:?})", w.name, w.state),
                ));
                if !queried.contains_key(id) {
                    // The plan's queries where this is the validation warehouse, else SELECT 1.
                    let queries: &[ValidationQuery] = if v.warehouse.as_deref() == Some(&w.name) {
                        &v.queries
                    } else {
                        &[]
                    };
                    let label = format!("sql through {id}");
                    let results = run_queries(&client, id, queries, timeout, &label, false).await;
                    queried.insert(id.to_string(), results.iter().all(|c| c.ok));
                    checks.extend(results);
                }
            }
            Ok(w) => checks.push(check(
                name,
                false,
                format!("warehouse {} ({id}) is {:?}", w.name, w.state),
            )),
            Err(e) => checks.push(check(
                name,
                false,
                format!("warehouse {id} at the target: {e}"),
            )),
        }
    }
    Ok(ValidationOutput {
        passed: checks.iter().all(|c| c.ok),
        checks,
        through_clients: true,
    })
}

/// Without `[dns]`, clients keep the Managed DR stable URL: the move is proven by where the
/// account API says it routes now (the target's workspace, `sites.*.workspace_id`), and by the
/// target's own URL answering SCIM `Me` with the plan's credentials.
async fn through_stable_url(deps: &Deps, run: &RunContext) -> Result<ValidationOutput, StepError> {
    let Some((managed, name)) = run
        .plan
        .managed_dr
        .as_ref()
        .and_then(|m| m.stable_url_name().map(|n| (m, n)))
    else {
        return Err(StepError::Refused(
            "the plan has no [dns] section and no managed_dr.stable_url: nothing moves clients"
                .into(),
        ));
    };
    let (_, target_role) = run.direction.roles();
    let site = run.plan.site(target_role);
    let expected = site.workspace_id.clone().unwrap_or_default();
    let account = deps.workspaces.account(managed).await?;
    let url = account.get_stable_url(&name).await?;
    let routes_to = url.effective_workspace_id.unwrap_or_default();
    let shown = clip_for_report(url.url.as_deref().unwrap_or(&name));
    let mut checks = vec![check(
        format!("stable URL: {shown}"),
        !expected.is_empty() && routes_to == expected,
        format!(
            "routes to workspace {} (the target's is {expected})",
            clip_for_report(&routes_to)
        ),
    )];
    let me = deps.workspaces.client(site).await?.me().await;
    checks.push(check(
        "workspace: SCIM Me at the target",
        me.is_ok(),
        match me {
            Ok(u) => format!("answers as {}", clip_for_report(&u.user_name)),
            Err(e) => e.to_string(),
        },
    ));
    Ok(ValidationOutput {
        passed: checks.iter().all(|c| c.ok),
        checks,
        through_clients: true,
    })
}

/// A value read from SSM, shown in a report: at most 100 characters, no control characters.
fn clip_for_report(value: &str) -> String {
    let mut out: String = value
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    if value.chars().count() > 100 {
        out.push('…');
    }
    out
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
