//! `managed-failover`: when the plan names a Databricks Managed DR failover group, fail it over
//! to the target's region between the approval and start-up (the replicated catalogs and
//! workspace assets become the target's), and — on an abort — back again.
//!
//! Managed DR replicates; Lifeboat still decides, fences, gates, validates and reports. Each
//! invocation reads the group, decides ([`decide`], pure) and does at most one thing; the state
//! machine waits and calls again while the group is `FAILING_OVER`:
//! - the failover carries the group's `etag`, so a concurrent change refuses it (409
//!   `ABORTED`) instead of racing it: the step reads again and decides again;
//! - `FORCED` only when the site being left does not answer (a planned failover needs it);
//! - a failover *this run* asked for that ends `FAILOVER_FAILED` is an error
//!   (`FailoverGroupFailed`): a human decides (retry asks again, and may then be forced);
//! - with a stable URL, the group is done only when the URL routes to the target's workspace.
//!
//! What was asked, and how the group looked before, is in `runs/<id>/managed-dr.json`; a retried
//! or killed invocation reads it, so a failover is never asked twice for one attempt.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::databricks::disaster_recovery::{FailoverGroup, FailoverGroupState, FailoverType};
use crate::databricks::{ApiError, ErrorKind};
use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::ledger::Written;
use crate::managed_dr::{ManagedFailoverOutput, ManagedFailoverStatus, StableUrlCheck};
use crate::plan::{ManagedDr, Site};
use crate::run::RunContext;

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct ManagedFailoverInput {
    /// The run.
    pub run: RunContext,
    /// Abort path: put the group back where it was if this run moved it (or asked to).
    #[serde(default)]
    pub restore_source: bool,
}

/// What to do about the group, given how it looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `ACTIVE` with the goal region as primary.
    Done,
    /// A failover is in flight: look again later.
    Wait,
    /// Ask for a failover to the goal region.
    Failover,
    /// The failover this run asked for ended `FAILOVER_FAILED`: a human decides.
    Failed,
    /// The group cannot be failed over (why).
    Refuse(String),
}

/// Pure: the next move. `awaiting_ours`: this run asked for a failover and has not yet seen
/// how it ended.
pub fn decide(group: &FailoverGroup, goal: &str, awaiting_ours: bool) -> Decision {
    if !group.regions.is_empty() && !group.regions.iter().any(|r| r == goal) {
        return Decision::Refuse(format!(
            "{goal} is not one of the group's regions ({})",
            group.regions.join(", ")
        ));
    }
    let at_goal = group.effective_primary_region.as_deref() == Some(goal);
    match group.state {
        // A failover that failed leaves the primary where it was: if that is the goal (an
        // abort putting back a group that never moved), there is nothing to do.
        Some(FailoverGroupState::Active | FailoverGroupState::FailoverFailed) if at_goal => {
            Decision::Done
        }
        Some(FailoverGroupState::FailingOver) => Decision::Wait,
        Some(FailoverGroupState::FailoverFailed) if awaiting_ours => Decision::Failed,
        Some(FailoverGroupState::Active | FailoverGroupState::FailoverFailed) => Decision::Failover,
        Some(other) => Decision::Refuse(format!(
            "the group is {other:?}: it cannot fail over until it is ACTIVE"
        )),
        None => Decision::Refuse("the group reports no state".into()),
    }
}

/// Pure: `FORCED` only when the site being left does not answer.
pub fn failover_type(leaving_site_answers: bool) -> FailoverType {
    if leaving_site_answers {
        FailoverType::Planned
    } else {
        FailoverType::Forced
    }
}

/// How an asked-for failover ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AttemptOutcome {
    Succeeded,
    Failed,
    /// Asked again before this one was seen to end (the answer to it was lost).
    Superseded,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Attempt {
    at: DateTime<Utc>,
    target_region: String,
    failover_type: FailoverType,
    etag_sent: Option<String>,
    /// The API refused or lost the answer; the group was read again.
    ambiguous: bool,
    outcome: Option<AttemptOutcome>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManagedDrRecord {
    group: String,
    started_at: DateTime<Utc>,
    region_before: Option<String>,
    state_before: Option<FailoverGroupState>,
    replication_point_before: Option<DateTime<Utc>>,
    attempts: Vec<Attempt>,
    stale_etag_retries: u32,
    /// When an abort first asked to put the group back: its own timeout counts from here.
    #[serde(default)]
    restore_started_at: Option<DateTime<Utc>>,
}

/// Reads the group once more when it changes under a failover request, at most this often.
const MAX_ROUNDS: u32 = 4;

/// Fails the group over (or back, on an abort) and reports where it stands.
#[instrument(skip_all, fields(run = %input.run.run_id, restore = input.restore_source))]
pub async fn handle(
    deps: &Deps,
    input: ManagedFailoverInput,
    budget: std::time::Instant,
) -> Result<ManagedFailoverOutput, StepError> {
    let run = &input.run;
    let Some(managed) = &run.plan.managed_dr else {
        return Ok(ManagedFailoverOutput::finished(
            ManagedFailoverStatus::NotConfigured,
        ));
    };
    let (source, target) = run.plan.sites_for(run.direction);
    // The restore moves the group back to the source, away from the target.
    let (goal_site, leaving_site) = if input.restore_source {
        (source, target)
    } else {
        (target, source)
    };
    let key = keys::managed_dr(&run.run_id);
    let existing = deps.ledger.get::<ManagedDrRecord>(&key).await?;
    // The intent of every failover request is recorded before it is sent, so an empty list
    // means this run never asked the group to move.
    if input.restore_source
        && existing
            .as_ref()
            .is_none_or(|r| r.value.attempts.is_empty())
    {
        return Ok(ManagedFailoverOutput::finished(
            ManagedFailoverStatus::Unchanged,
        ));
    }
    let client = deps
        .workspaces
        .account(managed)
        .await?
        .with_deadline(budget);
    let name = managed.group_name();
    let goal = goal_site.region.as_str();
    let mut record = existing.map(|r| r.value);
    if input.restore_source {
        if let Some(rec) = record.as_mut().filter(|r| r.restore_started_at.is_none()) {
            rec.restore_started_at = Some(Utc::now());
            deps.ledger.put(&key, &*rec).await?;
        }
    }
    let mut actions = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let group = client.get_failover_group(&name).await?;
        let rec = match record.take() {
            Some(r) => r,
            None => first_record(deps, &key, &name, &group).await?,
        };
        let awaiting = rec.attempts.last().is_some_and(|a| a.outcome.is_none());
        let mut rec = rec;
        match decide(&group, goal, awaiting) {
            Decision::Refuse(why) => {
                return Err(StepError::Refused(format!("failover group {name}: {why}")))
            }
            Decision::Failed => {
                if let Some(last) = rec.attempts.last_mut() {
                    last.outcome = Some(AttemptOutcome::Failed);
                }
                deps.ledger.put(&key, &rec).await?;
                return Err(StepError::FailoverGroupFailed(format!(
                    "{name} ended FAILOVER_FAILED failing over to {goal}; the primary is still \
                     {}",
                    group
                        .effective_primary_region
                        .as_deref()
                        .unwrap_or("unknown")
                )));
            }
            Decision::Wait => {
                actions.push(format!("{name} is FAILING_OVER"));
                return Ok(output(managed, &rec, &group, goal, None, actions, false));
            }
            Decision::Done => {
                if awaiting {
                    if let Some(last) = rec.attempts.last_mut() {
                        // At the goal, but the last request aimed elsewhere (an abort after
                        // a forward failover that failed): that request did not succeed.
                        last.outcome = Some(if last.target_region == goal {
                            AttemptOutcome::Succeeded
                        } else {
                            AttemptOutcome::Failed
                        });
                    }
                    deps.ledger.put(&key, &rec).await?;
                    actions.push(format!("{name} is ACTIVE in {goal}"));
                }
                let stable = stable_url_check(&client, managed, goal_site).await?;
                let routed = stable
                    .as_ref()
                    .is_none_or(|s| s.routes_to.as_deref() == Some(s.expected.as_str()));
                if !routed {
                    actions.push("the stable URL does not route to the target yet".into());
                }
                return Ok(output(managed, &rec, &group, goal, stable, actions, routed));
            }
            Decision::Failover => {
                // Putting the group back needs the region it goes back to: a failover into a
                // region that does not answer is not asked for (a human decides).
                if input.restore_source && !site_answers(deps, goal_site).await? {
                    return Err(StepError::Refused(format!(
                        "failover group {name}: the source region {goal} does not answer; the \
                         group stays primary in {}",
                        group
                            .effective_primary_region
                            .as_deref()
                            .unwrap_or("unknown")
                    )));
                }
                let answers = site_answers(deps, leaving_site).await?;
                let kind = failover_type(answers);
                for a in rec.attempts.iter_mut().filter(|a| a.outcome.is_none()) {
                    a.outcome = Some(AttemptOutcome::Superseded);
                }
                // The intent first: a Lambda killed during the request, or a record that cannot
                // be written after it, still leaves "asked" in the ledger (an abort then puts
                // the group back).
                rec.attempts.push(Attempt {
                    at: Utc::now(),
                    target_region: goal.to_string(),
                    failover_type: kind,
                    etag_sent: group.etag.clone(),
                    ambiguous: true,
                    outcome: None,
                });
                deps.ledger.put(&key, &rec).await?;
                let asked = client
                    .failover_failover_group(&name, goal, kind, group.etag.as_deref())
                    .await;
                match asked {
                    Ok(after) => {
                        if let Some(last) = rec.attempts.last_mut() {
                            last.ambiguous = false;
                        }
                        deps.ledger.put(&key, &rec).await?;
                        actions.push(format!(
                            "asked {name} to fail over to {goal} ({}{})",
                            kind.as_wire(),
                            if answers {
                                ""
                            } else {
                                "; the site being left does not answer"
                            }
                        ));
                        return Ok(output(managed, &rec, &after, goal, None, actions, false));
                    }
                    Err(e) if stale_etag(&e) => {
                        // Refused: nothing started.
                        rec.attempts.pop();
                        rec.stale_etag_retries += 1;
                        deps.ledger.put(&key, &rec).await?;
                        actions.push(format!(
                            "the group changed since it was read (etag): read it again ({})",
                            e.message
                        ));
                    }
                    Err(e) if ambiguous(&e) => {
                        // Maybe it started, maybe not: the ask stays recorded; look again.
                        actions.push(format!("the failover request got no clear answer: {e}"));
                    }
                    Err(e) => {
                        // Refused outright: nothing started.
                        rec.attempts.pop();
                        deps.ledger.put(&key, &rec).await?;
                        return Err(e.into());
                    }
                }
                record = Some(rec);
            }
        }
    }
    Err(StepError::Refused(format!(
        "failover group {name} kept changing under the failover request ({MAX_ROUNDS} reads)"
    )))
}

async fn first_record(
    deps: &Deps,
    key: &str,
    name: &str,
    group: &FailoverGroup,
) -> Result<ManagedDrRecord, StepError> {
    let rec = ManagedDrRecord {
        group: name.to_string(),
        started_at: Utc::now(),
        region_before: group.effective_primary_region.clone(),
        state_before: group.state,
        replication_point_before: group.replication_point,
        attempts: Vec::new(),
        stale_etag_retries: 0,
        restore_started_at: None,
    };
    match deps.ledger.create(key, &rec).await? {
        Written::Ok(_) => Ok(rec),
        Written::Conflict => Ok(deps
            .ledger
            .get::<ManagedDrRecord>(key)
            .await?
            .map_or(rec, |r| r.value)),
    }
}

/// 409 `ABORTED`: the etag sent is not the group's any more.
fn stale_etag(e: &ApiError) -> bool {
    e.kind == ErrorKind::Conflict
}

/// No clear answer (5xx, connection lost after sending), or a precondition that may mean the
/// failover already started (`FAILED_PRECONDITION`): read the group before anything else.
fn ambiguous(e: &ApiError) -> bool {
    matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Unreachable)
        || e.code.as_deref() == Some("FAILED_PRECONDITION")
}

/// Whether a site answers at all (SCIM `Me`, 5 s): an HTTP answer of any kind — an error
/// status, a 429 from a site busy being fenced, a 5xx — means its region is up; only no
/// answer at all (connection refused or reset, a timeout before any status) is silence.
async fn site_answers(deps: &Deps, site: &Site) -> Result<bool, StepError> {
    let client = deps.workspaces.client(site).await?;
    let probe = client.with_deadline(std::time::Instant::now() + std::time::Duration::from_secs(5));
    Ok(match probe.me().await {
        Ok(_) => true,
        Err(e) => !silent(&e),
    })
}

/// Pure: an error that carries no HTTP answer from the site.
fn silent(e: &ApiError) -> bool {
    e.status.is_none() && matches!(e.kind, ErrorKind::Unreachable | ErrorKind::DeadlineExceeded)
}

async fn stable_url_check(
    client: &crate::databricks::WorkspaceClient,
    managed: &ManagedDr,
    goal_site: &Site,
) -> Result<Option<StableUrlCheck>, StepError> {
    let (Some(name), Some(expected)) = (managed.stable_url_name(), goal_site.workspace_id.clone())
    else {
        return Ok(None);
    };
    let url = client.get_stable_url(&name).await?;
    Ok(Some(StableUrlCheck {
        url: url.url,
        routes_to: url.effective_workspace_id,
        expected,
    }))
}

fn output(
    managed: &ManagedDr,
    rec: &ManagedDrRecord,
    group: &FailoverGroup,
    goal: &str,
    stable_url: Option<StableUrlCheck>,
    actions: Vec<String>,
    done: bool,
) -> ManagedFailoverOutput {
    // The wait counts from the last request (a human's retry gets the whole timeout again), or
    // an abort's own start, not from the run's first look.
    let since = rec
        .attempts
        .last()
        .map(|a| a.at)
        .into_iter()
        .chain(rec.restore_started_at)
        .max()
        .unwrap_or(rec.started_at);
    let elapsed_seconds = (Utc::now() - since).num_milliseconds() as f64 / 1000.0;
    ManagedFailoverOutput {
        status: if done {
            ManagedFailoverStatus::Active
        } else {
            ManagedFailoverStatus::Pending
        },
        done,
        timed_out: !done && elapsed_seconds > f64::from(managed.failover_timeout_seconds),
        group: Some(rec.group.clone()),
        region_before: rec.region_before.clone(),
        region_now: group.effective_primary_region.clone(),
        goal_region: Some(goal.to_string()),
        state: group.state,
        failover_type: rec.attempts.last().map(|a| a.failover_type),
        attempts: rec.attempts.len() as u32,
        stale_etag_retries: rec.stale_etag_retries,
        replication_point: group.replication_point,
        stable_url,
        actions,
        elapsed_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(state: Option<FailoverGroupState>, primary: &str) -> FailoverGroup {
        FailoverGroup {
            name: "accounts/a/failover-groups/g".into(),
            effective_primary_region: Some(primary.into()),
            regions: vec!["us-east-1".into(), "us-west-2".into()],
            state,
            etag: Some("e1".into()),
            replication_point: None,
            has_replication_point_blocking_errors: None,
        }
    }

    #[test]
    fn decide_moves_only_from_a_state_that_allows_it() {
        use FailoverGroupState as S;
        let goal = "us-west-2";
        let cases: Vec<(Option<S>, &str, bool, Decision)> = vec![
            (Some(S::Active), "us-west-2", false, Decision::Done),
            (Some(S::Active), "us-west-2", true, Decision::Done),
            (Some(S::Active), "us-east-1", false, Decision::Failover),
            // Our answer was lost and nothing started: ask again.
            (Some(S::Active), "us-east-1", true, Decision::Failover),
            (Some(S::FailingOver), "us-east-1", false, Decision::Wait),
            (Some(S::FailingOver), "us-east-1", true, Decision::Wait),
            (Some(S::FailoverFailed), "us-east-1", true, Decision::Failed),
            // A failure from before this run (or one a human already saw): try.
            (
                Some(S::FailoverFailed),
                "us-east-1",
                false,
                Decision::Failover,
            ),
            // Already where it must be, after a failover that failed: never asked again (the
            // API would refuse a failover to the current primary).
            (Some(S::FailoverFailed), "us-west-2", false, Decision::Done),
            (Some(S::FailoverFailed), "us-west-2", true, Decision::Done),
        ];
        for (state, primary, awaiting, want) in cases {
            assert_eq!(
                decide(&group(state, primary), goal, awaiting),
                want,
                "{state:?} at {primary}, awaiting {awaiting}"
            );
        }
        for state in [
            Some(S::InitialReplication),
            Some(S::Creating),
            Some(S::Other),
            None,
        ] {
            assert!(
                matches!(
                    decide(&group(state, "us-east-1"), goal, false),
                    Decision::Refuse(_)
                ),
                "{state:?}"
            );
        }
        match decide(&group(Some(S::Active), "us-east-1"), "eu-west-1", false) {
            Decision::Refuse(why) => assert!(why.contains("eu-west-1"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_no_answer_at_all_is_silence() {
        let e = |kind, status: Option<u16>| ApiError {
            kind,
            endpoint: "GET /api/2.0/preview/scim/v2/Me".into(),
            status,
            code: None,
            message: String::new(),
            retry_after: None,
        };
        let cases = [
            (e(ErrorKind::Unreachable, None), true),
            (e(ErrorKind::DeadlineExceeded, None), true),
            // A site throttling (it is being fenced) or failing answers: it is up.
            (e(ErrorKind::DeadlineExceeded, Some(429)), false),
            (e(ErrorKind::RateLimited, Some(429)), false),
            (e(ErrorKind::Unavailable, Some(503)), false),
            (e(ErrorKind::PermissionDenied, Some(403)), false),
        ];
        for (err, want) in cases {
            assert_eq!(silent(&err), want, "{err:?}");
        }
    }

    #[test]
    fn forced_only_when_the_site_being_left_is_silent() {
        assert_eq!(failover_type(true), FailoverType::Planned);
        assert_eq!(failover_type(false), FailoverType::Forced);
    }

    #[test]
    fn which_errors_mean_read_again() {
        let e = |kind, code: Option<&str>| ApiError {
            kind,
            endpoint: "POST /x".into(),
            status: None,
            code: code.map(str::to_string),
            message: String::new(),
            retry_after: None,
        };
        let cases = [
            (e(ErrorKind::Conflict, Some("ABORTED")), true, false),
            (e(ErrorKind::Unavailable, None), false, true),
            (e(ErrorKind::Unreachable, None), false, true),
            (
                e(ErrorKind::InvalidParameter, Some("FAILED_PRECONDITION")),
                false,
                true,
            ),
            (
                e(ErrorKind::InvalidParameter, Some("INVALID_PARAMETER_VALUE")),
                false,
                false,
            ),
            (e(ErrorKind::PermissionDenied, None), false, false),
        ];
        for (err, stale, amb) in cases {
            assert_eq!((stale_etag(&err), ambiguous(&err)), (stale, amb), "{err:?}");
        }
    }
}
