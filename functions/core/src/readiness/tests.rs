//! Table tests of each finding's rule.

use chrono::Duration;

use super::*;
use crate::ledger::keys;

fn now() -> DateTime<Utc> {
    Utc::now()
}

#[test]
fn credentials_of_the_target_must_answer_and_the_source_must_not_refuse() {
    use CredentialProbe::*;
    // (check, probe, status)
    let cases = [
        (Check::TargetCredentials, Answered, Status::Passed),
        (
            Check::TargetCredentials,
            Refused("401".into()),
            Status::ActionRequired,
        ),
        (
            Check::TargetCredentials,
            Unreachable("timeout".into()),
            Status::ActionRequired,
        ),
        (Check::SourceCredentials, Answered, Status::Passed),
        (
            Check::SourceCredentials,
            Refused("403".into()),
            Status::ActionRequired,
        ),
        (
            Check::SourceCredentials,
            Unreachable("timeout".into()),
            Status::Warning,
        ),
    ];
    for (check, probe, want) in cases {
        let f = credentials_finding(check, "site", &probe);
        assert_eq!((f.check, f.status), (check, want), "{probe:?}");
    }
}

#[test]
fn snapshots_older_than_three_intervals_require_action() {
    // (ages, status)
    type Ages<'a> = &'a [(&'a str, Option<i64>)];
    let cases: [(Ages, Status); 4] = [
        (&[("primary", Some(60)), ("dr", Some(900))], Status::Passed),
        (&[("primary", Some(2700)), ("dr", Some(10))], Status::Passed),
        (
            &[("primary", Some(2701)), ("dr", Some(10))],
            Status::ActionRequired,
        ),
        (
            &[("primary", None), ("dr", Some(10))],
            Status::ActionRequired,
        ),
    ];
    for (ages, want) in cases {
        assert_eq!(snapshots_finding(ages, 15, true).status, want, "{ages:?}");
    }
}

#[test]
fn capacity_needs_each_started_object_within_its_limits() {
    let plan = Plan::from_toml(include_str!("../../../../lifeboat.toml"), "lifeboat.toml").unwrap();
    let full = || TargetCapacity {
        pools: plan
            .startup
            .pools
            .iter()
            .map(|p| (p.name.clone(), Some(p.min_idle + 10)))
            .collect(),
        warehouses: plan
            .startup
            .warehouses
            .iter()
            .chain(plan.validation.warehouse.iter())
            .map(|w| (w.clone(), Some(2)))
            .collect(),
        clusters: plan.startup.clusters.iter().cloned().collect(),
    };
    assert!(!plan.startup.pools.is_empty() && !plan.startup.warehouses.is_empty());
    let pool = plan.startup.pools[0].clone();
    let wh = plan.startup.warehouses[0].clone();
    // (case, target, status)
    let mut cases = vec![("everything there", full(), Status::Passed)];
    let mut t = full();
    t.pools.remove(&pool.name);
    cases.push(("a pool missing", t, Status::ActionRequired));
    let mut t = full();
    t.pools
        .insert(pool.name.clone(), Some(pool.min_idle.saturating_sub(1)));
    if pool.min_idle > 0 {
        cases.push(("a pool too small", t, Status::ActionRequired));
    }
    let mut t = full();
    t.pools.insert(pool.name.clone(), None);
    cases.push(("a pool without a limit", t, Status::Passed));
    let mut t = full();
    t.warehouses.remove(&wh);
    cases.push(("a warehouse missing", t, Status::ActionRequired));
    let mut t = full();
    t.warehouses.insert(wh.clone(), Some(0));
    cases.push((
        "a warehouse with no clusters allowed",
        t,
        Status::ActionRequired,
    ));
    for (case, target, want) in cases {
        let f = capacity_finding(&plan, &target);
        assert_eq!(f.status, want, "{case}: {}", f.detail);
    }
}

#[test]
fn the_status_page_path_is_alive_when_recent_and_naming_the_primary() {
    let rec = |ago: i64, state: &str| ProbeRecord {
        checked_at: Some(now() - Duration::seconds(ago)),
        status_page: Some(
            serde_json::json!({"state": state, "reason": "container AWS us-east-1 missing"}),
        ),
    };
    // (case, configured, record, status)
    let cases = [
        ("not configured", false, None, Status::Warning),
        ("never ran", true, None, Status::ActionRequired),
        (
            "operational",
            true,
            Some(rec(60, "operational")),
            Status::Passed,
        ),
        (
            "disrupted is a verdict",
            true,
            Some(rec(60, "disrupted")),
            Status::Passed,
        ),
        (
            "unknown",
            true,
            Some(rec(60, "unknown")),
            Status::ActionRequired,
        ),
        (
            "stale",
            true,
            Some(rec(1200, "operational")),
            Status::ActionRequired,
        ),
        (
            "no verdict",
            true,
            Some(ProbeRecord {
                checked_at: Some(now()),
                status_page: None,
            }),
            Status::ActionRequired,
        ),
    ];
    for (case, configured, record, want) in cases {
        let f = status_page_finding(configured, record.as_ref(), now(), 900);
        assert_eq!(f.status, want, "{case}: {}", f.detail);
    }
}

#[test]
fn the_health_poll_must_run_and_be_permitted() {
    let rec = |ago: i64, result: HealthPollResult| HealthPollRecord {
        checked_at: now() - Duration::seconds(ago),
        result,
        error: Some("AccessDeniedException".into()),
    };
    use HealthPollResult::*;
    // (case, configured, record, status)
    let cases = [
        ("not deployed", false, None, Status::Warning),
        ("never ran", true, None, Status::ActionRequired),
        ("answered", true, Some(rec(30, Ok)), Status::Passed),
        (
            "no support plan",
            true,
            Some(rec(30, NotSubscribed)),
            Status::Warning,
        ),
        ("denied", true, Some(rec(30, Error)), Status::ActionRequired),
        ("stopped", true, Some(rec(4000, Ok)), Status::ActionRequired),
    ];
    for (case, configured, record, want) in cases {
        let f = health_poll_finding(configured, record.as_ref(), now(), 900);
        assert_eq!(f.status, want, "{case}: {}", f.detail);
    }
}

#[test]
fn the_forwarder_must_exist_enabled_towards_the_dr_bus() {
    use ForwarderState::*;
    let cases = [
        (
            Present {
                enabled: true,
                targets_dr_bus: true,
            },
            Status::Passed,
        ),
        (
            Present {
                enabled: false,
                targets_dr_bus: true,
            },
            Status::ActionRequired,
        ),
        (
            Present {
                enabled: true,
                targets_dr_bus: false,
            },
            Status::ActionRequired,
        ),
        (Missing, Status::ActionRequired),
        (Unknown("AccessDenied".into()), Status::ActionRequired),
    ];
    for (state, want) in cases {
        assert_eq!(
            forwarder_finding("r", "us-east-1", &state).status,
            want,
            "{state:?}"
        );
    }
}

#[test]
fn a_lock_held_long_requires_action() {
    let at = |ago: i64| Some(now() - Duration::seconds(ago));
    // (held, status)
    let cases = [
        (None, Status::Passed),
        (Some(("run-1", at(600))), Status::Warning),
        (Some(("run-1", at(8 * 3600))), Status::ActionRequired),
        (Some(("run-1", None)), Status::ActionRequired),
    ];
    for (held, want) in cases {
        assert_eq!(lock_finding(held, now(), 6 * 3600).status, want, "{held:?}");
    }
}

#[test]
fn a_fence_watch_that_ended_before_the_old_site_was_fenced_requires_action() {
    use crate::fence::watch::FenceWatchRecord;
    let watching = FenceWatchRecord::started("arn:g0".into());
    let confirmed = FenceWatchRecord {
        confirmed_at: Some(now()),
        ..watching.clone()
    };
    let stopped = FenceWatchRecord {
        stopped: Some((now(), "a failback began".into())),
        ..watching.clone()
    };
    // (watch, its execution's status, finding)
    let cases = [
        (None, None, Status::Passed),
        (Some(&confirmed), None, Status::Passed),
        (Some(&stopped), Some("SUCCEEDED"), Status::Passed),
        (Some(&watching), Some("RUNNING"), Status::Warning),
        (Some(&watching), Some("FAILED"), Status::ActionRequired),
        (Some(&watching), Some("ABORTED"), Status::ActionRequired),
        (Some(&watching), Some("TIMED_OUT"), Status::ActionRequired),
        // Ended without a confirmation and without continuing as new.
        (Some(&watching), Some("SUCCEEDED"), Status::ActionRequired),
        (Some(&watching), None, Status::ActionRequired),
        (
            Some(&watching),
            Some("UNKNOWN (throttled)"),
            Status::Warning,
        ),
    ];
    for (watch, execution, want) in cases {
        let f = fence_watch_finding(Some("failover-1"), watch, execution);
        assert_eq!(f.status, want, "{watch:?} {execution:?}: {}", f.detail);
        assert_eq!(f.check, Check::FenceWatch);
    }
    assert_eq!(fence_watch_finding(None, None, None).status, Status::Passed);
}

#[test]
fn the_outcome_requires_action_when_any_finding_does() {
    let f = |status| Finding::new(Check::Lock, status, "");
    assert_eq!(outcome(&[]), Outcome::Passed);
    assert_eq!(
        outcome(&[f(Status::Passed), f(Status::Warning)]),
        Outcome::Passed
    );
    assert_eq!(
        outcome(&[f(Status::Passed), f(Status::ActionRequired)]),
        Outcome::ActionRequired
    );
    // History keys sort by time.
    let a = keys::readiness_history("p", now());
    let b = keys::readiness_history("p", now() + Duration::seconds(1));
    assert!(a < b && a.starts_with(&keys::readiness_history_prefix("p")));
}

#[test]
fn the_trend_counts_outcomes_and_the_checks_that_required_action() {
    let eval = |ago: i64, failing: &[Check]| {
        let findings: Vec<Finding> = Check::ALL
            .iter()
            .map(|c| {
                Finding::new(
                    *c,
                    if failing.contains(c) {
                        Status::ActionRequired
                    } else {
                        Status::Passed
                    },
                    "",
                )
            })
            .collect();
        Evaluation {
            plan: "p".into(),
            evaluated_at: now() - Duration::minutes(ago),
            direction: Direction::Failover,
            outcome: outcome(&findings),
            findings,
        }
    };
    let evals = vec![
        eval(90, &[Check::Rpo]),
        eval(60, &[Check::Rpo, Check::Lock]),
        eval(30, &[]),
    ];
    let t = trend_of(&evals);
    // The recent list keeps the same trend, and only the last week.
    let mut recent = Vec::new();
    for e in &evals {
        recent = append_recent(recent, e);
    }
    assert_eq!(trend(&recent, evals.last().cloned()), t);
    let mut long = Vec::new();
    for i in 0..(RECENT_KEEP + 5) {
        long = append_recent(long, &eval(10_000 - i as i64, &[]));
    }
    assert_eq!(long.len(), RECENT_KEEP);
    assert_eq!((t.evaluations, t.passed, t.action_required), (3, 1, 2));
    assert_eq!(t.by_check.get("rpo"), Some(&2));
    assert_eq!(t.by_check.get("lock"), Some(&1));
    assert_eq!(t.marks, "!!+");
    let text = render(&t, now());
    assert!(text.starts_with("readiness (Failover): passed"), "{text}");
    assert!(text.contains("most often: rpo 2x, lock 1x"), "{text}");
    assert!(render(&trend(&[], None), now()).contains("no evaluation recorded yet"));
}
