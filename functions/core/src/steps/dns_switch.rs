//! `dns-switch`: the seed's failover step 10 — move clients to the new control plane: UPSERT
//! the workspace alias in Route 53 (and wait until INSYNC), and rewrite the SSM parameters that
//! REST/JDBC/ODBC clients read. The previous values are returned and kept in the ledger for
//! failback. An aborted run calls it with `restore_source` to point clients back at the source.

use std::time::{Duration, Instant};

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::switch::{DnsSwitchOutput, ParameterChange};
use crate::{clients::ResolvedSetting, plan::SwitchMode, run::RunContext, switch::Serving};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct DnsSwitchInput {
    /// The run.
    pub run: RunContext,
    /// Abort-and-restore: point clients back at the run's source site, changing only what
    /// differs (a switch that failed half-way, or never ran, leaves some or all as they were).
    /// The UPSERT is not waited on: Route 53 applies an accepted change, and an abort must not
    /// hang on propagation.
    #[serde(default)]
    pub restore_source: bool,
}

/// Switches DNS and client parameters to the target (or back to the source, see
/// [`DnsSwitchInput::restore_source`]). Waits for INSYNC until `budget`, then fails so the
/// state machine retries (the UPSERT is idempotent).
#[instrument(skip_all, fields(run = %input.run.run_id, restore = input.restore_source))]
pub async fn handle(
    deps: &Deps,
    input: DnsSwitchInput,
    budget: Instant,
) -> Result<DnsSwitchOutput, StepError> {
    let run = &input.run;
    let restore = input.restore_source;
    let Some(dns) = &run.plan.dns else {
        return Err(StepError::Refused("the plan has no [dns] section".into()));
    };
    // Full drills rehearse on the drill alias and leave client parameters alone, unless the
    // plan opts into the production ones.
    let (record_name, with_settings) =
        dns.switched_by(run.kind == crate::run::RunKind::Drill)
            .ok_or_else(|| {
                StepError::Refused(
            "a full drill needs dns.drill_record_name (or dns.drill_uses_production = true)".into(),
        )
            })?;
    let record_name = record_name.to_string();
    let settings = if with_settings {
        dns.all_client_settings()
    } else {
        Vec::new()
    };
    let (source_role, target_role) = run.direction.roles();
    let target_role = if restore { source_role } else { target_role };
    let target_site = run.plan.site(target_role);
    let target_host = target_site.cname_target();
    // Every value is known before the first write: a warehouse missing at the target refuses
    // the switch with nothing moved.
    let resolved = resolve_settings(deps, run, &settings, target_site, restore).await?;
    let (previous, status) = match dns.switch {
        SwitchMode::Upsert => {
            upsert(deps, run, dns, &record_name, &target_host, restore, budget).await?
        }
        SwitchMode::RoutingControl => {
            // Statically stable: one data-plane call to any of the ARC cluster's endpoints.
            let rc = dns.routing_control.as_ref().ok_or_else(|| {
                StepError::Refused("switch = routing_control without [dns.routing_control]".into())
            })?;
            let control = if record_name == dns.record_name {
                rc.control_arn.as_str()
            } else {
                rc.drill_control_arn.as_deref().ok_or_else(|| {
                    StepError::Refused("no dns.routing_control.drill_control_arn".into())
                })?
            };
            let to = match target_role {
                crate::plan::SiteRole::Primary => Serving::Primary,
                crate::plan::SiteRole::Dr => Serving::Dr,
            };
            let flipped = crate::switch::flip(&deps.aws, rc, control, to, budget)
                .await
                .map_err(|e| match e {
                    crate::switch::SwitchError::Refused { .. } => StepError::Refused(e.to_string()),
                    other => StepError::Aws {
                        service: "route53-recovery-cluster",
                        message: other.to_string(),
                    },
                })?;
            if !flipped.skipped.is_empty() {
                tracing::warn!(skipped = ?flipped.skipped, endpoint = %flipped.endpoint,
                    "ARC endpoints that did not answer first");
            }
            let previous = flipped.before.map(|s| match s {
                Serving::Primary => run.plan.sites.primary.cname_target(),
                Serving::Dr => run.plan.sites.dr.cname_target(),
            });
            let region = rc
                .cluster_endpoints
                .iter()
                .find(|e| e.url == flipped.endpoint)
                .map(|e| e.region.as_str())
                .unwrap_or("?");
            let status = if flipped.endpoint.is_empty() {
                format!(
                    "routing control {} (already; no update sent)",
                    to.control_state().as_str()
                )
            } else {
                format!(
                    "routing control {} (ARC endpoint in {region}; {} skipped)",
                    to.control_state().as_str(),
                    flipped.skipped.len()
                )
            };
            (previous, status)
        }
    };
    // What clients read before this run wrote anything, recorded once: a retry (after a
    // throttled write, a killed Lambda, a failed ledger write) must not take the values it
    // already wrote for "previous", or an abort would put them back.
    let intent = if restore || resolved.is_empty() {
        None
    } else {
        Some(intent(deps, run, &resolved).await?)
    };
    let mut parameters = Vec::new();
    for setting in resolved {
        let name = &setting.parameter;
        // Just read for a first intent; read again on a retry (earlier writes moved it).
        let now = match &intent {
            Some((i, true)) => i.previous.get(name).cloned().flatten(),
            _ => crate::kernel::read_parameter(deps, name).await?,
        };
        let previous = match &intent {
            Some((i, _)) => i.previous.get(name).cloned().unwrap_or(now.clone()),
            None => now.clone(),
        };
        let unchanged = now.as_deref() == Some(setting.value.as_str());
        if unchanged && restore {
            continue;
        }
        if !unchanged {
            deps.aws
                .ssm
                .put_parameter()
                .name(name)
                .value(&setting.value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .overwrite(true)
                .send()
                .await
                .map_err(|e| StepError::aws("ssm", &e))?;
        }
        parameters.push(ParameterChange {
            name: name.clone(),
            describes: setting.describes,
            kind: Some(setting.kind),
            warehouse: setting.warehouse,
            previous,
            current: setting.value,
        });
    }
    let output = DnsSwitchOutput {
        record_name,
        previous,
        current: target_host,
        change_status: status,
        parameters,
        restored: restore,
    };
    // The switch's record is what failback reads; a restore has its own.
    deps.ledger
        .put(&keys::dns(&run.run_id, restore), &output)
        .await?;
    Ok(output)
}

/// The values the client settings must hold while `site` serves. A switch resolves them at the
/// site (warehouses by name). A restore puts back what this run's switch found before its first
/// write (`dns-intent.json`; none: nothing was written) and resolves at the source, best
/// effort, only what was absent then — an abort must not depend on the source answering.
async fn resolve_settings(
    deps: &Deps,
    run: &RunContext,
    settings: &[crate::plan::ClientSetting],
    site: &crate::plan::Site,
    restore: bool,
) -> Result<Vec<ResolvedSetting>, StepError> {
    if settings.is_empty() {
        return Ok(Vec::new());
    }
    let mut kept = std::collections::HashMap::new();
    if restore {
        // No intent: the switch wrote nothing, so there is nothing to put back.
        let Some(intent) = deps
            .ledger
            .get::<SwitchIntent>(&keys::dns_intent(&run.run_id))
            .await?
        else {
            return Ok(Vec::new());
        };
        for (name, previous) in intent.value.previous {
            if let Some(previous) = previous {
                kept.insert(name, previous);
            }
        }
    }
    let missing: Vec<_> = settings
        .iter()
        .filter(|s| !kept.contains_key(&s.parameter))
        .cloned()
        .collect();
    let resolved_fresh = async {
        let client = if missing.iter().any(|s| s.kind.needs_warehouse()) {
            Some(deps.workspaces.client(site).await?)
        } else {
            None
        };
        crate::clients::resolve(client.as_ref(), &missing, site)
            .await
            .map_err(|e| match e {
                // Transient or not, the API's own classification decides the retry.
                crate::clients::ClientsError::Api { source, .. } => StepError::Databricks(source),
                other => StepError::Refused(other.to_string()),
            })
    };
    let fresh = match resolved_fresh.await {
        Ok(fresh) => fresh,
        // A restore puts back what it knows; a parameter that did not exist before the switch
        // is resolved at the source only if the source answers (an abort must not hang on it).
        Err(e) if restore => {
            tracing::warn!(error = %e, "settings absent before the switch not restored");
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    let mut fresh: std::collections::HashMap<_, _> = fresh
        .into_iter()
        .map(|r| (r.parameter.clone(), r))
        .collect();
    Ok(settings
        .iter()
        .filter_map(|s| {
            fresh.remove(&s.parameter).or_else(|| {
                kept.remove(&s.parameter).map(|value| ResolvedSetting {
                    parameter: s.parameter.clone(),
                    describes: format!("{} (kept from before the switch)", s.kind.as_str()),
                    kind: s.kind,
                    warehouse: s.warehouse.clone(),
                    value,
                })
            })
        })
        .collect())
}

/// The control-plane switch: UPSERT the CNAME, then wait for INSYNC until `budget` (a restore
/// does not wait). Returns the previous target and the change status reached.
async fn upsert(
    deps: &Deps,
    run: &RunContext,
    dns: &crate::plan::Dns,
    record_name: &str,
    target_host: &str,
    restore: bool,
    budget: Instant,
) -> Result<(Option<String>, String), StepError> {
    let r53 = &deps.aws.route53;
    let fqdn = format!("{}.", record_name.trim_end_matches('.'));
    let existing = r53
        .list_resource_record_sets()
        .hosted_zone_id(&dns.hosted_zone_id)
        .start_record_name(&fqdn)
        .start_record_type(RrType::Cname)
        .max_items(1)
        .send()
        .await
        .map_err(|e| StepError::aws("route53", &e))?;
    let previous = existing
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == fqdn && r.r#type() == &RrType::Cname)
        .and_then(|r| r.resource_records().first().map(|v| v.value().to_string()));
    let record = ResourceRecordSet::builder()
        .name(&fqdn)
        .r#type(RrType::Cname)
        .ttl(dns.ttl)
        .resource_records(
            ResourceRecord::builder()
                .value(target_host)
                .build()
                .map_err(|e| StepError::InvalidInput(e.to_string()))?,
        )
        .build()
        .map_err(|e| StepError::InvalidInput(e.to_string()))?;
    let batch = ChangeBatch::builder()
        .comment(format!("lifeboat {} {}", run.kind.as_str(), run.run_id))
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(record)
                .build()
                .map_err(|e| StepError::InvalidInput(e.to_string()))?,
        )
        .build()
        .map_err(|e| StepError::InvalidInput(e.to_string()))?;
    let unchanged = restore && previous.as_deref() == Some(target_host);
    let (mut status, change_id) = if unchanged {
        (Some(ChangeStatus::Insync), String::new())
    } else {
        let change = r53
            .change_resource_record_sets()
            .hosted_zone_id(&dns.hosted_zone_id)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| StepError::aws("route53", &e))?;
        (
            change.change_info().map(|c| c.status().clone()),
            change
                .change_info()
                .map(|c| c.id().to_string())
                .unwrap_or_default(),
        )
    };
    while !restore && status != Some(ChangeStatus::Insync) {
        if Instant::now() + Duration::from_secs(1) >= budget {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        status = r53
            .get_change()
            .id(&change_id)
            .send()
            .await
            .map_err(|e| StepError::aws("route53", &e))?
            .change_info()
            .map(|c| c.status().clone());
    }
    if !restore && status != Some(ChangeStatus::Insync) {
        // Not verified is not done: the state machine retries (the UPSERT is idempotent).
        return Err(StepError::Aws {
            service: "route53",
            message: format!(
                "change {change_id} not INSYNC before the step's deadline ({status:?})"
            ),
        });
    }
    Ok((
        previous,
        status
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "UNKNOWN".into()),
    ))
}

/// The values clients read before a switch's first write (`runs/<id>/dns-intent.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchIntent {
    /// Parameter → value before (`None`: absent).
    pub previous: std::collections::BTreeMap<String, Option<String>>,
    /// When recorded.
    pub at: chrono::DateTime<chrono::Utc>,
}

/// The intent of this run's switch: the recorded one (a retry), else the values read now,
/// recorded before anything is written; `true` when read now.
async fn intent(
    deps: &Deps,
    run: &RunContext,
    settings: &[ResolvedSetting],
) -> Result<(SwitchIntent, bool), StepError> {
    let key = keys::dns_intent(&run.run_id);
    if let Some(recorded) = deps.ledger.get::<SwitchIntent>(&key).await? {
        return Ok((recorded.value, false));
    }
    let mut previous = std::collections::BTreeMap::new();
    for s in settings {
        previous.insert(
            s.parameter.clone(),
            crate::kernel::read_parameter(deps, &s.parameter).await?,
        );
    }
    let intent = SwitchIntent {
        previous,
        at: chrono::Utc::now(),
    };
    deps.ledger.put(&key, &intent).await?;
    Ok((intent, true))
}
