//! Scheduled health probes (EventBridge Scheduler → `health-ingest` with
//! `{"lifeboat_probe": {}}`): the Databricks status page (Status.io JSON) for the primary's
//! region, and deep probes of the primary workspace itself (SCIM Me and a clusters listing, the
//! calls every client depends on). A disruption on the status page, or the plan's number of
//! consecutive failed deep probes, declares an incident: a failover execution is started — and
//! waits for a human, as every failover does.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::{info, instrument};

use super::{health_ingest::IngestOutput, Deps, StepError};
use crate::{
    databricks::clusters::ClusterFilter,
    plan::{Direction, Plan},
    run::{RunId, RunKind, Trigger, TriggerSource},
};

/// Status.io codes: 100 operational, 200 maintenance, 300 degraded, 400 partial disruption,
/// 500 disruption, 600 security. Partial disruption and worse count as an incident.
pub const DISRUPTION: u32 = 400;

#[derive(Debug, Deserialize)]
struct StatusPage {
    result: StatusResult,
}

#[derive(Debug, Deserialize)]
struct StatusResult {
    #[serde(default)]
    status: Vec<Component>,
}

#[derive(Debug, Deserialize)]
struct Component {
    name: String,
    #[serde(default)]
    containers: Vec<Container>,
}

#[derive(Debug, Deserialize)]
struct Container {
    name: String,
    status_code: u32,
    #[serde(default)]
    status: String,
}

/// Pure: the disrupted components of the primary's container, from a Status.io document.
pub fn disrupted_components(
    page: &serde_json::Value,
    container: &str,
) -> Result<Vec<String>, String> {
    let page: StatusPage = serde_json::from_value(page.clone())
        .map_err(|e| format!("not a Status.io status document: {e}"))?;
    let needle = container.to_ascii_lowercase();
    Ok(page
        .result
        .status
        .iter()
        .flat_map(|c| {
            c.containers
                .iter()
                .filter(|k| {
                    k.name.to_ascii_lowercase().contains(&needle) && k.status_code >= DISRUPTION
                })
                .map(move |k| format!("{} ({}: {})", c.name, k.name, k.status))
        })
        .collect())
}

/// Probe state kept between invocations (`monitor/<plan>/probe.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbeState {
    /// Consecutive failed deep probes.
    pub consecutive_failures: u32,
    /// Last error seen.
    pub last_error: Option<String>,
}

/// Pure: does the evidence declare an incident?
pub fn declares(disrupted: &[String], consecutive_failures: u32, threshold: u32) -> Option<String> {
    if !disrupted.is_empty() {
        return Some(format!(
            "Databricks status page reports a disruption: {}",
            disrupted.join(", ")
        ));
    }
    if threshold > 0 && consecutive_failures >= threshold {
        return Some(format!(
            "{consecutive_failures} consecutive deep probes of the primary workspace failed"
        ));
    }
    None
}

/// Runs the probes and starts a failover when they declare an incident.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps, plan: Plan) -> Result<IngestOutput, StepError> {
    let mon = &plan.monitoring;
    let mut disrupted = Vec::new();
    if let Some(url) = &mon.status_page_url {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| StepError::InvalidInput(e.to_string()))?;
        // An unreachable status page is no evidence either way.
        if let Ok(resp) = http.get(url).send().await {
            if let Ok(page) = resp.json::<serde_json::Value>().await {
                let container = mon
                    .status_container
                    .clone()
                    .unwrap_or_else(|| plan.sites.primary.region.clone());
                disrupted =
                    disrupted_components(&page, &container).map_err(StepError::InvalidInput)?;
            }
        }
    }
    let key = format!("monitor/{}/probe.json", plan.name);
    let mut state = deps
        .ledger
        .get::<ProbeState>(&key)
        .await?
        .map(|v| v.value)
        .unwrap_or_default();
    if mon.probe_failures_to_declare > 0 {
        let client = deps
            .workspaces
            .client(&plan.sites.primary)
            .await?
            .with_deadline(Instant::now() + Duration::from_secs(15));
        let probe = async {
            client.me().await?;
            let mut clusters = client.list_clusters(ClusterFilter {
                page_size: Some(1),
                ..Default::default()
            });
            futures::StreamExt::next(&mut clusters)
                .await
                .transpose()
                .map(|_| ())
        };
        match probe.await {
            Ok(()) => state = ProbeState::default(),
            Err(e) => {
                state.consecutive_failures += 1;
                state.last_error = Some(e.to_string());
            }
        }
        deps.ledger.put(&key, &state).await?;
    }
    let Some(reason) = declares(
        &disrupted,
        state.consecutive_failures,
        mon.probe_failures_to_declare,
    ) else {
        info!(
            failures = state.consecutive_failures,
            "primary healthy enough"
        );
        return Ok(IngestOutput::Ignored {
            reason: format!(
                "no incident: status page {}; {} consecutive deep-probe failures (threshold {})",
                if mon.status_page_url.is_some() {
                    "operational for the primary"
                } else {
                    "not configured"
                },
                state.consecutive_failures,
                mon.probe_failures_to_declare
            ),
        });
    };
    // One execution per plan and hour: repeated probes of the same incident never start a second.
    let now = Utc::now();
    let trigger = Trigger {
        source: TriggerSource::HealthEvent,
        summary: reason,
        declared_at: now,
        event_arn: None,
    };
    let mut run = super::health_ingest::run_context(
        &plan,
        RunKind::Failover,
        Direction::Failover,
        trigger,
        None,
    );
    run.run_id = RunId(format!("probe-{}-{}", plan.name, now.format("%Y%m%d%H")));
    super::health_ingest::start_failover(deps, &run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_page_disruption_in_the_primary_region() {
        let page = serde_json::json!({"result": {"status_overall": {"status_code": 400}, "status": [
            {"id": "1", "name": "Compute", "status": "Partial Disruption", "status_code": 400, "containers": [
                {"id": "a", "name": "AWS us-east-1", "status": "Partial Service Disruption", "status_code": 400},
                {"id": "b", "name": "AWS us-west-2", "status": "Operational", "status_code": 100}]},
            {"id": "2", "name": "Jobs", "status": "Degraded", "status_code": 300, "containers": [
                {"id": "a", "name": "AWS us-east-1", "status": "Degraded Performance", "status_code": 300}]}]}});
        assert_eq!(
            disrupted_components(&page, "us-east-1").unwrap().len(),
            1,
            "degraded alone is not a disruption"
        );
        assert!(disrupted_components(&page, "us-west-2").unwrap().is_empty());
        assert!(disrupted_components(&serde_json::json!({"nope": 1}), "x").is_err());
        assert!(declares(&["Compute".into()], 0, 3).is_some());
        assert!(declares(&[], 2, 3).is_none());
        assert!(declares(&[], 3, 3).is_some());
        assert!(declares(&[], 9, 0).is_none(), "deep probes off");
    }
}
