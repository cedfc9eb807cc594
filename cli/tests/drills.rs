//! Failback and drills end to end: the real failback and readiness state machines in moto with
//! the real handlers, against the two emulated workspaces.

use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use lifeboat::{
    drill::{self, Answer, DrillKind, DrillOptions},
    local::{LocalEnv, FAILBACK_MACHINE},
};
use lifeboat_core::{
    plan::{Direction, Plan, SiteRole},
    report::Outcome,
    run::RunKind,
};
use serde_json::Value;

mod common;
use common::cname;
use lifeboat_core::ledger::keys;

async fn setup() -> (LocalEnv, Plan) {
    common::setup(|_| {}).await
}

/// A failover raised by a Health event, approved, which must succeed.
async fn succeeded_failover(env: &LocalEnv, plan: &Plan) -> lifeboat::drill::DrillResult {
    let failover = drill::drive(env, plan, &options(DrillKind::Failover))
        .await
        .unwrap();
    assert_eq!(
        failover.outcome,
        Outcome::Succeeded,
        "{:#?}",
        failover.report
    );
    failover
}

/// Starts the failback of `failover` and follows it to its end.
async fn failback_after(
    env: &LocalEnv,
    plan: &Plan,
    failover: &lifeboat::drill::DrillResult,
) -> lifeboat::drill::DrillResult {
    let (arn, run_id) = drill::start_run(
        env,
        plan,
        FAILBACK_MACHINE,
        RunKind::Failback,
        Direction::Failback,
        Some(lifeboat_core::run::RunId(failover.run_id.clone())),
    )
    .await
    .unwrap();
    drill::follow_and_collect(env, &arn, run_id, &options(DrillKind::Full))
        .await
        .unwrap()
}

async fn setup_edited(edit: impl FnOnce(&mut Plan)) -> (LocalEnv, Plan) {
    common::setup(edit).await
}

fn options(kind: DrillKind) -> DrillOptions {
    common::options(kind, Answer::Approve)
}

/// What a failover and its failback must leave as they found it: every job's activation
/// status, all-purpose clusters, pools, warehouses and pipelines.
async fn inventory(env: &LocalEnv, site: SiteRole) -> Value {
    let s = env.admin_get(site, "state").await.unwrap();
    let rows = |key: &str, fields: &[&str], keep: &dyn Fn(&Value) -> bool| -> Value {
        let mut v: Vec<String> = s[key]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| keep(o))
            .map(|o| {
                fields
                    .iter()
                    .map(|f| o[*f].to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        v.sort();
        serde_json::json!(v)
    };
    let all = |_: &Value| true;
    serde_json::json!({
        "jobs": rows("jobs", &["name", "schedule_pause_status", "continuous_pause_status", "trigger_pause_status"], &all),
        "clusters": rows("clusters", &["cluster_name", "state"], &|c: &Value| matches!(c["cluster_source"].as_str(), Some("UI") | Some("API"))),
        "pools": rows("pools", &["instance_pool_name", "min_idle_instances"], &all),
        "warehouses": rows("warehouses", &["name", "state"], &all),
        "pipelines": rows("pipelines", &["name", "state"], &all),
    })
}

async fn settle(env: &LocalEnv) {
    // Let asynchronous stops and terminations reach their final states.
    for _ in 0..50 {
        let busy = |s: &Value| {
            s.to_string().contains("TERMINATING")
                || s.to_string().contains("STOPPING")
                || s.to_string().contains("PENDING")
                || s.to_string().contains("STARTING")
        };
        let (p, d) = (
            inventory(env, SiteRole::Primary).await,
            inventory(env, SiteRole::Dr).await,
        );
        if !busy(&p) && !busy(&d) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_drill_round_trips_both_workspaces_at_realistic_timings() {
    // Clusters take minutes to start and stop (emulated): the failback's one-time DR shutdown
    // must wait for TERMINATING/STOPPING rather than call them failures.
    let (env, plan) = common::setup_with(common::realistic(), |_| {}).await;
    let primary_before = inventory(&env, SiteRole::Primary).await;
    let dr_before = inventory(&env, SiteRole::Dr).await;
    let production = plan.dns.as_ref().unwrap().record_name.clone();
    let drill_name = plan
        .dns
        .as_ref()
        .unwrap()
        .drill_record_name
        .clone()
        .unwrap();

    let results = drill::drive_full(&env, &plan, &options(DrillKind::Full))
        .await
        .unwrap();
    assert_eq!(results.len(), 2, "failover and failback ran");
    let (failover, failback) = (&results[0], &results[1]);
    assert_eq!(
        failover.outcome,
        Outcome::Succeeded,
        "{:#?}",
        failover.report
    );
    assert_eq!(
        failback.outcome,
        Outcome::Succeeded,
        "{:#?}",
        failback.report
    );
    assert!(failover.verdict.never_both_active && failback.verdict.never_both_active);

    settle(&env).await;
    assert_eq!(
        inventory(&env, SiteRole::Primary).await,
        primary_before,
        "the primary is restored exactly"
    );
    assert_eq!(
        inventory(&env, SiteRole::Dr).await,
        dr_before,
        "the DR site is reset to dormant"
    );

    // The drill moved the drill alias, not production; the failback moved it back.
    assert_eq!(
        cname(&env, &plan, &production).await.as_deref(),
        Some("primary.workspace.example.internal")
    );
    assert_eq!(
        cname(&env, &plan, &drill_name).await.as_deref(),
        Some("primary.workspace.example.internal")
    );
    assert_eq!(
        failover.report.dns.as_ref().unwrap().current,
        "dr.workspace.example.internal"
    );
    assert_eq!(
        failover.report.dns.as_ref().unwrap().record_name,
        drill_name
    );
    let param = env
        .aws
        .ssm
        .get_parameter()
        .name("/lifeboat/sales-platform/workspace-url")
        .send()
        .await
        .unwrap();
    assert_eq!(
        param.parameter().unwrap().value(),
        Some(env.primary.url()),
        "client parameters untouched by a drill"
    );

    // Figures computed from the recorded timestamps.
    for r in [failover, failback] {
        let rto = r.report.rto.from_declaration_seconds.unwrap();
        let first = r.report.steps.first().unwrap().started_at;
        let last = r.report.steps.iter().map(|s| s.ended_at).max().unwrap();
        assert!(
            rto > 0.0
                && rto
                    <= (last - r.report.trigger.declared_at).num_milliseconds() as f64 / 1000.0
                        + 0.001
        );
        assert!(first >= r.report.trigger.declared_at);
        assert!(
            r.report.rpo.as_ref().unwrap().buckets[0]
                .rpo_seconds
                .unwrap()
                > 0.0
        );
    }
    assert_eq!(failback.report.direction, "failback");
    // Per-table RPO in both directions: the failover measures the DR replica (the newest
    // commit's data still in flight: one version behind the primary), the failback the
    // reverse — the primary's copy against the DR site's log, complete there.
    for (r, at, version, behind) in [
        (&failover, "s3://sales-lake-usw2/delta/orders", 4, 1),
        (&failback, "s3://sales-lake-use1/delta/orders", 5, 0),
    ] {
        let rpo = r.report.rpo.as_ref().unwrap();
        let orders = rpo
            .tables
            .iter()
            .find(|t| t.name == "orders")
            .expect("the orders table");
        assert_eq!(orders.replica, at, "{orders:?}");
        assert_eq!(orders.consistent_version, Some(version), "{orders:?}");
        assert_eq!(orders.versions_behind, Some(behind), "{orders:?}");
        assert!(orders.ok, "{orders:?}");
        assert_eq!(rpo.tables.len(), 2);
    }
    // The failover's data fence was set, confirmed, and lifted exactly by the failback.
    let fence = failover.report.data_fence.as_ref().expect("a data fence");
    assert!(fence.confirmed_at.is_some());
    let lifted: lifeboat_core::fence::data::DataFenceRecord = env
        .deps
        .ledger
        .get(&keys::data_fence(&lifeboat_core::run::RunId(
            failover.run_id.clone(),
        )))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert!(lifted.removed_at.is_some(), "{lifted:?}");
    let policy = env
        .aws
        .s3
        .get_bucket_policy()
        .bucket(&plan.replication.buckets[0].replica)
        .send()
        .await
        .ok()
        .and_then(|p| p.policy().map(str::to_string));
    assert!(
        policy.is_none_or(|p| !p.contains("LifeboatDataFence")),
        "the replica's policy is as before the failover"
    );
    // Replication rules of the source are enabled again.
    let rules = env
        .aws
        .s3
        .get_bucket_replication()
        .bucket(&plan.replication.buckets[0].source)
        .send()
        .await
        .unwrap();
    assert!(rules
        .replication_configuration()
        .unwrap()
        .rules()
        .iter()
        .all(|r| r.status().as_str() == "Enabled"));
    for r in [failover, failback] {
        assert!(r.verdict.none_left_behind, "{:?}", r.verdict.left_behind);
        assert!(r.report.verdict.never_both_active && r.report.verdict.none_left_behind);
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_drill_leaves_the_primary_and_dns_untouched() {
    let (env, plan) = setup().await;
    let primary_before = inventory(&env, SiteRole::Primary).await;
    let dr_before = inventory(&env, SiteRole::Dr).await;
    let r = drill::drive_readiness(&env, &plan, &options(DrillKind::Readiness))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::ReadinessVerified, "{:#?}", r.report);
    assert!(r.report.validation.as_ref().unwrap().passed);
    assert!(
        r.report.approval.is_none(),
        "readiness drills need no approval by default"
    );
    settle(&env).await;
    assert_eq!(inventory(&env, SiteRole::Primary).await, primary_before);
    assert_eq!(
        inventory(&env, SiteRole::Dr).await,
        dr_before,
        "the drill's warehouse was stopped again"
    );
    // Not a single write reached the primary; its timeline shows no change after start-up.
    let log = env.admin_get(SiteRole::Primary, "requests").await.unwrap();
    assert!(log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["method"] != "POST"));
    let dr_log = env.admin_get(SiteRole::Dr, "requests").await.unwrap();
    let writes: Vec<String> = dr_log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "POST" && r["path"].as_str().unwrap().contains("/sql/warehouses/")
        })
        .map(|r| r["path"].to_string())
        .collect();
    assert_eq!(writes.len(), 2, "one start and one stop: {writes:?}");
    let dns = plan.dns.as_ref().unwrap();
    assert_eq!(
        cname(&env, &plan, &dns.record_name).await.as_deref(),
        Some("primary.workspace.example.internal")
    );
    assert_eq!(
        cname(&env, &plan, dns.drill_record_name.as_deref().unwrap()).await,
        None
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_without_a_failover_is_refused() {
    let (env, plan) = setup().await;
    let primary_before = inventory(&env, SiteRole::Primary).await;
    let (arn, run_id) = drill::start_run(
        &env,
        &plan,
        FAILBACK_MACHINE,
        RunKind::Failback,
        Direction::Failback,
        None,
    )
    .await
    .unwrap();
    let mut status = ExecutionStatus::Running;
    let mut error = None;
    let mut cause = None;
    for _ in 0..100 {
        let d = env
            .aws
            .sfn
            .describe_execution()
            .execution_arn(&arn)
            .send()
            .await
            .unwrap();
        status = d.status().clone();
        error = d.error().map(str::to_string);
        cause = d.cause().map(str::to_string);
        if status != ExecutionStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("RunRefused"));
    let cause = cause.unwrap_or_default();
    assert!(
        cause.contains("failback needs a completed failover"),
        "the reason is given: {cause}"
    );
    assert!(env
        .deps
        .ledger
        .get_raw(&lifeboat_core::ledger::keys::lock(&plan.name))
        .await
        .unwrap()
        .is_none());
    assert!(env
        .deps
        .ledger
        .get_raw(&lifeboat_core::ledger::keys::run_record(
            &lifeboat_core::run::RunId(run_id.clone())
        ))
        .await
        .unwrap()
        .is_none());
    assert_eq!(inventory(&env, SiteRole::Primary).await, primary_before);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_readiness_drill_starts_through_health_ingest() {
    // What EventBridge Scheduler sends weekly (infra/template.yaml, ReadinessDrill).
    let (env, _plan) = setup().await;
    let out: lifeboat_core::incident::IngestOutput = serde_json::from_value(
        env.invoke(
            "health-ingest",
            &serde_json::json!({"lifeboat_drill": "readiness"}),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let lifeboat_core::incident::IngestOutput::Started {
        execution_arn,
        run_id,
    } = out
    else {
        panic!("{out:?}")
    };
    assert!(run_id.starts_with("readiness-"));
    let r = drill::follow_and_collect(&env, &execution_arn, run_id, &options(DrillKind::Readiness))
        .await
        .unwrap();
    assert_eq!(r.outcome, Outcome::ReadinessVerified, "{:#?}", r.report);
    assert_eq!(
        r.report.trigger.source,
        lifeboat_core::run::TriggerSource::Schedule
    );
    // A typo in the schedule's input is refused with the field named.
    let err = env
        .invoke(
            "health-ingest",
            &serde_json::json!({"lifeboat_drill": "weekly"}),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("lifeboat_drill"), "{err}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failback_is_refused_when_the_primary_fails_its_pre_checks() {
    let (env, plan) = setup().await;
    let failover = succeeded_failover(&env, &plan).await;
    let dr_before = inventory(&env, SiteRole::Dr).await;
    // The primary region is still down.
    env.outage(SiteRole::Primary, true).await.unwrap();
    let r = failback_after(&env, &plan, &failover).await;
    assert_eq!(r.outcome, Outcome::Refused, "{:#?}", r.report);
    let cause = r.report.error.as_ref().unwrap()["Cause"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(cause.contains("pre-checks"), "{cause}");
    assert!(r.report.approval.is_none(), "refused before asking anyone");
    env.outage(SiteRole::Primary, false).await.unwrap();
    assert_eq!(
        inventory(&env, SiteRole::Dr).await,
        dr_before,
        "DR keeps serving, untouched"
    );
    let dns = plan.dns.as_ref().unwrap();
    assert_eq!(
        cname(&env, &plan, &dns.record_name).await.as_deref(),
        Some("dr.workspace.example.internal")
    );
    env.stop().await;
}

/// Every client setting the plan lists, name → value, as clients read it now.
async fn client_settings(env: &LocalEnv, plan: &Plan) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in plan.dns.as_ref().unwrap().all_client_settings() {
        let v = env
            .aws
            .ssm
            .get_parameter()
            .name(&s.parameter)
            .send()
            .await
            .unwrap();
        let value = v.parameter().and_then(|p| p.value()).unwrap().to_string();
        out.push((s.parameter, value));
    }
    out
}

/// The id of the site's warehouse named `name`.
async fn warehouse_id(env: &LocalEnv, site: SiteRole, name: &str) -> String {
    let s = env.admin_get(site, "state").await.unwrap();
    let ids: Vec<&str> = s["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["name"] == name)
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{name} at {site:?}");
    ids[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_and_failback_move_the_warehouse_http_path_and_jdbc_url_and_back() {
    let (env, plan) = setup().await;
    let primary_bi = warehouse_id(&env, SiteRole::Primary, "Shared BI").await;
    let dr_bi = warehouse_id(&env, SiteRole::Dr, "Shared BI").await;
    assert_ne!(primary_bi, dr_bi, "the fixture must make the ids differ");
    let host_port = |url: &str| {
        let u = url::Url::parse(url).unwrap();
        format!(
            "{}:{}",
            u.host_str().unwrap(),
            u.port_or_known_default().unwrap()
        )
    };
    let expected = |url: &str, id: &str| {
        vec![
            (
                "/lifeboat/sales-platform/workspace-url".to_string(),
                url.to_string(),
            ),
            (
                "/lifeboat/sales-platform/bi-http-path".to_string(),
                format!("/sql/1.0/warehouses/{id}"),
            ),
            (
                "/lifeboat/sales-platform/bi-jdbc-url".to_string(),
                format!(
                    "jdbc:databricks://{}/default;transportMode=http;ssl=1;AuthMech=3;httpPath=/sql/1.0/warehouses/{id}",
                    host_port(url)
                ),
            ),
        ]
    };
    let before = client_settings(&env, &plan).await;
    assert_eq!(before, expected(env.primary.url(), &primary_bi));

    let failover = succeeded_failover(&env, &plan).await;
    assert_eq!(
        client_settings(&env, &plan).await,
        expected(env.dr.url(), &dr_bi),
        "clients read the DR workspace and the DR warehouse"
    );
    // The report shows before and after; before is what failback puts back.
    let dns = failover.report.dns.as_ref().unwrap();
    let rows: Vec<(&str, &str, Option<&str>, &str)> = dns
        .parameters
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.describes.as_str(),
                p.previous.as_deref(),
                p.current.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows[1],
        (
            "/lifeboat/sales-platform/bi-http-path",
            "http_path of Shared BI",
            Some(format!("/sql/1.0/warehouses/{primary_bi}").as_str()),
            format!("/sql/1.0/warehouses/{dr_bi}").as_str(),
        )
    );
    // The move was verified as clients make it: the name, then each parameter they read, the
    // queries through the warehouse the HTTP path names.
    let check = failover.report.client_check.as_ref().unwrap();
    assert!(check.passed, "{check:#?}");
    let names: Vec<&str> = check.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dns: databricks.sales.example.internal",
            "client setting /lifeboat/sales-platform/workspace-url (workspace_url)",
            "client setting /lifeboat/sales-platform/bi-http-path (http_path)",
            &format!("sql through {dr_bi}: SELECT 1"),
            &format!("sql through {dr_bi}: orders replicated"),
            "client setting /lifeboat/sales-platform/bi-jdbc-url (jdbc_url)",
        ]
    );
    assert!(
        check.checks[0]
            .detail
            .starts_with("answers dr.workspace.example.internal"),
        "{:?}",
        check.checks[0]
    );
    assert!(failover
        .report
        .steps
        .iter()
        .any(|s| s.step == "verify-clients"));
    let md = lifeboat_core::report::markdown::render_markdown(&failover.report);
    assert!(
        md.contains(&format!(
            "| /lifeboat/sales-platform/bi-http-path | http_path of Shared BI | /sql/1.0/warehouses/{primary_bi} | /sql/1.0/warehouses/{dr_bi} |"
        )),
        "{md}"
    );

    let failback = failback_after(&env, &plan, &failover).await;
    assert_eq!(
        failback.outcome,
        Outcome::Succeeded,
        "{:#?}",
        failback.report
    );
    let check = failback.report.client_check.as_ref().unwrap();
    assert!(
        check.passed
            && check.checks[0]
                .detail
                .starts_with("answers primary.workspace.example.internal"),
        "{check:#?}"
    );
    assert_eq!(
        client_settings(&env, &plan).await,
        before,
        "failback puts every client setting back"
    );
    // People were told, on Slack as on every channel: the failover's switch with the DR
    // warehouse's HTTP path and JDBC URL, then the failback's switch and its end.
    let told = |needle: String| {
        let env = &env;
        async move {
            for _ in 0..150 {
                if env
                    .webhook_inbox("slack")
                    .iter()
                    .any(|m| m.to_string().contains(&needle))
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("never told on Slack: {needle}");
        }
    };
    told(format!("httpPath=/sql/1.0/warehouses/{dr_bi}")).await;
    told("sales-platform: clients switched to the primary site".into()).await;
    told(format!(
        "Production now runs at the primary site: {}",
        env.primary.url()
    ))
    .await;
    // The default switch needs Route 53's control plane (what `routing_control` avoids; the
    // statically stable test's "no write" check is seen to catch it here).
    assert!(env
        .host
        .gate
        .decisions()
        .iter()
        .any(|d| d.function == "dns-switch"
            && d.action == "route53:ChangeResourceRecordSets"
            && d.allowed));
    env.stop().await;
}

/// Before any switch, the client-path check of a failover must fail, naming what clients reach
/// instead — and the DR site's credentials must not be sent to the host a parameter names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_check_fails_naming_what_clients_reach_when_nothing_moved() {
    let (env, plan) = setup().await;
    let primary_bi = warehouse_id(&env, SiteRole::Primary, "Shared BI").await;
    let run = lifeboat_core::incident::run_context(
        &plan,
        RunKind::Failover,
        Direction::Failover,
        lifeboat_core::run::Trigger {
            source: lifeboat_core::run::TriggerSource::Operator,
            summary: "client check before the switch".into(),
            declared_at: chrono::Utc::now(),
            event_arn: None,
            incident_started_at: None,
        },
        None,
    );
    let primary_requests = |log: Value| log["requests"].as_array().unwrap().len();
    let before = primary_requests(env.admin_get(SiteRole::Primary, "requests").await.unwrap());
    let out = env
        .invoke(
            "validate-workspace",
            &serde_json::json!({"run": run, "through_clients": true}),
        )
        .await
        .unwrap();
    let out: lifeboat_core::validation::ValidationOutput = serde_json::from_value(out).unwrap();
    assert!(!out.passed && out.through_clients);
    let detail = |prefix: &str| {
        out.checks
            .iter()
            .find(|c| c.name.starts_with(prefix))
            .map(|c| (c.ok, c.detail.clone()))
            .unwrap_or_else(|| panic!("{prefix}: {out:#?}"))
    };
    let (ok, d) = detail("dns: databricks.sales.example.internal");
    assert!(
        !ok && d.starts_with("answers primary.workspace.example.internal"),
        "{d}"
    );
    let primary = url::Url::parse(env.primary.url()).unwrap();
    let primary_authority = format!(
        "{}:{}",
        primary.host_str().unwrap(),
        primary.port_or_known_default().unwrap()
    );
    let (ok, d) = detail("client setting /lifeboat/sales-platform/workspace-url");
    assert!(
        !ok && d.starts_with(&format!(
            "holds {}, not the target's URL",
            env.primary.url()
        )),
        "{d}"
    );
    let (ok, d) = detail("client setting /lifeboat/sales-platform/bi-jdbc-url");
    assert!(
        !ok && d.contains(&format!("sends clients to {primary_authority}")),
        "{d}"
    );
    // The HTTP path alone names no host: it names the primary's warehouse, unknown at DR.
    let (ok, d) = detail("client setting /lifeboat/sales-platform/bi-http-path");
    assert!(
        !ok && d.contains(&format!("warehouse {primary_bi} at the target")),
        "{d}"
    );
    assert!(out.checks.iter().all(|c| !c.name.starts_with("sql")));
    // Nothing was sent to the host the stale parameters name.
    let after = primary_requests(env.admin_get(SiteRole::Primary, "requests").await.unwrap());
    assert_eq!(before, after, "the DR credentials stayed with the DR site");
    env.stop().await;
}

/// The state of a local ARC routing control.
fn control_state(env: &LocalEnv, arn: &str) -> String {
    env.host
        .arc
        .lock()
        .unwrap()
        .get(arn)
        .map(|(_, state)| state.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statically_stable_switch_moves_clients_without_route53s_control_plane() {
    let (env, plan) = setup_edited(|p| {
        p.dns.as_mut().unwrap().switch = lifeboat_core::plan::SwitchMode::RoutingControl;
    })
    .await;
    let dns = plan.dns.as_ref().unwrap();
    let control = dns.routing_control.as_ref().unwrap().control_arn.clone();
    assert_eq!(
        control_state(&env, &control),
        "On",
        "set up with the primary serving"
    );
    // The first cluster endpoint (in the failing region) does not answer: the next one does.
    let mut unavailable = lifeboat::local::host::AwsFault::error(
        "route53-recovery-cluster:UpdateRoutingControlState",
        503,
        "EndpointTemporarilyUnavailableException",
        1,
    );
    unavailable.function = Some("dns-switch".into());
    env.host.faults.lock().unwrap().aws.push(unavailable);

    let failover = succeeded_failover(&env, &plan).await;
    assert_eq!(
        control_state(&env, &control),
        "Off",
        "clients sent to the DR site"
    );
    let switched = failover.report.dns.as_ref().unwrap();
    assert_eq!(
        switched.change_status,
        "routing control Off (ARC endpoint in us-west-2; 1 skipped)"
    );
    assert_eq!(
        switched.previous.as_deref(),
        Some("primary.workspace.example.internal")
    );
    let check = failover.report.client_check.as_ref().unwrap();
    assert!(check.passed, "{check:#?}");
    assert_eq!(
        check.checks[0].detail,
        "answers dr.workspace.example.internal (failover records read back, health from the \
         routing control); the target is dr.workspace.example.internal"
    );

    let failback = failback_after(&env, &plan, &failover).await;
    assert_eq!(
        failback.outcome,
        Outcome::Succeeded,
        "{:#?}",
        failback.report
    );
    assert_eq!(control_state(&env, &control), "On");
    assert!(failback.report.client_check.as_ref().unwrap().passed);

    // Neither run needed Route 53's control plane: no function called ChangeResourceRecordSets
    // (or any other Route 53 write), and the records are the pair set up beforehand.
    let writes: Vec<_> = env
        .host
        .gate
        .decisions()
        .into_iter()
        .filter(|d| {
            ["Change", "Create", "Delete", "Update"]
                .iter()
                .any(|w| d.action.starts_with(&format!("route53:{w}")))
        })
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
    let arc_calls: Vec<_> = env
        .host
        .gate
        .decisions()
        .into_iter()
        .filter(|d| d.action.starts_with("route53-recovery-cluster:"))
        .map(|d| (d.function, d.action, d.allowed))
        .collect();
    assert!(
        arc_calls.contains(&(
            "dns-switch".into(),
            "route53-recovery-cluster:UpdateRoutingControlState".into(),
            true
        )),
        "{arc_calls:?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managed_dr_moves_the_failover_group_and_its_stable_url_over_and_back() {
    let (env, plan) = common::setup(common::with_managed_dr).await;
    let failover = succeeded_failover(&env, &plan).await;
    common::assert_group_serves(&env, &plan, "us-west-2", lifeboat::local::DR_WORKSPACE_ID).await;
    let moved = failover
        .report
        .managed_dr
        .as_ref()
        .expect("a Managed DR section");
    assert_eq!(
        (moved.region_before.as_deref(), moved.region_now.as_deref()),
        (Some("us-east-1"), Some("us-west-2"))
    );
    // The group moved before anything started at DR: its step ended before start-up began.
    let ended = |name: &str| {
        failover
            .report
            .steps
            .iter()
            .filter(|s| s.step == name)
            .map(|s| s.ended_at)
            .max()
            .unwrap_or_else(|| panic!("no {name} step"))
    };
    let started = |name: &str| {
        failover
            .report
            .steps
            .iter()
            .filter(|s| s.step == name)
            .map(|s| s.started_at)
            .min()
            .unwrap_or_else(|| panic!("no {name} step"))
    };
    assert!(ended("managed-failover") <= started("dr-startup"));

    let failback = failback_after(&env, &plan, &failover).await;
    assert_eq!(
        failback.outcome,
        Outcome::Succeeded,
        "{:#?}",
        failback.report
    );
    common::assert_group_serves(
        &env,
        &plan,
        "us-east-1",
        lifeboat::local::PRIMARY_WORKSPACE_ID,
    )
    .await;
    let back = failback
        .report
        .managed_dr
        .as_ref()
        .expect("a Managed DR section");
    assert_eq!(back.goal_region.as_deref(), Some("us-east-1"));
    // The failback measured the reverse replication through the group as well.
    assert!(failback.report.rpo.as_ref().unwrap().managed_dr.is_some());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dns_alias_clients_move_with_the_stable_url_alone() {
    let (env, plan) = common::setup(|p| {
        common::with_managed_dr(p);
        p.dns = None;
    })
    .await;
    let failover = succeeded_failover(&env, &plan).await;
    assert!(failover.report.dns.is_none(), "no DNS switch ran");
    assert!(
        !failover.report.steps.iter().any(|s| s.step == "dns-switch"),
        "{:?}",
        failover.report.steps
    );
    // The client check read where the stable URL routes: the DR workspace.
    let clients = failover
        .report
        .client_check
        .as_ref()
        .expect("a client check");
    assert!(clients.passed, "{clients:#?}");
    let stable = clients
        .checks
        .iter()
        .find(|c| c.name.starts_with("stable URL: "))
        .expect("a stable URL check");
    assert!(
        stable.detail.starts_with(&format!(
            "routes to workspace {}",
            lifeboat::local::DR_WORKSPACE_ID
        )),
        "{stable:?}"
    );
    let markdown = lifeboat_core::report::markdown::render_markdown(&failover.report);
    assert!(markdown.contains("No DNS switch: clients keep the Managed DR stable URL"));
    // And back.
    let failback = failback_after(&env, &plan, &failover).await;
    assert_eq!(
        failback.outcome,
        Outcome::Succeeded,
        "{:#?}",
        failback.report
    );
    assert_eq!(
        common::stable_url_routes_to(&env, &plan).await,
        lifeboat::local::PRIMARY_WORKSPACE_ID
    );
    env.stop().await;
}
