//! Replication recency (RPO) of a plan's data at the target: the seed's failover step 3 as
//! domain, used by the `replication-check` step and the readiness evaluation alike.
//!
//! For each bucket pair it reads the canary object's replica (one GET, O(1) whatever the
//! bucket holds) and the replication configuration of the source when reachable. RPO is the
//! age of the replica's canary; it is compared with the objective.
//!
//! For each critical Delta table it finds the newest version a reader can load at the replica
//! ([`crate::delta`]) and takes the RPO from that version's commit time: against the source's
//! newest commit when the source answers, else against now — unless nothing newer is pending
//! at the replica and the bucket's canary shows replication is current, in which case the
//! table is idle, not stale.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::kernel::{Deps, StepError};
use crate::{
    delta::s3::{TableLocation, TableReader},
    plan::Direction,
    run::RunContext,
};

/// What an RPO entry measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoKind {
    /// A bucket pair's canary.
    #[default]
    Bucket,
    /// A Delta table's newest consistent version at the replica.
    DeltaTable,
    /// A Databricks Managed DR failover group's replication point.
    ManagedDr,
}

/// A Managed DR failover group's replication point, as an RPO source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedDrRpo {
    /// Always [`RpoKind::ManagedDr`].
    #[serde(default)]
    pub kind: RpoKind,
    /// The group's resource name.
    pub name: String,
    /// The latest point in time to which the group's data is replicated.
    pub replication_point: Option<DateTime<Utc>>,
    /// Data at risk, seconds: now minus the replication point (`None`: unknown).
    pub rpo_seconds: Option<f64>,
    /// Objective, seconds.
    pub objective_seconds: u64,
    /// Within objective.
    pub ok: bool,
    /// What is wrong, when something is (blocking errors, no point yet, API unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<String>,
}

/// Pure: a group's replication point (or why there is none) measured against its objective.
pub fn managed_dr_rpo(
    name: &str,
    group: Result<&crate::databricks::disaster_recovery::FailoverGroup, String>,
    now: DateTime<Utc>,
    objective_seconds: u64,
) -> ManagedDrRpo {
    let (point, finding) = match group {
        Err(e) => (None, Some(format!("the account API did not answer: {e}"))),
        Ok(g) => match g.replication_point {
            None => (
                None,
                Some(format!(
                    "no replication point yet (state {})",
                    g.state
                        .map(|s| format!("{s:?}"))
                        .unwrap_or_else(|| "unknown".into())
                )),
            ),
            Some(p) if g.has_replication_point_blocking_errors == Some(true) => (
                Some(p),
                Some("errors block the replication point: it is not advancing".into()),
            ),
            Some(p) => (Some(p), None),
        },
    };
    let rpo_seconds = point.map(|p| ((now - p).num_milliseconds() as f64 / 1000.0).max(0.0));
    ManagedDrRpo {
        kind: RpoKind::ManagedDr,
        name: name.to_string(),
        replication_point: point,
        rpo_seconds,
        objective_seconds,
        ok: rpo_acceptable(rpo_seconds, objective_seconds),
        finding,
    }
}

/// One bucket pair's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketRpo {
    /// Always [`RpoKind::Bucket`] (in `report.json` beside the tables').
    #[serde(default)]
    pub kind: RpoKind,
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

/// One Delta table's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableRpo {
    /// Always [`RpoKind::DeltaTable`].
    pub kind: RpoKind,
    /// Label.
    pub name: String,
    /// Where it was measured (the replica side of the run's direction).
    pub replica: String,
    /// The newest version a reader can load there (`None`: none).
    pub consistent_version: Option<u64>,
    /// That version's commit time.
    pub commit_time: Option<DateTime<Utc>>,
    /// The newest commit listed there, loadable or not.
    pub newest_listed_version: Option<u64>,
    /// The source's newest commit (`None`: the source did not answer in time).
    pub source_version: Option<u64>,
    /// Versions the replica's consistent version is behind the source.
    pub versions_behind: Option<u64>,
    /// Data at risk, seconds (`None`: unknown, never acceptable).
    pub rpo_seconds: Option<f64>,
    /// Objective, seconds.
    pub objective_seconds: u64,
    /// Within objective.
    pub ok: bool,
    /// How the RPO was taken (`source`, `now`, `idle`).
    pub basis: RpoBasis,
    /// What a reader would trip on: gaps, missing files, unreadable checkpoints, no log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    /// S3 requests the measurement made (replica and source).
    pub requests: u32,
}

/// What a table's RPO is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoBasis {
    /// The source's newest commit time minus the consistent version's.
    Source,
    /// Now minus the consistent version's commit time (source unreachable).
    Now,
    /// Nothing pending at the replica and replication current to the canary: the table is idle;
    /// the RPO is the canary's.
    Idle,
    /// No consistent version: unknown.
    Unknown,
}

/// What the replica and the source said about a table (input of [`table_rpo`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TableFacts {
    /// The consistent version and its commit time.
    pub consistent: Option<(u64, Option<DateTime<Utc>>)>,
    /// A newer commit is listed at the replica (not loadable yet), or the log has a gap.
    pub pending: bool,
    /// The source's newest commit and its time, when the source answered.
    pub source: Option<(u64, Option<DateTime<Utc>>)>,
    /// When the bucket's canary now at the replica was written at the source.
    pub canary_written_at: Option<DateTime<Utc>>,
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    (d.num_milliseconds() as f64 / 1000.0).max(0.0)
}

/// Pure: a table's RPO (seconds), the versions behind the source, and the basis.
pub fn table_rpo(now: DateTime<Utc>, facts: &TableFacts) -> (Option<f64>, Option<u64>, RpoBasis) {
    let Some((version, commit_time)) = facts.consistent else {
        return (None, None, RpoBasis::Unknown);
    };
    let Some(commit_time) = commit_time else {
        return (None, None, RpoBasis::Unknown);
    };
    if let Some((source_version, source_time)) = facts.source {
        let behind = source_version.saturating_sub(version);
        let rpo = if behind == 0 {
            Some(0.0)
        } else {
            source_time.map(|t| seconds(t - commit_time))
        };
        return (rpo, Some(behind), RpoBasis::Source);
    }
    match facts.canary_written_at {
        // Replication delivered the canary written after this commit, and nothing newer is
        // waiting: the table has not been written since. The loss is what the canary says.
        Some(canary) if !facts.pending && canary >= commit_time => {
            (Some(seconds(now - canary)), None, RpoBasis::Idle)
        }
        _ => (Some(seconds(now - commit_time)), None, RpoBasis::Now),
    }
}

/// All measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationOutput {
    /// Per bucket.
    pub buckets: Vec<BucketRpo>,
    /// Per critical Delta table.
    #[serde(default)]
    pub tables: Vec<TableRpo>,
    /// The Managed DR failover group's replication point, when the plan names a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_dr: Option<ManagedDrRpo>,
    /// Worst RPO, seconds.
    pub worst_rpo_seconds: Option<f64>,
    /// Every bucket and every table within objective.
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
            kind: RpoKind::Bucket,
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
    let tables = measure_tables(deps, run, &buckets, now).await;
    let managed_dr = match &run.plan.managed_dr {
        None => None,
        Some(m) => {
            let objective =
                u64::from(m.rpo_minutes.unwrap_or(run.plan.objectives.rpo_minutes)) * 60;
            let name = m.group_name();
            let read = match deps.workspaces.account(m).await {
                Ok(client) => client
                    .with_deadline(std::time::Instant::now() + SOURCE_TIMEOUT)
                    .get_failover_group(&name)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            Some(managed_dr_rpo(
                &name,
                read.as_ref().map_err(Clone::clone),
                Utc::now(),
                objective,
            ))
        }
    };
    let worst = buckets
        .iter()
        .map(|b| b.rpo_seconds)
        .chain(tables.iter().map(|t| t.rpo_seconds))
        .chain(managed_dr.iter().map(|m| m.rpo_seconds))
        .map(|s| s.unwrap_or(f64::INFINITY))
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        })
        .filter(|v| v.is_finite());
    Ok(ReplicationOutput {
        acceptable: buckets.iter().all(|b| b.ok)
            && tables.iter().all(|t| t.ok)
            && managed_dr.as_ref().is_none_or(|m| m.ok),
        worst_rpo_seconds: worst,
        buckets,
        tables,
        managed_dr,
        measured_at: now,
    })
}

/// Tables measured at once.
const TABLE_CONCURRENCY: usize = 16;
/// How long the source may take to answer for one table: a region that is down must not hold
/// the check.
const SOURCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

async fn measure_tables(
    deps: &Deps,
    run: &RunContext,
    buckets: &[BucketRpo],
    now: DateTime<Utc>,
) -> Vec<TableRpo> {
    use futures::StreamExt;
    let plan = &run.plan;
    // Futures built up front, not in a stream closure (keeps the handler's future `Send`).
    let measurements: Vec<_> = plan
        .replication
        .tables
        .iter()
        .map(|table| async move {
            let objective_seconds =
                u64::from(table.rpo_minutes.unwrap_or(plan.objectives.rpo_minutes)) * 60;
            let locations = match table.locations(&plan.replication.buckets) {
                Ok(l) => l,
                // The plan was validated; a plan edited in the ledger since is still refused.
                Err((field, why)) => {
                    return unknown_table(table, objective_seconds, format!("{field}: {why}"))
                }
            };
            let (from, to) = match run.direction {
                Direction::Failover => (&locations.source, &locations.replica),
                Direction::Failback => (&locations.replica, &locations.source),
            };
            let canary_written_at = locations
                .bucket_pair
                .as_ref()
                .and_then(|p| buckets.iter().find(|b| &b.name == p))
                .and_then(|b| b.replica_written_at);
            measure_table(
                deps,
                table,
                from,
                to,
                objective_seconds,
                canary_written_at,
                now,
            )
            .await
        })
        .collect();
    let mut tables: Vec<TableRpo> = futures::stream::iter(measurements)
        .buffer_unordered(TABLE_CONCURRENCY)
        .collect()
        .await;
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    tables
}

fn unknown_table(
    table: &crate::plan::DeltaTable,
    objective_seconds: u64,
    finding: String,
) -> TableRpo {
    TableRpo {
        kind: RpoKind::DeltaTable,
        name: table.name.clone(),
        replica: String::new(),
        consistent_version: None,
        commit_time: None,
        newest_listed_version: None,
        source_version: None,
        versions_behind: None,
        rpo_seconds: None,
        objective_seconds,
        ok: false,
        basis: RpoBasis::Unknown,
        findings: vec![finding],
        requests: 0,
    }
}

async fn measure_table(
    deps: &Deps,
    table: &crate::plan::DeltaTable,
    from: &TableLocation,
    to: &TableLocation,
    objective_seconds: u64,
    canary_written_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> TableRpo {
    let replica_reader = TableReader::new(&deps.aws.s3, to);
    let source_reader = TableReader::new(&deps.aws.s3, from);
    // The replica first: its checkpoint tells the source where to list from (two requests
    // there instead of three — S3 request rates, and moto's, are the bound at 50 tables).
    let replica = replica_reader.read_replica().await;
    let known = replica.as_ref().ok().and_then(|r| r.checkpoint);
    let source = tokio::time::timeout(SOURCE_TIMEOUT, source_reader.source_head(known)).await;
    let mut findings = Vec::new();
    let source = match source {
        Ok(Ok(Some(head))) => Some((head.version, head.commit_time)),
        Ok(Ok(None)) => {
            findings.push(format!("no Delta log at the source {}", from.uri()));
            None
        }
        Ok(Err(e)) => {
            findings.push(format!("the source did not answer: {e}"));
            None
        }
        Err(_) => {
            findings.push(format!(
                "the source did not answer within {} s",
                SOURCE_TIMEOUT.as_secs()
            ));
            None
        }
    };
    let replica = match replica {
        Ok(r) => r,
        Err(e) => {
            let mut t = unknown_table(
                table,
                objective_seconds,
                format!("the replica cannot be read: {e}"),
            );
            t.replica = to.uri();
            t.findings.extend(findings);
            t.requests = replica_reader.requests() + source_reader.requests();
            return t;
        }
    };
    let consistent = replica.consistency.version;
    let facts = TableFacts {
        consistent: consistent.map(|v| (v, replica.commit_time)),
        pending: replica.consistency.blocker.is_some()
            || replica
                .newest_listed
                .zip(consistent)
                .is_some_and(|(n, c)| n > c),
        source,
        canary_written_at,
    };
    let (rpo_seconds, versions_behind, basis) = table_rpo(now, &facts);
    let mut all_findings = replica.findings;
    if let Some(blocker) = &replica.consistency.blocker {
        all_findings.insert(0, blocker.to_string());
    }
    all_findings.extend(findings);
    TableRpo {
        kind: RpoKind::DeltaTable,
        name: table.name.clone(),
        replica: to.uri(),
        consistent_version: consistent,
        commit_time: replica.commit_time,
        newest_listed_version: replica.newest_listed,
        source_version: source.map(|(v, _)| v),
        versions_behind,
        rpo_seconds,
        objective_seconds,
        ok: rpo_acceptable(rpo_seconds, objective_seconds),
        basis,
        findings: all_findings,
        requests: replica_reader.requests() + source_reader.requests(),
    }
}

/// One row of the RPO summary shown to the approver and in the report, worst first.
#[derive(Debug, Clone, PartialEq)]
pub struct RpoRow<'a> {
    /// Bucket or table.
    pub kind: RpoKind,
    /// Label.
    pub name: &'a str,
    /// Measured, seconds.
    pub rpo_seconds: Option<f64>,
    /// Objective, seconds.
    pub objective_seconds: u64,
    /// Within objective.
    pub ok: bool,
    /// Consistent version (tables).
    pub version: Option<u64>,
    /// Commit time of that version (tables) or when the canary was written (buckets).
    pub as_of: Option<DateTime<Utc>>,
}

impl RpoRow<'_> {
    /// One line for the approver and the notification: kind, name, measured against the
    /// objective, the consistent version of a table.
    pub fn line(&self) -> String {
        let kind = match self.kind {
            RpoKind::Bucket => "bucket",
            RpoKind::DeltaTable => "table",
            RpoKind::ManagedDr => "Managed DR group",
        };
        let measured = self
            .rpo_seconds
            .map(|s| format!("{s:.0} s"))
            .unwrap_or_else(|| "unknown".into());
        let version = self
            .version
            .map(|v| format!(" at version {v}"))
            .unwrap_or_default();
        format!(
            "{kind} {}: {measured} (objective {} s){version} — {}",
            self.name,
            self.objective_seconds,
            if self.ok { "ok" } else { "NOT ok" }
        )
    }
}

impl ReplicationOutput {
    /// Every measurement, worst first: not ok before ok, unknown before known, then by the
    /// share of the objective used.
    pub fn worst_first(&self) -> Vec<RpoRow<'_>> {
        let mut rows: Vec<RpoRow<'_>> = self
            .buckets
            .iter()
            .map(|b| RpoRow {
                kind: RpoKind::Bucket,
                name: &b.name,
                rpo_seconds: b.rpo_seconds,
                objective_seconds: b.objective_seconds,
                ok: b.ok,
                version: None,
                as_of: b.replica_written_at,
            })
            .chain(self.tables.iter().map(|t| RpoRow {
                kind: RpoKind::DeltaTable,
                name: &t.name,
                rpo_seconds: t.rpo_seconds,
                objective_seconds: t.objective_seconds,
                ok: t.ok,
                version: t.consistent_version,
                as_of: t.commit_time,
            }))
            .chain(self.managed_dr.iter().map(|m| RpoRow {
                kind: RpoKind::ManagedDr,
                name: &m.name,
                rpo_seconds: m.rpo_seconds,
                objective_seconds: m.objective_seconds,
                ok: m.ok,
                version: None,
                as_of: m.replication_point,
            }))
            .collect();
        let share = |r: &RpoRow<'_>| {
            r.rpo_seconds
                .map_or(f64::INFINITY, |s| s / (r.objective_seconds.max(1) as f64))
        };
        rows.sort_by(|a, b| {
            a.ok.cmp(&b.ok)
                .then(share(b).total_cmp(&share(a)))
                .then(a.name.cmp(b.name))
        });
        rows
    }
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

    #[test]
    fn table_rpo_table() {
        let t = |m: i64| DateTime::<Utc>::from_timestamp(1_800_000_000 + m * 60, 0).expect("valid");
        let now = t(100);
        struct Case {
            name: &'static str,
            facts: TableFacts,
            want: (Option<f64>, Option<u64>, RpoBasis),
        }
        let base = TableFacts {
            consistent: Some((7, Some(t(90)))),
            pending: false,
            source: None,
            canary_written_at: None,
        };
        let cases = [
            Case {
                name: "no consistent version: unknown",
                facts: TableFacts {
                    consistent: None,
                    ..base
                },
                want: (None, None, RpoBasis::Unknown),
            },
            Case {
                name: "no commit time: unknown",
                facts: TableFacts {
                    consistent: Some((7, None)),
                    ..base
                },
                want: (None, None, RpoBasis::Unknown),
            },
            Case {
                name: "caught up with the source: zero whatever the age",
                facts: TableFacts {
                    source: Some((7, Some(t(90)))),
                    consistent: Some((7, Some(t(10)))),
                    ..base
                },
                want: (Some(0.0), Some(0), RpoBasis::Source),
            },
            Case {
                name: "two versions behind the source",
                facts: TableFacts {
                    source: Some((9, Some(t(95)))),
                    ..base
                },
                want: (Some(300.0), Some(2), RpoBasis::Source),
            },
            Case {
                name: "source down, commit pending at the replica: age of the consistent version",
                facts: TableFacts {
                    pending: true,
                    canary_written_at: Some(t(99)),
                    ..base
                },
                want: (Some(600.0), None, RpoBasis::Now),
            },
            Case {
                name: "source down, idle table, fresh canary: the canary's age",
                facts: TableFacts {
                    canary_written_at: Some(t(99)),
                    ..base
                },
                want: (Some(60.0), None, RpoBasis::Idle),
            },
            Case {
                name: "source down, canary older than the commit: age of the commit",
                facts: TableFacts {
                    canary_written_at: Some(t(80)),
                    ..base
                },
                want: (Some(600.0), None, RpoBasis::Now),
            },
            Case {
                name: "source down, no canary: age of the commit",
                facts: base,
                want: (Some(600.0), None, RpoBasis::Now),
            },
        ];
        for case in cases {
            assert_eq!(table_rpo(now, &case.facts), case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_managed_dr_replication_point_is_measured_against_its_objective() {
        use crate::databricks::disaster_recovery::{FailoverGroup, FailoverGroupState};
        let now = Utc::now();
        let group = |point: Option<i64>, blocked: bool, state| FailoverGroup {
            name: "accounts/a/failover-groups/g".into(),
            effective_primary_region: Some("us-east-1".into()),
            regions: vec![],
            state: Some(state),
            etag: None,
            replication_point: point.map(|s| now - chrono::Duration::seconds(s)),
            has_replication_point_blocking_errors: Some(blocked),
        };
        let active = FailoverGroupState::Active;
        // (the group or the API's error, rpo, ok, the finding contains)
        type Case<'a> = (
            Result<FailoverGroup, String>,
            Option<f64>,
            bool,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (Ok(group(Some(60), false, active)), Some(60.0), true, None),
            (Ok(group(Some(900), false, active)), Some(900.0), true, None),
            (
                Ok(group(Some(901), false, active)),
                Some(901.0),
                false,
                None,
            ),
            (
                Ok(group(Some(30), true, active)),
                Some(30.0),
                true,
                Some("not advancing"),
            ),
            (
                Ok(group(None, false, FailoverGroupState::InitialReplication)),
                None,
                false,
                Some("InitialReplication"),
            ),
            // A replication point in the future (clock skew) is no data at risk, not negative.
            (Ok(group(Some(-5), false, active)), Some(0.0), true, None),
            (
                Err("connection refused".into()),
                None,
                false,
                Some("did not answer"),
            ),
        ];
        for (read, rpo, ok, finding) in cases {
            let m = managed_dr_rpo("g", read.as_ref().map_err(Clone::clone), now, 900);
            assert_eq!(m.kind, RpoKind::ManagedDr);
            assert_eq!(m.rpo_seconds, rpo, "{read:?}");
            assert_eq!(m.ok, ok, "{read:?}");
            match finding {
                Some(f) => assert!(m.finding.as_deref().is_some_and(|x| x.contains(f)), "{m:?}"),
                None => assert!(m.finding.is_none(), "{m:?}"),
            }
        }
    }

    #[test]
    fn worst_first_puts_breaches_and_unknowns_on_top() {
        let bucket = |name: &str, rpo: Option<f64>, ok: bool| BucketRpo {
            kind: RpoKind::Bucket,
            name: name.into(),
            rpo_seconds: rpo,
            objective_seconds: 900,
            ok,
            replica_written_at: None,
            replication_status: "Enabled".into(),
            source_canary_age_seconds: None,
            finding: None,
        };
        let table = |name: &str, rpo: Option<f64>, objective: u64, ok: bool| TableRpo {
            kind: RpoKind::DeltaTable,
            name: name.into(),
            replica: String::new(),
            consistent_version: Some(1),
            commit_time: None,
            newest_listed_version: Some(1),
            source_version: None,
            versions_behind: None,
            rpo_seconds: rpo,
            objective_seconds: objective,
            ok,
            basis: RpoBasis::Now,
            findings: vec![],
            requests: 3,
        };
        let out = ReplicationOutput {
            buckets: vec![
                bucket("lake", Some(30.0), true),
                bucket("logs", None, false),
            ],
            tables: vec![
                table("orders", Some(1000.0), 900, false),
                table("customers", Some(600.0), 900, true),
                table("events", Some(100.0), 60, false),
            ],
            worst_rpo_seconds: None,
            managed_dr: None,
            acceptable: false,
            measured_at: Utc::now(),
        };
        let names: Vec<&str> = out.worst_first().iter().map(|r| r.name).collect();
        assert_eq!(names, ["logs", "events", "orders", "customers", "lake"]);
    }
}
