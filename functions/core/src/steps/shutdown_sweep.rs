//! `shutdown-sweep`: the seed's failover step 1 — stop the site being fenced from processing
//! data, without assuming it shuts down gracefully. Each invocation:
//!
//! 1. inventories the site (all families concurrently) and merges it into the fence record in
//!    the ledger, capturing each resource's *prior* state before anything is touched (that is
//!    what activation at the other site and failback restore);
//! 2. confirms what is now fenced (by read-back, not from a 200);
//! 3. acts on what is still active, riskiest first (active runs, running clusters, schedules
//!    by next fire time, continuous jobs, triggers, then pools, warehouses, pipelines), all
//!    families in parallel, each held under its rate limit by the client;
//! 4. re-reads and records the outcome per resource, and returns what remains.
//!
//! Within a family, requests leave in the planned order: one dispatcher per family paces them
//! at the family's rate (so the client's limiter never holds competing waiters that could
//! reorder them) with a few in flight. The attempt stops dispatching early enough to read back
//! and record before its deadline; what it did not reach stays unconfirmed for the next call,
//! and what is already fenced is skipped, so a crashed or timed-out attempt repeats no
//! confirmed work. Runs of unpaused continuous jobs are not cancelled: the service replaces a
//! cancelled continuous run at once, and pausing the job (which the sweep does) cancels it.
//!
//! An unreachable site is recorded, not fatal: the state machine waits and calls again.

use std::{
    collections::BTreeMap,
    num::NonZeroU32,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use chrono::Utc;
use governor::{Quota, RateLimiter};
use serde::Deserialize;
use tracing::{info, instrument, warn};

use crate::databricks::jobs::{JobId, PauseStatus, RunFilter};
use crate::fence::handoff::{HandoffChunk, HandoffEntry};
use crate::fence::SweepOutput;
use crate::fence::{inventory, plan_fence, FenceAction, FenceRecord, FenceStatus, Planned};
use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    databricks::{ApiError, ErrorKind, Family, WorkspaceClient},
    plan::SiteRole,
    run::RunContext,
};

/// Input: the state document; `sweep` is the previous attempt's output, if any.
#[derive(Debug, Clone, Deserialize)]
pub struct SweepInput {
    /// The run.
    pub run: RunContext,
    /// Which site to fence; defaults to the run direction's source.
    #[serde(default)]
    pub site: Option<SiteRole>,
    /// Called by the fence watch: stop when a failback began.
    #[serde(default)]
    pub watch: bool,
    /// Read back and record only, no writes (the failback's one-time DR shutdown waits for
    /// TERMINATING/STOPPING to finish this way).
    #[serde(default)]
    pub confirm_only: bool,
}

async fn perform(client: &WorkspaceClient, action: &FenceAction) -> Result<(), ApiError> {
    let result = match action {
        FenceAction::CancelRun(id) => client.cancel_run(id.clone()).await,
        FenceAction::TerminateCluster(id) => client.terminate_cluster(id).await,
        FenceAction::Pause(id, _, settings) => {
            client.update_job(id.clone(), settings.clone()).await
        }
        FenceAction::DrainPool(id) => client.set_pool_min_idle(id, 0).await.map(|_| ()),
        FenceAction::StopWarehouse(id) => client.stop_warehouse(id).await,
        FenceAction::StopPipeline(id) => client.stop_pipeline(id).await,
    };
    match result {
        // Already gone counts as fenced.
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// Test and benchmark knobs; production uses the defaults.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// Simulates a crash: stop after this many actions without recording the outcome.
    pub crash_after_actions: Option<usize>,
    /// Concurrent requests per family (the limiter still holds the rate).
    pub per_family_concurrency: Option<usize>,
}

/// Time kept back from the deadline for the final ledger write.
const LEDGER_RESERVE: Duration = Duration::from_secs(1);

/// The dispatcher paces each family this much below the client's limiter. Paced at exactly the
/// same rate, a request delayed on its way (a busy executor) would leave the client's limiter
/// late for good, and the next request would queue beside it there and could overtake it; the
/// headroom absorbs such delays within a few requests, so the planned order holds.
const PACE_HEADROOM: f64 = 0.97;

/// What became of one dispatched action.
enum Outcome {
    /// The request was answered (or failed for good) before the cut-off.
    Done(Result<(), ApiError>),
    /// Still in flight at the cut-off: it may or may not have taken effect.
    Unknown,
}

/// Runs one sweep attempt.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(
    deps: &Deps,
    input: SweepInput,
    deadline: Instant,
) -> Result<SweepOutput, StepError> {
    handle_with(deps, input, deadline, SweepOptions::default()).await
}

/// [`handle`] with options.
pub async fn handle_with(
    deps: &Deps,
    input: SweepInput,
    deadline: Instant,
    options: SweepOptions,
) -> Result<SweepOutput, StepError> {
    let run = &input.run;
    let role = input.site.unwrap_or(run.direction.roles().0);
    if input.watch
        && deps
            .ledger
            .get::<serde_json::Value>(&keys::fence_watch_stop(&run.run_id))
            .await?
            .is_some()
    {
        info!("a failback began: the fence watch stops");
        return Ok(SweepOutput {
            site: Some(role),
            watch_stopped: true,
            ..Default::default()
        });
    }
    let site = run.plan.site(role);
    let key = keys::fence(&run.run_id, role);
    // Everything that talks to the workspace ends by `hard`, leaving time to record it.
    let hard = deadline.checked_sub(LEDGER_RESERVE).unwrap_or(deadline);
    let mut record = deps
        .ledger
        .get::<FenceRecord>(&key)
        .await?
        .map(|v| v.value)
        .unwrap_or_else(|| FenceRecord::new(role));
    record.attempts += 1;
    let attempt = record.attempts;
    let max_attempts = run.plan.shutdown.max_attempts;
    let client = deps.workspaces.client(site).await?.with_deadline(hard);

    let mut output = SweepOutput {
        site: Some(role),
        attempt,
        ..Default::default()
    };
    let started = Instant::now();
    let listed = match tokio::time::timeout_at(hard.into(), inventory(&client, &run.plan)).await {
        Ok(r) => r,
        Err(_) => Err(ApiError::new(
            ErrorKind::DeadlineExceeded,
            "inventory",
            "deadline reached before the inventory completed",
        )),
    };
    let inventory_time = started.elapsed();
    let current = match listed {
        Ok(inv) => inv,
        Err(e) => {
            warn!(error = %e, attempt, "no inventory; fence recorded as unconfirmed");
            record.last_error = Some(e.to_string());
            let (confirmed, remaining) = record.counts();
            record.status = if attempt >= max_attempts {
                FenceStatus::GaveUp
            } else {
                FenceStatus::InProgress
            };
            record.updated_at = Utc::now();
            deps.ledger.put(&key, &record).await?;
            output.reachable = false;
            output.confirmed = confirmed;
            // Unknown resources are outstanding too: never report a fence complete unseen.
            output.remaining = remaining.max(1);
            output.gave_up = record.status == FenceStatus::GaveUp;
            output.last_error = record.last_error.clone();
            return Ok(output);
        }
    };
    output.reachable = true;
    record.inventoried_at.get_or_insert_with(Utc::now);
    let (planned, excluded) = plan_fence(&run.plan, &current, &mut record, Utc::now());
    // Confirm-only: the writes were sent once already; look, record, do not act again.
    let planned = if input.confirm_only {
        Vec::new()
    } else {
        planned
    };
    output.excluded = excluded;
    // Record the prior states before touching anything.
    record.updated_at = Utc::now();
    deps.ledger.put(&key, &record).await?;

    // New requests stop early enough to leave time for the read-back listing.
    let cutoff = hard
        .checked_sub(inventory_time.mul_f64(1.5))
        .unwrap_or(hard);
    let actions = Arc::new(AtomicUsize::new(0));
    let concurrency = options.per_family_concurrency.unwrap_or(4).max(1);
    let mut by_family: BTreeMap<Family, Vec<Planned>> = BTreeMap::new();
    for p in planned {
        by_family.entry(p.action.family()).or_default().push(p);
    }
    // Per-job handoff: each pause confirmed by a read-back is published at once.
    let (handoff_tx, handoff_rx) = tokio::sync::mpsc::unbounded_channel();
    let names: BTreeMap<String, String> = record
        .resources
        .iter()
        .map(|(k, r)| (k.clone(), r.name.clone()))
        .collect();
    let flusher = tokio::spawn(flush_handoff(
        deps.ledger.clone(),
        run.run_id.clone(),
        role,
        attempt,
        handoff_rx,
    ));
    let dispatch = Dispatch {
        client: client.clone(),
        concurrency,
        cutoff,
        hard,
        crash_after: options.crash_after_actions,
        actions: actions.clone(),
        handoff: handoff_tx,
        names: Arc::new(names),
        dispatched: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    let families = by_family.into_iter().map(|(family, list)| {
        let rate = deps.workspaces.rate_limits.rate(family);
        run_family(&dispatch, list, rate)
    });
    let results: Vec<(String, Outcome)> = futures::future::join_all(families)
        .await
        .into_iter()
        .flatten()
        .collect();
    dispatch.dispatched.store(true, Ordering::SeqCst);
    drop(dispatch);
    let handed_off = match flusher.await {
        Ok(keys) => keys,
        Err(e) => {
            warn!(error = %e, "handoff flusher failed");
            Vec::new()
        }
    };
    for k in &handed_off {
        if let Some(rec) = record.resources.get_mut(k) {
            rec.confirmed = true;
        }
    }
    if let Some(limit) = options.crash_after_actions {
        if actions.load(Ordering::SeqCst) >= limit {
            return Err(StepError::InvalidInput(format!(
                "simulated crash after {limit} actions"
            )));
        }
    }
    output.actions = results.len();
    for (k, outcome) in results {
        if let Some(rec) = record.resources.get_mut(&k) {
            rec.actions += 1;
            rec.last_error = match outcome {
                Outcome::Done(r) => r.err().map(|e| e.to_string()),
                Outcome::Unknown => {
                    Some("deadline reached with the request in flight; outcome unknown".into())
                }
            };
        }
    }
    // Read back: confirm by observation, not by the 200s.
    record.last_error = None;
    if output.actions > 0 {
        if Instant::now() + inventory_time < hard {
            let listed = tokio::time::timeout_at(hard.into(), inventory(&client, &run.plan)).await;
            match listed {
                Ok(Ok(inv)) => {
                    let _ = plan_fence(&run.plan, &inv, &mut record, Utc::now());
                }
                Ok(Err(e)) => record.last_error = Some(format!("read-back: {e}")),
                Err(_) => {
                    record.last_error = Some("read-back: deadline reached".into());
                }
            }
        } else {
            record.last_error = Some("read-back skipped: too close to the deadline".into());
        }
    }
    let (confirmed, remaining) = record.counts();
    record.status = if remaining == 0 {
        FenceStatus::Confirmed
    } else if attempt >= max_attempts {
        FenceStatus::GaveUp
    } else {
        FenceStatus::InProgress
    };
    record.updated_at = Utc::now();
    deps.ledger.put(&key, &record).await?;
    output.confirmed = confirmed;
    output.remaining = remaining;
    output.complete = remaining == 0;
    output.stopping = record.stopping();
    output.stopping_only = remaining > 0 && output.stopping == remaining;
    output.gave_up = record.status == FenceStatus::GaveUp;
    output.last_error = record.last_error.clone();
    info!(
        attempt,
        confirmed,
        remaining,
        actions = output.actions,
        "sweep attempt done"
    );
    Ok(output)
}

/// What every family's dispatcher shares (cheap to clone into each request's task).
#[derive(Clone)]
struct Dispatch {
    client: WorkspaceClient,
    concurrency: usize,
    cutoff: Instant,
    hard: Instant,
    crash_after: Option<usize>,
    actions: Arc<AtomicUsize>,
    handoff: tokio::sync::mpsc::UnboundedSender<HandoffEntry>,
    names: Arc<BTreeMap<String, String>>,
    /// Set when every family is dispatched: follow-ups stop waiting, so the attempt can read
    /// back and record (what they did not hand off, the read-back confirms).
    dispatched: Arc<std::sync::atomic::AtomicBool>,
}

/// How often confirmed pauses are published for the other site's activation.
const HANDOFF_FLUSH: Duration = Duration::from_millis(500);

/// Writes confirmed pauses as handoff chunks every [`HANDOFF_FLUSH`] until the senders are
/// gone; returns the keys it published.
async fn flush_handoff(
    ledger: crate::ledger::Ledger,
    run_id: crate::run::RunId,
    site: SiteRole,
    attempt: u32,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<HandoffEntry>,
) -> Vec<String> {
    let mut published = Vec::new();
    let mut n = 0u64;
    let mut open = true;
    while open {
        let mut chunk = HandoffChunk::default();
        let tick = tokio::time::sleep(HANDOFF_FLUSH);
        tokio::pin!(tick);
        loop {
            tokio::select! {
                entry = rx.recv() => match entry {
                    Some(e) => chunk.entries.push(e),
                    None => { open = false; break; }
                },
                _ = &mut tick => break,
            }
        }
        if chunk.entries.is_empty() {
            continue;
        }
        let key = keys::handoff_chunk(&run_id, site, Utc::now(), attempt, n);
        n += 1;
        match ledger.put(&key, &chunk).await {
            Ok(_) => published.extend(chunk.entries.into_iter().map(|e| e.key)),
            // Not fatal: the end-of-attempt read-back confirms them in the fence record.
            Err(e) => warn!(error = %e, "handoff chunk not written"),
        }
    }
    published
}

/// After a pause was accepted: reads the job back and, when that activation is paused *and*
/// the job has no run left at this site (a paused continuous job's run is still terminating;
/// a run fired just before the pause may still go on), hands it off. A job with a run still
/// active is handed off by a follow-up that waits for it without holding a dispatch slot; the
/// end-of-attempt read-back confirms anything the follow-up does not see end in time.
async fn confirm_pause(d: &Dispatch, key: &str, action: &FenceAction) {
    let FenceAction::Pause(id, activation, _) = action else {
        return;
    };
    let Ok(Ok(job)) = tokio::time::timeout_at(d.hard.into(), d.client.get_job(id.clone())).await
    else {
        return;
    };
    if job.settings.pause_status(*activation) != Some(PauseStatus::Paused) {
        return;
    }
    let entry = HandoffEntry {
        key: key.to_string(),
        name: d
            .names
            .get(key)
            .cloned()
            .unwrap_or_else(|| job.settings.name.clone()),
        activation: *activation,
        confirmed_at: Utc::now(),
    };
    let idle = |d: Dispatch, id: JobId| async move {
        let runs = d.client.all_runs(RunFilter {
            active_only: true,
            job_id: Some(id),
        });
        matches!(
            tokio::time::timeout_at(d.hard.into(), runs).await,
            Ok(Ok(list)) if list.is_empty()
        )
    };
    if idle(d.clone(), id.clone()).await {
        let _ = d.handoff.send(entry);
        return;
    }
    let (d, id) = (d.clone(), id.clone());
    tokio::spawn(async move {
        while Instant::now() + RUN_WAIT < d.hard && !d.dispatched.load(Ordering::SeqCst) {
            tokio::time::sleep(RUN_WAIT).await;
            if idle(d.clone(), id.clone()).await {
                let _ = d.handoff.send(HandoffEntry {
                    confirmed_at: Utc::now(),
                    ..entry
                });
                return;
            }
        }
    });
}

/// How often a follow-up looks whether a paused job's last run has ended.
const RUN_WAIT: Duration = Duration::from_millis(500);

/// Sends one family's actions in their planned order: a sequential dispatcher paced at the
/// family's rate (so the client's limiter never holds more than one waiter and cannot reorder
/// them), up to `concurrency` requests in flight. Stops dispatching at `cutoff` and abandons
/// what is still in flight at `hard`. Pauses are read back and handed off as they confirm.
async fn run_family(d: &Dispatch, list: Vec<Planned>, rate: f64) -> Vec<(String, Outcome)> {
    let pacer = (rate > 0.0)
        .then(|| Quota::with_period(Duration::from_secs_f64(1.0 / (rate * PACE_HEADROOM))))
        .flatten()
        .map(|q| RateLimiter::direct(q.allow_burst(NonZeroU32::MIN)));
    let mut in_flight = tokio::task::JoinSet::new();
    let mut results = Vec::new();
    let collect = |joined: Result<(String, Outcome), tokio::task::JoinError>,
                   results: &mut Vec<(String, Outcome)>| {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => warn!(error = %e, "fence action task failed"),
        }
    };
    for p in list {
        while in_flight.len() >= d.concurrency {
            if let Some(j) = in_flight.join_next().await {
                collect(j, &mut results);
            }
        }
        if let Some(pacer) = &pacer {
            if tokio::time::timeout_at(d.cutoff.into(), pacer.until_ready())
                .await
                .is_err()
            {
                break;
            }
        }
        if Instant::now() >= d.cutoff {
            break;
        }
        let done = d.actions.fetch_add(1, Ordering::SeqCst);
        if d.crash_after.is_some_and(|limit| done >= limit) {
            break;
        }
        let d = d.clone();
        in_flight.spawn(async move {
            let outcome =
                match tokio::time::timeout_at(d.hard.into(), perform(&d.client, &p.action)).await {
                    Ok(r) => Outcome::Done(r),
                    Err(_) => Outcome::Unknown,
                };
            if matches!(outcome, Outcome::Done(Ok(()))) {
                confirm_pause(&d, &p.key, &p.action).await;
            }
            (p.key, outcome)
        });
    }
    while let Some(j) = in_flight.join_next().await {
        collect(j, &mut results);
    }
    results
}
