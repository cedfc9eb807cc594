//! `replication-check`: the seed's failover step 3 — how fresh is the data at the target?
//! For each bucket pair it reads the canary object's replica (one GET, O(1) whatever the
//! bucket holds) and the replication configuration of the source when reachable. RPO is the
//! age of the replica's canary; it is compared with the objective.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use super::{Deps, StepError};
use crate::{plan::Direction, run::RunContext};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ReplicationInput {
    /// The run.
    pub run: RunContext,
}

/// One bucket pair's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketRpo {
    /// Label.
    pub name: String,
    /// Age of the replica's canary, seconds (`None`: canary missing).
    pub rpo_seconds: Option<f64>,
    /// Objective, seconds.
    pub objective_seconds: u64,
    /// Within objective.
    pub ok: bool,
    /// When the replica's canary was written at the source.
    pub replica_written_at: Option<DateTime<Utc>>,
    /// Replication rule status at the source (`Enabled`), or why unknown.
    pub replication_status: String,
    /// Age of the canary at the source, seconds (`None`: missing or the source unreachable):
    /// fresh there and stale at the replica is replication lagging; stale at both is the
    /// canary writer not running (the RPO then overstates the loss).
    #[serde(default)]
    pub source_canary_age_seconds: Option<f64>,
    /// What the canaries say beyond the RPO (writer not running, source unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
}

/// A source canary older than this means the canary writer is not running.
pub const CANARY_WRITER_STALE_SECONDS: f64 = 300.0;

/// Pure: what the source canary's age says.
pub fn canary_finding(source_age: Option<f64>, source_reachable: bool) -> Option<String> {
    match (source_age, source_reachable) {
        (_, false) => Some("the source bucket did not answer: its canary's age is unknown".into()),
        (None, true) => Some(
            "no canary at the source: the canary writer is not running (deploy or enable canary-writer)"
                .into(),
        ),
        (Some(a), true) if a > CANARY_WRITER_STALE_SECONDS => Some(format!(
            "the source canary is {a:.0} s old: the canary writer is not running, so the RPO overstates the loss"
        )),
        _ => None,
    }
}

/// All measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationOutput {
    /// Per bucket.
    pub buckets: Vec<BucketRpo>,
    /// Worst RPO, seconds.
    pub worst_rpo_seconds: Option<f64>,
    /// Every bucket within objective.
    pub acceptable: bool,
    /// When measured.
    pub measured_at: DateTime<Utc>,
}

/// The canary document written at the source on a schedule.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Canary {
    /// When it was written at the source.
    pub written_at: DateTime<Utc>,
}

/// Pure: is a measured RPO acceptable?
pub fn rpo_acceptable(rpo_seconds: Option<f64>, objective_seconds: u64) -> bool {
    rpo_seconds.is_some_and(|s| s <= objective_seconds as f64)
}

/// Measures every bucket pair (the replica side is the target of the run's direction).
pub async fn measure(deps: &Deps, run: &RunContext) -> Result<ReplicationOutput, StepError> {
    let now = Utc::now();
    let mut buckets = Vec::new();
    for pair in &run.plan.replication.buckets {
        let (from, to) = match run.direction {
            Direction::Failover => (&pair.source, &pair.replica),
            Direction::Failback => (&pair.replica, &pair.source),
        };
        let objective_seconds =
            u64::from(pair.rpo_minutes.unwrap_or(run.plan.objectives.rpo_minutes)) * 60;
        let written_at = match deps
            .aws
            .s3
            .get_object()
            .bucket(to)
            .key(&pair.canary_key)
            .send()
            .await
        {
            Ok(out) => {
                let last_modified = out
                    .last_modified()
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()));
                let body = out.body.collect().await.ok().map(|b| b.into_bytes());
                body.and_then(|b| serde_json::from_slice::<Canary>(&b).ok())
                    .map(|c| c.written_at)
                    .or(last_modified)
            }
            Err(_) => None,
        };
        let rpo_seconds =
            written_at.map(|w| ((now - w).num_milliseconds() as f64 / 1000.0).max(0.0));
        // The source side, briefly: a region that is down must not hold the check.
        let source = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            deps.aws
                .s3
                .get_object()
                .bucket(from)
                .key(&pair.canary_key)
                .send(),
        )
        .await;
        let (source_reachable, source_written) = match source {
            Ok(Ok(out)) => (
                true,
                out.body
                    .collect()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Canary>(&b.into_bytes()).ok())
                    .map(|c| c.written_at),
            ),
            Ok(Err(e))
                if e.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                (true, None)
            }
            _ => (false, None),
        };
        let source_canary_age_seconds =
            source_written.map(|w| ((now - w).num_milliseconds() as f64 / 1000.0).max(0.0));
        let replication_status = match deps
            .aws
            .s3
            .get_bucket_replication()
            .bucket(from)
            .send()
            .await
        {
            Ok(out) => out
                .replication_configuration()
                .map(|c| {
                    c.rules()
                        .iter()
                        .map(|r| r.status().as_str().to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "none".into()),
            Err(e) => format!("unknown ({})", crate::aws::sdk_error_message(&e)),
        };
        buckets.push(BucketRpo {
            name: pair.name.clone(),
            rpo_seconds,
            objective_seconds,
            ok: rpo_acceptable(rpo_seconds, objective_seconds),
            replica_written_at: written_at,
            replication_status,
            finding: canary_finding(source_canary_age_seconds, source_reachable),
            source_canary_age_seconds,
        });
    }
    let worst = buckets
        .iter()
        .map(|b| b.rpo_seconds.unwrap_or(f64::INFINITY))
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        })
        .filter(|v| v.is_finite());
    Ok(ReplicationOutput {
        acceptable: buckets.iter().all(|b| b.ok),
        worst_rpo_seconds: worst,
        buckets,
        measured_at: now,
    })
}

/// Measures RPO for the run.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: ReplicationInput) -> Result<ReplicationOutput, StepError> {
    measure(deps, &input.run).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpo_gate() {
        assert!(rpo_acceptable(Some(10.0), 900));
        assert!(rpo_acceptable(Some(900.0), 900));
        assert!(!rpo_acceptable(Some(900.5), 900));
        assert!(
            !rpo_acceptable(None, 900),
            "a missing canary is never acceptable"
        );
    }
}
