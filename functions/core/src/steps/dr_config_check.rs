//! `dr-config-check`: the seed's failover step 2 — is the target's configuration up to date?
//! Compares the target's jobs, pools, warehouses and clusters with the source (live, or the
//! last snapshot in the ledger when the source is down), and checks that everything the plan
//! starts or validates exists at the target. Missing plan objects block; other drift warns.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::drift::check::{ConfigCheckOutput, DriftSummary, SHOWN};
use crate::drift::sites::compare;
use crate::drift::snapshot::ConfigSnapshot;
use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    databricks::{
        jobs::{Activation, PauseStatus},
        WorkspaceClient,
    },
    drift::{collect::DetailCache, DriftItem},
    plan::Plan,
    run::RunContext,
};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigCheckInput {
    /// The run.
    pub run: RunContext,
}

/// Pure: activations live at the source that the target cannot take over — the job is missing
/// there, or lacks that schedule/trigger/continuous setting. Each is a named failure of "none
/// left behind", known before anything is touched.
pub fn left_behind(source: &ConfigSnapshot, target: &ConfigSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (name, activation) in source.live_activations() {
        match target.activations.get(name) {
            None if !target.jobs.contains_key(name) => out.push(format!(
                "job {name}: {} live at the source, job missing at the target",
                activation.field()
            )),
            found => {
                let defined = found.is_some_and(|l| l.iter().any(|(a, _)| *a == activation));
                if !defined {
                    out.push(format!(
                        "job {name}: {} live at the source, not defined at the target",
                        activation.field()
                    ));
                }
            }
        }
    }
    out
}

/// Takes a snapshot of a workspace's configuration with an empty per-object cache and the
/// plan's per-object budget (previews and one-off reads).
pub async fn snapshot(
    client: &WorkspaceClient,
    plan: &Plan,
) -> Result<ConfigSnapshot, crate::databricks::ApiError> {
    let deadline = Instant::now() + Duration::from_secs(u64::from(plan.drift.detail_seconds));
    Ok(
        snapshot_with(client, plan, DetailCache::default(), deadline)
            .await?
            .0,
    )
}

/// Takes a snapshot of a workspace's configuration, refreshing `cache` until
/// `detail_deadline`; returns the snapshot and the refreshed cache.
///
/// `activations` leave out what the plan excludes from the fence (it stays live at the source
/// by design, so the other site must never take it over).
pub async fn snapshot_with(
    client: &WorkspaceClient,
    plan: &Plan,
    cache: DetailCache,
    detail_deadline: Instant,
) -> Result<(ConfigSnapshot, DetailCache), crate::databricks::ApiError> {
    let site = crate::drift::collect::read(client, cache, detail_deadline).await?;
    let jobs = &site.jobs;
    let snapshot = ConfigSnapshot {
        taken_at: Some(Utc::now()),
        jobs: jobs
            .iter()
            .map(|j| {
                let cron = j
                    .settings
                    .schedule
                    .as_ref()
                    .map(|s| s.quartz_cron_expression.clone())
                    .unwrap_or_default();
                let tasks = j
                    .settings
                    .extra
                    .get("tasks")
                    .and_then(|t| t.as_array())
                    .map_or(0, Vec::len);
                (j.settings.name.clone(), (cron, tasks))
            })
            .collect(),
        pools: site
            .pools
            .iter()
            .map(|p| (p.instance_pool_name.clone(), p.node_type_id.clone()))
            .collect(),
        warehouses: site
            .warehouses
            .iter()
            .map(|w| (w.name.clone(), w.cluster_size.clone().unwrap_or_default()))
            .collect(),
        clusters: site
            .clusters
            .iter()
            .map(|c| c.cluster_name.clone())
            .collect(),
        activations: jobs
            .iter()
            .filter(|j| !plan.excluded(&j.settings.name, &j.settings.tags))
            .map(|j| {
                let list = [
                    Activation::Schedule,
                    Activation::Continuous,
                    Activation::Trigger,
                ]
                .into_iter()
                .filter_map(|a| {
                    j.settings
                        .pause_status(a)
                        .map(|p| (a, p == PauseStatus::Unpaused))
                })
                .collect();
                (j.settings.name.clone(), list)
            })
            .collect(),
        objects: site.objects,
        not_compared: site.not_compared,
        coverage: site.coverage,
    };
    Ok((snapshot, site.details))
}

/// Pure: the output's lists and counts from the items (blocking first, each list cut at
/// [`SHOWN`]).
pub fn summarize(
    items: &[DriftItem],
    plan_blocking: Vec<String>,
) -> (Vec<String>, Vec<String>, Vec<String>, DriftSummary) {
    let mut summary = DriftSummary::default();
    let mut missing = Vec::new();
    let mut differing = Vec::new();
    let mut blocking = plan_blocking;
    let plan_blocks = blocking.len();
    for item in items {
        let entry = summary
            .by_kind
            .entry(item.object.kind.name().to_string())
            .or_default();
        entry.0 += 1;
        if item.blocking {
            entry.1 += 1;
            summary.blocking += 1;
            if blocking.len() < SHOWN {
                blocking.push(item.line());
            }
        }
        let list = if item.field.is_none() {
            summary.missing += 1;
            &mut missing
        } else {
            summary.differing += 1;
            &mut differing
        };
        if list.len() < SHOWN {
            list.push(item.line());
        }
    }
    summary.blocking += plan_blocks;
    (missing, differing, blocking, summary)
}

/// What a scheduled snapshot did at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum SiteSnapshot {
    /// Taken now and stored.
    Taken {
        /// Jobs in it.
        jobs: usize,
        /// Per-object reads (ACLs, pipeline specs) known after this one.
        #[serde(default)]
        details_known: usize,
        /// Per-object reads the site's objects need.
        #[serde(default)]
        details_needed: usize,
    },
    /// The stored one is younger than `monitoring.snapshot_minutes`: nothing read.
    Fresh {
        /// Its age, seconds.
        age_seconds: i64,
    },
    /// Not read on purpose (a run holds the plan's lock, or the site is fenced: production
    /// runs at the other one); the stored snapshot, from before, is kept.
    Kept {
        /// Why.
        reason: String,
        /// Its age, seconds (`None`: there is none).
        age_seconds: Option<i64>,
    },
    /// The site did not answer; the stored snapshot (if any) is kept, with its age.
    Unreachable {
        /// The error.
        error: String,
        /// Age of the snapshot a failover would compare with, seconds (`None`: there is none).
        kept_age_seconds: Option<i64>,
    },
}

/// Output of a scheduled snapshot: each site's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledSnapshotOutput {
    /// The primary.
    pub primary: SiteSnapshot,
    /// DR (what a failback compares with when DR is gone).
    pub dr: SiteSnapshot,
}

/// Time a scheduled snapshot spends per site on per-object reads (ACLs, pipeline specs):
/// at 15 req/s about 450 of the stalest per tick, so a 10,000-job workspace is fully covered in
/// a few hours and kept current after that; the Lambda's 120 s holds both sites.
pub const SCHEDULED_DETAIL_BUDGET: Duration = Duration::from_secs(30);

/// Pure: a stored snapshot taken at `taken_at` is still fresh for an interval of `minutes`
/// (a tick's worth of slack: the schedule's 5-minute ticks never land exactly on the interval).
pub fn snapshot_fresh(
    taken_at: Option<chrono::DateTime<Utc>>,
    now: chrono::DateTime<Utc>,
    minutes: u32,
) -> bool {
    taken_at.is_some_and(|t| {
        let age = now - t;
        age >= chrono::Duration::zero()
            && age < chrono::Duration::minutes(i64::from(minutes)) - chrono::Duration::seconds(30)
    })
}

/// The snapshot schedule's tick (`{"scheduled_snapshot": true}`): each site's configuration,
/// every `monitoring.snapshot_minutes`, so a failover with the primary gone compares with (and
/// activates from) a recent state rather than whatever the last run saw.
#[instrument(skip_all)]
pub async fn scheduled_snapshot(deps: &Deps) -> Result<ScheduledSnapshotOutput, StepError> {
    let plan = crate::kernel::load_plan(deps).await?;
    // A run in progress is changing both sites (a fence pauses everything): not a state to
    // compare with later. A fenced site keeps the snapshot from before its fence: what was live
    // there is what a failback restores.
    let running = deps
        .ledger
        .get::<serde_json::Value>(&keys::lock(&plan.name))
        .await?
        .map(|l| l.value["run_id"].as_str().unwrap_or("a run").to_string());
    let active = deps
        .ledger
        .get::<crate::run::ActiveSite>(&keys::active_site(&plan.name))
        .await?
        .map(|a| a.value);
    let mut results = Vec::new();
    for role in [crate::plan::SiteRole::Primary, crate::plan::SiteRole::Dr] {
        let key = keys::snapshot(&plan.name, role);
        let stored = deps
            .ledger
            .get::<crate::drift::snapshot::SnapshotHead>(&key)
            .await?;
        let taken_at = stored.as_ref().and_then(|s| s.value.taken_at);
        let now = Utc::now();
        let age = taken_at.map(|t| (now - t).num_seconds().max(0));
        // Only the primary while production runs at DR: its snapshot from before the fence is
        // what the failback restores. DR dormant after a failback is snapshotted as usual.
        let fenced_by = active
            .as_ref()
            .filter(|a| {
                a.active == crate::plan::SiteRole::Dr && role == crate::plan::SiteRole::Primary
            })
            .map(|a| a.run_id.clone());
        if let Some(reason) = running
            .as_ref()
            .map(|r| format!("run {r} holds the plan's lock"))
            .or(fenced_by
                .map(|r| format!("fenced since run {r}: production runs at the other site")))
        {
            results.push(SiteSnapshot::Kept {
                reason,
                age_seconds: age,
            });
            continue;
        }
        if snapshot_fresh(taken_at, now, plan.monitoring.snapshot_minutes) {
            results.push(SiteSnapshot::Fresh {
                age_seconds: age.unwrap_or(0),
            });
            continue;
        }
        let client = deps
            .workspaces
            .client(plan.site(role))
            .await?
            .with_deadline(Instant::now() + Duration::from_secs(20));
        let cache = load_details(deps, &plan.name, role).await?;
        let detail_deadline = Instant::now() + SCHEDULED_DETAIL_BUDGET;
        results.push(
            match snapshot_with(&client, &plan, cache, detail_deadline).await {
                Ok((s, details)) => {
                    deps.ledger.put(&key, &s).await?;
                    deps.ledger
                        .put(&keys::snapshot_details(&plan.name, role), &details)
                        .await?;
                    SiteSnapshot::Taken {
                        jobs: s.jobs.len(),
                        details_known: s.coverage.known,
                        details_needed: s.coverage.needed,
                    }
                }
                Err(e) => SiteSnapshot::Unreachable {
                    error: e.to_string(),
                    kept_age_seconds: age,
                },
            },
        );
    }
    let dr = results
        .pop()
        .ok_or_else(|| StepError::Refused("no DR result".into()))?;
    let primary = results
        .pop()
        .ok_or_else(|| StepError::Refused("no primary result".into()))?;
    Ok(ScheduledSnapshotOutput { primary, dr })
}

/// Compares the target with the source.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(
    deps: &Deps,
    input: ConfigCheckInput,
    budget: Instant,
) -> Result<ConfigCheckOutput, StepError> {
    let run = &input.run;
    let plan = &run.plan;
    let (source_role, target_role) = run.direction.roles();
    // Per-object reads get the plan's budget; the listings of both sites run meanwhile. The
    // target must be read within the Lambda's time; a source that does not answer in 20 s is
    // compared through its last snapshot.
    let detail_deadline =
        budget.min(Instant::now() + Duration::from_secs(u64::from(plan.drift.detail_seconds)));
    let target_client = deps
        .workspaces
        .client(plan.site(target_role))
        .await?
        .with_deadline(budget);
    let source_client = deps
        .workspaces
        .client(plan.site(source_role))
        .await?
        .with_deadline(budget.min(Instant::now() + Duration::from_secs(20)));
    let key = keys::snapshot(&plan.name, source_role);
    let (source_cache, target_cache) = futures::try_join!(
        load_details(deps, &plan.name, source_role),
        load_details(deps, &plan.name, target_role)
    )?;
    let (target, source_read) = futures::join!(
        snapshot_with(&target_client, plan, target_cache, detail_deadline),
        snapshot_with(&source_client, plan, source_cache, detail_deadline)
    );
    let (target, target_details) = target?;
    let mut source_error = None;
    let (source, compared_with) = match source_read {
        Ok((s, details)) => {
            deps.ledger.put(&key, &s).await?;
            deps.ledger
                .put(&keys::snapshot_details(&plan.name, source_role), &details)
                .await?;
            (Some(s), "live")
        }
        Err(e) => {
            // Said in the output: a source that answers but too slowly is compared through its
            // snapshot too, and the operator should know which it was.
            source_error = Some(crate::identity::bounded(&e.to_string(), 300));
            match deps.ledger.get::<ConfigSnapshot>(&key).await? {
                Some(s) => (Some(s.value), "snapshot"),
                None => (None, "none"),
            }
        }
    };
    deps.ledger
        .put(&keys::snapshot(&plan.name, target_role), &target)
        .await?;
    deps.ledger
        .put(
            &keys::snapshot_details(&plan.name, target_role),
            &target_details,
        )
        .await?;
    let (items, plan_blocking) = compare(plan, run.direction, source.as_ref(), &target);
    let record = keys::drift(&run.run_id);
    deps.ledger.put(&record, &items).await?;
    let plan_blocks = plan_blocking.len();
    let (missing_at_target, differing, blocking, mut summary) = summarize(&items, plan_blocking);
    summary.record = Some(record);
    summary.target_coverage = target.coverage.clone();
    if let Some(s) = &source {
        summary.source_coverage = s.coverage.clone();
    }
    summary.not_compared = source
        .iter()
        .flat_map(|s| {
            s.not_compared
                .iter()
                .map(|(k, e)| format!("{} at the source: {e}", k.name()))
        })
        .chain(
            target
                .not_compared
                .iter()
                .map(|(k, e)| format!("{} at the target: {e}", k.name())),
        )
        .collect();
    if source
        .as_ref()
        .is_some_and(|s| s.objects.is_empty() && !s.jobs.is_empty())
    {
        summary.not_compared.push(
            "the source's snapshot predates the per-object comparison: only jobs' activations were compared"
                .into(),
        );
    }
    let mut left_behind = source
        .as_ref()
        .map(|s| left_behind(s, &target))
        .unwrap_or_default();
    summary.left_behind = left_behind.len();
    left_behind.truncate(SHOWN);
    let source_age_seconds = source
        .as_ref()
        .and_then(|s| s.taken_at)
        .map(|t| (Utc::now() - t).num_seconds().max(0));
    // An operator may accept drift (a DR repo one commit behind mid-incident) but never a
    // missing object the plan starts or validates: there is nothing to start.
    let accepted = run
        .accept_drift
        .as_ref()
        .filter(|_| summary.blocking > plan_blocks)
        .map(|a| {
            format!(
                "{} blocking drift item(s) accepted by {} at {}: {}",
                summary.blocking - plan_blocks,
                a.by,
                a.at.to_rfc3339(),
                a.reason
            )
        });
    let ok = plan_blocks == 0 && (summary.blocking == plan_blocks || accepted.is_some());
    let mut out = ConfigCheckOutput {
        compared_with: compared_with.into(),
        ok,
        accepted,
        source_error,
        missing_at_target,
        differing,
        blocking,
        left_behind,
        source_age_seconds,
        summary,
    };
    fit(&mut out);
    Ok(out)
}

/// Bytes the step's output may take in the state document (Step Functions refuses a state
/// over 256 KB; the run and the other checks' results share it).
pub const MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// Pure: cuts the output's lists until it fits [`MAX_OUTPUT_BYTES`] (the counts and the ledger
/// record keep the whole).
pub fn fit(out: &mut ConfigCheckOutput) {
    let size = |o: &ConfigCheckOutput| serde_json::to_vec(o).map_or(usize::MAX, |v| v.len());
    while size(out) > MAX_OUTPUT_BYTES {
        let longest = [
            out.missing_at_target.len(),
            out.differing.len(),
            out.blocking.len(),
            out.left_behind.len(),
            out.summary.not_compared.len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        if longest == 0 {
            break;
        }
        let half = longest.div_ceil(2).max(1) - 1;
        for list in [
            &mut out.missing_at_target,
            &mut out.differing,
            &mut out.blocking,
            &mut out.left_behind,
            &mut out.summary.not_compared,
        ] {
            if list.len() > half {
                list.truncate(half);
            }
        }
    }
}

/// A site's per-object cache (empty when there is none yet).
async fn load_details(
    deps: &Deps,
    plan: &str,
    role: crate::plan::SiteRole,
) -> Result<DetailCache, StepError> {
    // A cache written by another version (or damaged) is only a cache: start afresh.
    match deps
        .ledger
        .get::<DetailCache>(&keys::snapshot_details(plan, role))
        .await
    {
        Ok(c) => Ok(c.map(|c| c.value).unwrap_or_default()),
        Err(crate::ledger::LedgerError::Corrupt { .. }) => Ok(DetailCache::default()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod snapshot_schedule_tests {
    use super::*;

    #[test]
    fn an_output_too_large_for_the_state_document_is_cut_and_keeps_its_counts() {
        let long = |n: usize, tag: &str| -> Vec<String> {
            (0..n)
                .map(|i| format!("{tag} {i}: {}", "x".repeat(900)))
                .collect()
        };
        let mut out = ConfigCheckOutput {
            compared_with: "live".into(),
            missing_at_target: long(SHOWN, "missing"),
            differing: long(SHOWN, "differing"),
            blocking: long(SHOWN, "blocking"),
            left_behind: long(SHOWN, "left"),
            source_age_seconds: None,
            summary: DriftSummary {
                missing: 9_000,
                blocking: 9_000,
                ..Default::default()
            },
            source_error: None,
            accepted: None,
            ok: false,
        };
        assert!(serde_json::to_vec(&out).unwrap().len() > MAX_OUTPUT_BYTES);
        fit(&mut out);
        assert!(serde_json::to_vec(&out).unwrap().len() <= MAX_OUTPUT_BYTES);
        assert!(!out.blocking.is_empty(), "something is still shown");
        assert_eq!((out.summary.missing, out.summary.blocking), (9_000, 9_000));
        // A small output is left alone.
        let mut small = out.clone();
        small.blocking.truncate(2);
        small.missing_at_target.clear();
        small.differing.clear();
        small.left_behind.clear();
        let before = small.clone();
        fit(&mut small);
        assert_eq!(small, before);
    }

    #[test]
    fn a_snapshot_is_retaken_once_its_interval_is_nearly_over() {
        let now = Utc::now();
        let ago = |s: i64| Some(now - chrono::Duration::seconds(s));
        // (taken, minutes, fresh)
        let cases = [
            (None, 15, false),
            (ago(60), 15, true),
            (ago(14 * 60), 15, true),
            // Within the last 30 s of the interval: the tick that lands there takes it.
            (ago(15 * 60 - 20), 15, false),
            (ago(15 * 60), 15, false),
            (ago(3 * 3600), 15, false),
            // Taken "in the future" (a clock ahead): not trusted as fresh.
            (ago(-120), 15, false),
            (ago(4 * 60), 5, true),
            (ago(5 * 60), 5, false),
        ];
        for (taken, minutes, fresh) in cases {
            assert_eq!(
                snapshot_fresh(taken, now, minutes),
                fresh,
                "{taken:?} / {minutes}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(jobs: &[(&str, &[(Activation, bool)])]) -> ConfigSnapshot {
        ConfigSnapshot {
            jobs: jobs
                .iter()
                .map(|(n, _)| (n.to_string(), (String::new(), 1)))
                .collect(),
            activations: jobs
                .iter()
                .map(|(n, l)| (n.to_string(), l.to_vec()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn left_behind_names_each_activation_the_target_cannot_take() {
        use Activation::*;
        let source = snap(&[
            ("etl", &[(Schedule, true)]),
            ("stream", &[(Continuous, true)]),
            ("arrivals", &[(Trigger, true)]),
            ("paused", &[(Schedule, false)]),
            ("gone", &[(Schedule, true)]),
        ]);
        let table: &[(&str, ConfigSnapshot, Vec<&str>)] = &[
            (
                "mirror",
                snap(&[
                    ("etl", &[(Schedule, false)]),
                    ("stream", &[(Continuous, false)]),
                    ("arrivals", &[(Trigger, false)]),
                    ("paused", &[(Schedule, false)]),
                    ("gone", &[(Schedule, false)]),
                ]),
                vec![],
            ),
            (
                "missing job and missing schedule",
                snap(&[
                    ("etl", &[]),
                    ("stream", &[(Continuous, false)]),
                    ("arrivals", &[(Schedule, false)]),
                    ("paused", &[]),
                ]),
                vec![
                    "job arrivals: trigger live at the source, not defined at the target",
                    "job etl: schedule live at the source, not defined at the target",
                    "job gone: schedule live at the source, job missing at the target",
                ],
            ),
        ];
        for (name, target, want) in table {
            let mut got = left_behind(&source, target);
            got.sort();
            assert_eq!(got, *want, "{name}");
        }
    }
}
