//! `activate-schedules`: the seed's failover step 9 — unpause at the target exactly what was
//! live at the source, never while the source's twin is live (invariant 1), and leave nothing
//! behind (invariant 6).
//!
//! It runs beside the sweep, not after it: each activation goes live at the target as soon as
//! *that job* is confirmed fenced at the source (the sweep's handoff chunks, or the fence
//! record), in next-fire order; the rest follows when the whole gate opens (source fence
//! confirmed, or a data-fenced override — see [`crate::fence::gate`]). Each invocation works in
//! a time slice and records per-job outcomes in `runs/<id>/activation.json`, so a 10,000-job
//! activation spans invocations, resumes after a crash, and sends one effective write per job
//! (a job already live at the target is recorded, not written again). A job the target cannot
//! take (missing, or lacking that schedule/trigger) is a named failure, never a silent skip.
//! The plan's one-time jobs (seed step 8) run once the whole gate is open.
//!
//! `restore_source` (abort-and-restore): the same at the *source*, from its own fence record,
//! once the target is confirmed fenced again.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use tracing::{info, instrument, warn};

use crate::fence::gate::Gate;
use crate::fence::handoff::{
    ActivationEntry, ActivationOutcome, ActivationOutput, ActivationRecord,
};
use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    databricks::{
        jobs::{pause_field, Activation, Job, JobId, PauseStatus},
        WorkspaceClient,
    },
    fence::{
        gate::{may_activate, GateOverride},
        handoff, FenceRecord, ResourceKind,
    },
    run::RunContext,
    schedule::next_fire,
};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ActivationInput {
    /// The run.
    pub run: RunContext,
    /// Abort-and-restore: reactivate the source from its own fence record.
    #[serde(default)]
    pub restore_source: bool,
}

/// An activation to hand over, by the name the target knows it under.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Candidate {
    /// Job name.
    pub name: String,
    /// Which activation.
    pub activation: Activation,
}

impl Candidate {
    fn key(&self) -> String {
        format!("{}:{}", self.activation.field(), self.name)
    }
}

fn kind_activation(kind: ResourceKind) -> Option<Activation> {
    match kind {
        ResourceKind::Schedule => Some(Activation::Schedule),
        ResourceKind::Continuous => Some(Activation::Continuous),
        ResourceKind::Trigger => Some(Activation::Trigger),
        _ => None,
    }
}

/// Pure: what to hand over and which of it is confirmed fenced at the source, from the source's
/// fence record (every activation it found live) and the handoff entries seen so far.
///
/// A source never reached (unreachable from the start) has an empty record: what was live there
/// then comes from its latest configuration snapshot (`fallback`), none of it confirmed — only
/// the whole gate (an override on a confirmed data fence) lets it go live.
pub fn handover(
    fence: &FenceRecord,
    handed_off: &BTreeMap<String, DateTime<Utc>>,
    fallback: &[(String, Activation)],
) -> Vec<(Candidate, Option<DateTime<Utc>>, bool)> {
    if fence.inventoried_at.is_none() {
        let mut out: Vec<_> = fallback
            .iter()
            .map(|(name, activation)| {
                (
                    Candidate {
                        name: name.clone(),
                        activation: *activation,
                    },
                    None,
                    false,
                )
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out.dedup_by(|a, b| a.0 == b.0);
        return out;
    }
    let mut out: Vec<(Candidate, Option<DateTime<Utc>>, bool)> = fence
        .resources
        .iter()
        .filter_map(|(key, r)| {
            let activation = kind_activation(r.kind)?;
            let fenced_at = handed_off.get(key).copied();
            Some((
                Candidate {
                    name: r.name.clone(),
                    activation,
                },
                fenced_at,
                r.confirmed || fenced_at.is_some(),
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// Pure: what the target does with one candidate, from its current job (if any).
pub fn decide(job: Option<&Job>, activation: Activation) -> Result<(), ActivationOutcome> {
    let Some(job) = job else {
        return Err(ActivationOutcome::Missing);
    };
    match job.settings.pause_status(activation) {
        None => Err(ActivationOutcome::NotDefined),
        Some(PauseStatus::Unpaused) => Err(ActivationOutcome::AlreadyLive),
        Some(PauseStatus::Paused) => Ok(()),
    }
}

/// Pure: order of activation — continuous jobs first (they run now), then schedules by next
/// fire time, then triggers.
pub fn order_key(job: Option<&Job>, activation: Activation, now: DateTime<Utc>) -> (u8, i64) {
    match activation {
        Activation::Continuous => (0, 0),
        Activation::Schedule => (
            1,
            job.and_then(|j| j.settings.schedule.as_ref())
                .and_then(|s| next_fire(s, now))
                .map(|t| t.timestamp_millis())
                .unwrap_or(i64::MAX),
        ),
        Activation::Trigger => (2, 0),
    }
}

/// Median and 99th percentile of gaps, ms.
fn gap_stats(mut gaps: Vec<i64>) -> Option<(u64, u64)> {
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let at = |q: f64| gaps[((gaps.len() - 1) as f64 * q).round() as usize].max(0) as u64;
    Some((at(0.5), at(0.99)))
}

/// Longest a single invocation keeps polling before handing back to the state machine (the
/// Lambda deadline comes first): each invocation lists the target's jobs once, which at 10,000
/// jobs costs 5 s of its read limit, so slices are long.
const SLICE: Duration = Duration::from_secs(600);
/// Poll interval for new handoff chunks (written every 500 ms) and answers.
const POLL: Duration = Duration::from_millis(250);
/// The fence record (megabytes at 10,000 jobs) is re-read at most this often: per-job
/// confirmations arrive by handoff chunks; the record only adds the whole-site status.
const FENCE_REREAD: Duration = Duration::from_secs(15);
/// The activation record (resume state) is written at most this often, and at the end: a crash
/// loses at most this much bookkeeping, never a write (a re-listed target shows it live).
const RECORD_EVERY: Duration = Duration::from_secs(15);
/// Concurrent activation writes (the client's limiter holds the rate).
const IN_FLIGHT: usize = 4;

/// Applies the gate and activates what it allows.
#[instrument(skip_all, fields(run = %input.run.run_id, restore = input.restore_source))]
pub async fn handle(
    deps: &Deps,
    input: ActivationInput,
    deadline: Instant,
) -> Result<ActivationOutput, StepError> {
    let run = &input.run;
    let (source_role, target_role) = run.direction.roles();
    // Where to activate, whose fence record says what was live, whose fence gates it.
    let (activate_at, restore_key, gate_key) = if input.restore_source {
        (
            source_role,
            keys::fence(&run.run_id, source_role),
            keys::fence(&run.run_id, target_role),
        )
    } else {
        match &run.restore_from {
            // A failback restores what was live at the primary before the failover.
            Some(previous) => (
                target_role,
                keys::fence(previous, target_role),
                keys::fence(&run.run_id, source_role),
            ),
            None => (
                target_role,
                keys::fence(&run.run_id, source_role),
                keys::fence(&run.run_id, source_role),
            ),
        }
    };
    let record_key = keys::activation(&run.run_id, input.restore_source);
    let mut record = deps
        .ledger
        .get::<ActivationRecord>(&record_key)
        .await?
        .map(|v| v.value)
        .unwrap_or_default();
    let stop = deadline.min(Instant::now() + SLICE);
    let client = deps.workspaces.client(run.plan.site(activate_at)).await?;
    let jobs: BTreeMap<String, Job> = client
        .all_jobs()
        .await?
        .into_iter()
        .map(|j| (j.settings.name.clone(), j))
        .collect();
    let mut handed_off: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut fence: Option<FenceRecord> = None;
    let mut restore: Option<FenceRecord> = None;
    let mut fence_read_at: Option<Instant> = None;
    let mut gate_override: Option<GateOverride> = None;
    // What was live at a source never reached: its latest snapshot (read once, if needed).
    let mut fallback: Vec<(String, Activation)> = Vec::new();
    let mut fallback_read = false;
    let mut recorded_at = Instant::now();
    let mut writer = Writer::spawn(client.clone(), stop);
    let mut queued: BTreeSet<String> = BTreeSet::new();
    let mut idle_polls = 0u32;
    loop {
        // Waiting on the whole gate (nothing handed off): look at the record often; streaming
        // handoffs: seldom (it is megabytes at 10,000 jobs).
        let reread = if idle_polls > 2 {
            Duration::from_secs(1)
        } else {
            FENCE_REREAD
        };
        if fence_read_at.is_none_or(|t| t.elapsed() >= reread) {
            fence = deps
                .ledger
                .get::<FenceRecord>(&gate_key)
                .await?
                .map(|v| v.value);
            restore = if restore_key == gate_key {
                fence.clone()
            } else {
                deps.ledger
                    .get::<FenceRecord>(&restore_key)
                    .await?
                    .map(|v| v.value)
            };
            if gate_override.is_none() && !input.restore_source {
                gate_override = deps
                    .ledger
                    .get::<GateOverride>(&keys::gate_override(&run.run_id))
                    .await?
                    .map(|v| v.value);
            }
            fence_read_at = Some(Instant::now());
        }
        // New per-job confirmations from the sweep (cheap: only chunks after the cursor).
        if !input.restore_source {
            let (entries, cursor) = handoff::read_since(
                &deps.ledger,
                &run.run_id,
                source_role,
                record.handoff_cursor.as_deref(),
            )
            .await?;
            record.handoff_cursor = cursor;
            for e in entries {
                handed_off.entry(e.key).or_insert(e.confirmed_at);
            }
        }
        if !fallback_read && restore.as_ref().is_some_and(|r| r.inventoried_at.is_none()) {
            let role = if input.restore_source {
                source_role
            } else {
                restore.as_ref().map(|r| r.site).unwrap_or(source_role)
            };
            fallback = deps
                .ledger
                .get::<crate::drift::snapshot::SnapshotHead>(&keys::snapshot(&run.plan.name, role))
                .await?
                .map(|v| {
                    v.value
                        .live_activations()
                        .map(|(n, a)| (n.clone(), a))
                        .collect()
                })
                .unwrap_or_default();
            fallback_read = true;
        }
        let gate = may_activate(fence.as_ref().map(|f| f.status), gate_override.as_ref());
        let Some(restore_record) = restore.as_ref() else {
            if input.restore_source || run.restore_from.is_some() {
                return Err(StepError::Refused(format!(
                    "no fence record at {restore_key} to restore from"
                )));
            }
            // The sweep has not recorded its first inventory yet: look again at the next poll.
            fence_read_at = None;
            if Instant::now() + POLL >= stop {
                return Ok(output(&record, gate, false, 0));
            }
            tokio::time::sleep(POLL).await;
            continue;
        };
        let confirmed_at_gate: BTreeSet<(String, Activation)> = match (&fence, &run.restore_from) {
            // Failback: the DR twin of each job is what must be fenced.
            (Some(f), Some(_)) => handover(f, &handed_off, &[])
                .into_iter()
                .filter(|(_, _, ok)| *ok)
                .map(|(c, _, _)| (c.name, c.activation))
                .collect(),
            _ => BTreeSet::new(),
        };
        let now = Utc::now();
        let mut ready: Vec<(Candidate, Option<DateTime<Utc>>)> = Vec::new();
        for (c, fenced_at, confirmed) in handover(restore_record, &handed_off, &fallback) {
            let key = c.key();
            if record.entries.contains_key(&key) || queued.contains(&key) {
                continue;
            }
            let per_job = if run.restore_from.is_some() && !input.restore_source {
                // A job never live at DR has no twin to fence there.
                confirmed_at_gate.contains(&(c.name.clone(), c.activation))
                    || fence.as_ref().is_some_and(|f| {
                        !f.resources.values().any(|r| {
                            r.name == c.name && kind_activation(r.kind) == Some(c.activation)
                        })
                    })
            } else {
                confirmed
            };
            if gate.is_open() || per_job {
                ready.push((c, fenced_at));
            }
        }
        ready.sort_by_key(|(c, _)| order_key(jobs.get(&c.name), c.activation, now));
        let sent = !ready.is_empty();
        for w in prepare(&jobs, ready, &mut record) {
            queued.insert(w.0.key());
            // The writer lives until `stop`; a closed channel only means time is up.
            let _ = writer.tx.send(w);
        }
        let finished = collect(&mut writer.done, &mut queued, &mut record);
        if (sent || finished > 0) && recorded_at.elapsed() >= RECORD_EVERY {
            deps.ledger.put(&record_key, &record).await?;
            recorded_at = Instant::now();
        }
        let left = handover(restore_record, &handed_off, &fallback)
            .iter()
            .filter(|(c, _, _)| !record.entries.contains_key(&c.key()))
            .count();
        if gate.is_open() && left == 0 && queued.is_empty() {
            writer.finish(&mut queued, &mut record).await;
            if !input.restore_source {
                run_once(deps, run, &client, &jobs, &mut record).await?;
            }
            record.complete = true;
            deps.ledger.put(&record_key, &record).await?;
            let out = output(&record, gate, true, 0);
            info!(
                unpaused = out.unpaused,
                left_behind = out.missing.len(),
                "activation complete"
            );
            return Ok(out);
        }
        if Instant::now() + POLL >= stop {
            writer.finish(&mut queued, &mut record).await;
            deps.ledger.put(&record_key, &record).await?;
            return Ok(output(&record, gate, false, left));
        }
        // Nothing new either way: wait for the next handoff chunk or the next answer.
        if !sent && finished == 0 {
            idle_polls += 1;
            tokio::time::sleep(POLL).await;
        } else {
            idle_polls = 0;
        }
    }
}

/// A write to send: the candidate, when it was fenced at the source, the job, its new settings.
type Write = (Candidate, Option<DateTime<Utc>>, JobId, serde_json::Value);
/// A write's answer and when it came.
type Done = (
    Candidate,
    Option<DateTime<Utc>>,
    Result<(), crate::databricks::ApiError>,
    DateTime<Utc>,
);

/// Sends queued writes continuously, a few in flight, the client's limiter holding the rate:
/// no batch boundaries, so a job handed off now leaves as soon as those queued before it have.
struct Writer {
    tx: tokio::sync::mpsc::UnboundedSender<Write>,
    done: tokio::sync::mpsc::UnboundedReceiver<Done>,
    task: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn spawn(client: WorkspaceClient, stop: Instant) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Write>();
        let (done_tx, done) = tokio::sync::mpsc::unbounded_channel::<Done>();
        let task = tokio::spawn(async move {
            let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
            let mut in_flight = tokio::task::JoinSet::new();
            while let Some((c, fenced_at, id, settings)) = rx.recv().await {
                if Instant::now() >= stop {
                    break;
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let (client, done_tx) = (client.clone(), done_tx.clone());
                in_flight.spawn(async move {
                    let r = client.with_deadline(stop).update_job(id, settings).await;
                    let _ = done_tx.send((c, fenced_at, r, Utc::now()));
                    drop(slot);
                });
                while in_flight.try_join_next().is_some() {}
            }
            while in_flight.join_next().await.is_some() {}
        });
        Self { tx, done, task }
    }

    /// Stops taking writes, waits for those in flight (bounded by `stop`), records them.
    async fn finish(&mut self, queued: &mut BTreeSet<String>, record: &mut ActivationRecord) {
        let (tx, _) = tokio::sync::mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.tx, tx));
        let task = std::mem::replace(&mut self.task, tokio::spawn(async {}));
        if let Err(e) = task.await {
            warn!(error = %e, "activation writer failed");
        }
        collect(&mut self.done, queued, record);
    }
}

/// Records the answers that came in; returns how many.
fn collect(
    done: &mut tokio::sync::mpsc::UnboundedReceiver<Done>,
    queued: &mut BTreeSet<String>,
    record: &mut ActivationRecord,
) -> usize {
    let mut n = 0;
    while let Ok((c, fenced_at, r, at)) = done.try_recv() {
        n += 1;
        queued.remove(&c.key());
        let outcome = match r {
            Ok(()) => ActivationOutcome::Activated,
            // Transient: not recorded, so the next poll queues it again.
            Err(e) if e.kind.is_transient() => {
                warn!(job = %c.name, error = %e, "activation will be retried");
                continue;
            }
            Err(e) if e.is_not_found() => ActivationOutcome::Missing,
            Err(e) => ActivationOutcome::Failed(e.to_string()),
        };
        record.entries.insert(
            c.key(),
            ActivationEntry {
                name: c.name,
                activation: c.activation,
                outcome,
                fenced_at,
                at,
            },
        );
    }
    n
}

/// Decides each ready candidate: what the target cannot take (or already has) is recorded at
/// once; the rest become writes, in the given order.
fn prepare(
    jobs: &BTreeMap<String, Job>,
    ready: Vec<(Candidate, Option<DateTime<Utc>>)>,
    record: &mut ActivationRecord,
) -> Vec<Write> {
    let mut writes = Vec::new();
    for (c, fenced_at) in ready {
        let job = jobs.get(&c.name);
        let entry = |outcome| ActivationEntry {
            name: c.name.clone(),
            activation: c.activation,
            outcome,
            fenced_at,
            at: Utc::now(),
        };
        match decide(job, c.activation) {
            Err(outcome) => {
                record.entries.insert(c.key(), entry(outcome));
            }
            Ok(()) => {
                let Some(job) = job else { continue };
                match pause_field(&job.settings, c.activation, PauseStatus::Unpaused) {
                    Some(settings) => writes.push((c, fenced_at, job.job_id.clone(), settings)),
                    None => {
                        record
                            .entries
                            .insert(c.key(), entry(ActivationOutcome::NotDefined));
                    }
                }
            }
        }
    }
    writes
}

/// The plan's one-time jobs, behind the whole gate; idempotent by token.
async fn run_once(
    deps: &Deps,
    run: &RunContext,
    client: &WorkspaceClient,
    jobs: &BTreeMap<String, Job>,
    record: &mut ActivationRecord,
) -> Result<(), StepError> {
    let _ = deps;
    for name in &run.plan.startup.run_once {
        if record.runs.contains_key(name) {
            continue;
        }
        let Some(job) = jobs.get(name) else {
            record.entries.insert(
                format!("run_once:{name}"),
                ActivationEntry {
                    name: name.clone(),
                    activation: Activation::Schedule,
                    outcome: ActivationOutcome::Missing,
                    fenced_at: None,
                    at: Utc::now(),
                },
            );
            continue;
        };
        let token = run.idempotency_token(name);
        let started = client.run_now(job.job_id.clone(), &token, None).await?;
        record.runs.insert(name.clone(), started.run_id.0);
    }
    Ok(())
}

fn output(
    record: &ActivationRecord,
    gate: Gate,
    complete: bool,
    pending: usize,
) -> ActivationOutput {
    let count = |f: fn(&ActivationOutcome) -> bool| {
        record.entries.values().filter(|e| f(&e.outcome)).count()
    };
    let unpaused = count(|o| *o == ActivationOutcome::Activated);
    let already_live = count(|o| *o == ActivationOutcome::AlreadyLive);
    let missing: Vec<String> = record
        .entries
        .values()
        .filter(|e| !e.outcome.live())
        .map(|e| {
            let why = match &e.outcome {
                ActivationOutcome::Missing => "job missing at the target".to_string(),
                ActivationOutcome::NotDefined => {
                    format!("no {} at the target", e.activation.field())
                }
                ActivationOutcome::Failed(m) => format!("refused: {m}"),
                _ => String::new(),
            };
            format!("job {}: {} — {why}", e.name, e.activation.field())
        })
        .collect();
    let gaps: Vec<i64> = record
        .entries
        .values()
        .filter(|e| e.outcome == ActivationOutcome::Activated)
        .filter_map(|e| e.fenced_at.map(|f| (e.at - f).num_milliseconds()))
        .collect();
    let handoff_gap_ms = gap_stats(gaps);
    let summary = match &gate {
        _ if complete => format!(
            "{unpaused} schedules/triggers activated at the target ({}), {already_live} already live; {} left behind{}.",
            match &gate {
                Gate::Open(r) => r.as_str(),
                Gate::Wait(r) | Gate::Blocked(r) => r.as_str(),
            },
            missing.len(),
            handoff_gap_ms
                .map(|(m, p)| format!("; per-job handoff gap median {m} ms, p99 {p} ms"))
                .unwrap_or_default()
        ),
        Gate::Open(r) | Gate::Wait(r) | Gate::Blocked(r) => format!(
            "Activation in progress: {unpaused} activated so far; the rest waits: {r}."
        ),
    };
    ActivationOutput {
        activated: complete,
        waiting: !complete,
        pending,
        gate,
        unpaused,
        already_live,
        missing,
        handoff_gap_ms,
        summary,
        runs: record.runs.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{fence::ResourceRecord, plan::SiteRole};

    fn resource(kind: ResourceKind, name: &str, confirmed: bool) -> ResourceRecord {
        ResourceRecord {
            kind,
            id: format!("{name}-id"),
            name: name.into(),
            prior: "UNPAUSED".into(),
            desired: "PAUSED".into(),
            confirmed,
            actions: 0,
            last_error: None,
            prior_value: None,
            stopping: false,
        }
    }

    #[test]
    fn handover_lists_each_activation_once_with_its_per_job_confirmation() {
        let mut fence = FenceRecord::new(SiteRole::Primary);
        fence.inventoried_at = Some(Utc::now());
        for (key, r) in [
            ("schedule:1", resource(ResourceKind::Schedule, "etl", true)),
            (
                "schedule:2",
                resource(ResourceKind::Schedule, "report", false),
            ),
            (
                "continuous:3",
                resource(ResourceKind::Continuous, "stream", false),
            ),
            (
                "cluster:x",
                resource(ResourceKind::Cluster, "shared", false),
            ),
        ] {
            fence.resources.insert(key.into(), r);
        }
        let t = Utc::now();
        let handed: BTreeMap<String, DateTime<Utc>> = [("continuous:3".to_string(), t)].into();
        let got: Vec<(String, bool)> = handover(&fence, &handed, &[])
            .into_iter()
            .map(|(c, _, ok)| (c.key(), ok))
            .collect();
        assert_eq!(
            got,
            vec![
                ("schedule:etl".into(), true),
                ("schedule:report".into(), false),
                ("continuous:stream".into(), true),
            ]
        );
    }

    #[test]
    fn a_source_never_reached_hands_over_its_snapshot_unconfirmed() {
        let fence = FenceRecord::new(SiteRole::Primary);
        let fallback = vec![
            ("etl".to_string(), Activation::Schedule),
            ("etl".to_string(), Activation::Schedule),
            ("stream".to_string(), Activation::Continuous),
        ];
        let got: Vec<(String, bool)> = handover(&fence, &BTreeMap::new(), &fallback)
            .into_iter()
            .map(|(c, _, ok)| (c.key(), ok))
            .collect();
        assert_eq!(
            got,
            vec![
                ("schedule:etl".into(), false),
                ("continuous:stream".into(), false)
            ],
            "deduplicated, none confirmed: only the whole gate lets them go"
        );
        // Once the site answered, the record is the truth, not the snapshot.
        let mut reached = FenceRecord::new(SiteRole::Primary);
        reached.inventoried_at = Some(Utc::now());
        assert!(handover(&reached, &BTreeMap::new(), &fallback).is_empty());
    }

    #[test]
    fn decide_names_what_the_target_cannot_take() {
        let job = |schedule: Option<PauseStatus>| -> Job {
            serde_json::from_value(serde_json::json!({
                "job_id": 1,
                "settings": {
                    "name": "etl",
                    "schedule": schedule.map(|p| serde_json::json!({
                        "quartz_cron_expression": "0 0 * * * ?",
                        "timezone_id": "UTC",
                        "pause_status": p,
                    })),
                },
            }))
            .unwrap()
        };
        let paused = job(Some(PauseStatus::Paused));
        let live = job(Some(PauseStatus::Unpaused));
        let none = job(None);
        let table: &[(Option<&Job>, Result<(), ActivationOutcome>)] = &[
            (Some(&paused), Ok(())),
            (Some(&live), Err(ActivationOutcome::AlreadyLive)),
            (Some(&none), Err(ActivationOutcome::NotDefined)),
            (None, Err(ActivationOutcome::Missing)),
        ];
        for (j, want) in table {
            assert_eq!(&decide(*j, Activation::Schedule), want);
        }
    }

    #[test]
    fn gap_stats_are_median_and_p99() {
        assert_eq!(gap_stats(vec![]), None);
        assert_eq!(gap_stats(vec![5]), Some((5, 5)));
        let gaps: Vec<i64> = (1..=100).collect();
        assert_eq!(gap_stats(gaps), Some((51, 99)));
    }
}
