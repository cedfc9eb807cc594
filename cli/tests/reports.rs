//! Every run leaves its report in the ledger (JSON, Markdown, HTML) — drills and real runs,
//! successful or not — with RTO per phase and, for what it did not reach, the reason.

use lifeboat::drill::{self, Answer, DrillKind};
use lifeboat_core::{
    ledger::keys::ReportFormat,
    report::{Outcome, Report},
};

mod common;

async fn from_ledger(env: &lifeboat::local::LocalEnv, run_id: &str) -> (Report, String, String) {
    let get = |format: lifeboat_core::ledger::keys::ReportFormat| {
        let key =
            lifeboat_core::ledger::keys::report(&lifeboat_core::run::RunId(run_id.into()), format);
        async move {
            String::from_utf8(
                env.deps
                    .ledger
                    .get_raw(&key)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{key} missing")),
            )
            .unwrap()
        }
    };
    let json: Report = serde_json::from_str(&get(ReportFormat::Json).await).unwrap();
    (
        json,
        get(ReportFormat::Markdown).await,
        get(ReportFormat::Html).await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_report_in_the_ledger_shows_where_the_time_went() {
    let (env, plan) = common::setup(|_| {}).await;
    let r = drill::drive(
        &env,
        &plan,
        &common::options(DrillKind::Failover, Answer::Approve),
    )
    .await
    .unwrap();
    assert_eq!(r.outcome, Outcome::Succeeded);
    let (report, md, html) = from_ledger(&env, &r.run_id).await;
    let phase = |n: &str| {
        report
            .phases
            .iter()
            .find(|p| p.name == n)
            .unwrap_or_else(|| panic!("phase {n} missing: {:?}", report.phases))
    };
    for name in [
        "detection",
        "pre-checks",
        "decision",
        "data fence",
        "fence",
        "start-up",
        "activation",
        "client switch",
        "validation",
    ] {
        let p = phase(name);
        assert!(p.seconds >= 0.0 && (0.0..=1.0).contains(&p.share), "{p:?}");
        assert!(
            md.contains(&format!("| {name} |")),
            "{name} not in the Markdown"
        );
    }
    // The figures agree: the incident's start → declaration is the detection phase; the
    // decision ends when the approval was given; RTO from the incident = detection + RTO from
    // declaration; no phase ends after the run served.
    let approval = report.approval.as_ref().unwrap();
    assert_eq!(phase("decision").end, approval.decided_at);
    assert_eq!(phase("detection").end, report.trigger.declared_at);
    let from_incident = report.rto.from_incident_seconds.unwrap();
    let from_declaration = report.rto.from_declaration_seconds.unwrap();
    assert!(
        (from_incident - (phase("detection").seconds + from_declaration)).abs() < 0.01,
        "{from_incident} vs {} + {from_declaration}",
        phase("detection").seconds
    );
    let served = report.trigger.declared_at
        + chrono::Duration::milliseconds((from_declaration * 1000.0).round() as i64);
    for p in &report.phases {
        assert!(
            p.end <= served + chrono::Duration::milliseconds(1),
            "{p:?} after {served}"
        );
    }
    assert!(html.contains("phase: fence") && html.contains("RTO by phase"));
    assert!(md.contains("from the incident's start"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_readiness_runs_leave_complete_reports_with_reasons() {
    let (env, plan) = common::setup(|_| {}).await;
    let rejected = drill::drive(
        &env,
        &plan,
        &common::options(DrillKind::Failover, Answer::Reject),
    )
    .await
    .unwrap();
    assert_eq!(rejected.outcome, Outcome::Rejected);
    let (_, md, html) = from_ledger(&env, &rejected.run_id).await;
    for section in [
        "## RTO by phase",
        "## Fence of the old site",
        "## Schedules at the target",
        "## Data fence",
        "## Validation",
        "## DNS and client settings",
        "## Safety verdicts",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    assert!(
        md.matches("the approval was refused").count() >= 5,
        "each unreached section says why:\n{md}"
    );
    assert!(html.contains("Not reached") && html.contains("Safety verdicts"));
    let readiness = drill::drive_readiness(
        &env,
        &plan,
        &common::options(DrillKind::Readiness, Answer::Approve),
    )
    .await
    .unwrap();
    let (report, md, _) = from_ledger(&env, &readiness.run_id).await;
    assert_eq!(report.kind, "readiness");
    assert!(
        md.contains("## Fence of the old site\n\nNot reached: a readiness drill does not do this"),
        "{md}"
    );
    env.stop().await;
}
