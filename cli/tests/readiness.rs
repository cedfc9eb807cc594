//! The continuous readiness evaluation (`readiness-check`, the real binary under its template
//! policy), on the local stack: with everything in order it passes; then one thing at a time is
//! broken — and put back — and exactly that check must require action.

use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};

use lifeboat::local::LocalEnv;
use lifeboat_core::ledger::keys;
use lifeboat_core::{
    drift::snapshot::ConfigSnapshot,
    health_api::{HealthApiError, HealthEventRecord},
    plan::{Plan, SiteRole},
    readiness::{self, Check, Evaluation, Outcome},
};
use serde_json::{json, Value};

mod common;

/// A Status.io document naming both AWS regions of the demo, operational.
fn status_doc(containers: &[&str]) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| json!({"id": c, "name": c, "status": "Operational", "status_code": 100}))
        .collect();
    json!({"result": {
        "status_overall": {"status": "Operational", "status_code": 100, "updated": "2026-12-01T06:00:00Z"},
        "status": [{"id": "c1", "name": "Compute", "status": "Operational", "status_code": 100,
            "containers": containers}],
        "incidents": [], "maintenance": {"active": [], "upcoming": []}}})
}

/// One Health API poll with a canned answer (it records its result for the evaluation).
async fn health_poll(
    env: &LocalEnv,
    plan: &Plan,
    answer: Result<Vec<HealthEventRecord>, HealthApiError>,
) {
    let mut deps = env.deps.clone();
    deps.health = Some(lifeboat_core::kernel::HealthPort(Arc::new(
        common::CannedHealthApi(answer),
    )));
    lifeboat_core::incident::poll_health_api(&deps, plan)
        .await
        .unwrap();
}

/// What keeps the detection paths and the canary alive between evaluations (their schedules'
/// work): the probe, the Health poll, the canary writer.
async fn schedules_tick(env: &LocalEnv, plan: &Plan) {
    env.invoke("health-ingest", &json!({"lifeboat_probe": {}}))
        .await
        .unwrap();
    health_poll(env, plan, Ok(Vec::new())).await;
    env.invoke("canary-writer", &json!({})).await.unwrap();
}

/// Both sites' snapshots taken again now (the snapshot schedule's work).
async fn snapshots_now(env: &LocalEnv, plan: &Plan) {
    for role in [SiteRole::Primary, SiteRole::Dr] {
        env.deps
            .ledger
            .delete(&keys::snapshot(&plan.name, role))
            .await
            .unwrap();
    }
    let out = env
        .invoke("dr-config-check", &json!({"scheduled_snapshot": true}))
        .await
        .unwrap();
    assert_eq!(out["primary"]["result"], "taken", "{out}");
    assert_eq!(out["dr"]["result"], "taken", "{out}");
}

async fn evaluate(env: &LocalEnv) -> Evaluation {
    serde_json::from_value(
        env.invoke("readiness-check", &json!({"readiness_evaluation": true}))
            .await
            .unwrap(),
    )
    .unwrap()
}

fn requiring_action(e: &Evaluation) -> BTreeSet<Check> {
    e.action_required().map(|f| f.check).collect()
}

/// Evaluates and checks exactly `checks` require action; returns the evaluation.
async fn expect(env: &LocalEnv, plan: &Plan, checks: &[Check]) -> Evaluation {
    schedules_tick(env, plan).await;
    let e = evaluate(env).await;
    let want: BTreeSet<Check> = checks.iter().copied().collect();
    assert_eq!(requiring_action(&e), want, "{:#?}", e.findings);
    assert_eq!(
        e.outcome,
        if want.is_empty() {
            Outcome::Passed
        } else {
            Outcome::ActionRequired
        }
    );
    e
}

/// The primary's REST API with its PAT.
async fn primary_api(env: &LocalEnv, method: reqwest::Method, path: &str, body: Value) -> Value {
    let r = lifeboat_core::http::client()
        .request(method, format!("{}{path}", env.primary.url()))
        .bearer_auth(&env.primary_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap_or(Value::Null)
}

async fn fault(env: &LocalEnv, site: SiteRole, rule: Value) {
    env.admin_post(site, "faults", rule).await.unwrap();
}

async fn no_faults(env: &LocalEnv, site: SiteRole) {
    let url = format!("{}/__emulator/faults", env.emulator(site).url());
    lifeboat_core::http::client()
        .delete(url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_finding_comes_from_breaking_exactly_one_thing() {
    let page = Arc::new(Mutex::new(status_doc(&["AWS us-east-1", "AWS us-west-2"])));
    let url = common::serve_status(page.clone()).await;
    let (env, plan) = common::setup(|p| p.monitoring.status_page_url = Some(url)).await;
    snapshots_now(&env, &plan).await;

    // Everything in order: passed, and every check has its finding.
    let e = expect(&env, &plan, &[]).await;
    assert_eq!(
        e.findings.iter().map(|f| f.check).collect::<Vec<_>>(),
        Check::ALL.to_vec()
    );
    let stored = env
        .deps
        .ledger
        .get::<Evaluation>(&keys::readiness_latest(&plan.name))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(stored, e);

    // 1. DR refuses Lifeboat's token: its credentials, and so what it has for the start-up.
    fault(
        &env,
        SiteRole::Dr,
        json!({"path_prefix": "/api/", "status": 403,
        "body": {"error_code": "PERMISSION_DENIED", "message": "Invalid access token."}}),
    )
    .await;
    expect(&env, &plan, &[Check::TargetCredentials, Check::Capacity]).await;
    no_faults(&env, SiteRole::Dr).await;

    // 2. The primary refuses its PAT (revoked). Only the primary's credentials: the probes are
    //    what call a silent primary an incident.
    fault(
        &env,
        SiteRole::Primary,
        json!({"path_prefix": "/api/2.0/preview/scim/v2/Me", "status": 401,
        "body": {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."}}),
    )
    .await;
    let e = evaluate(&env).await;
    assert_eq!(
        requiring_action(&e),
        [Check::SourceCredentials].into(),
        "{:#?}",
        e.findings
    );
    no_faults(&env, SiteRole::Primary).await;

    // 3. Drift: a pool a live job uses gets another idle termination at the primary.
    let jobs = primary_api(
        &env,
        reqwest::Method::GET,
        "/api/2.2/jobs/list?expand_tasks=true&limit=100",
        json!(null),
    )
    .await;
    let used: BTreeSet<String> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            ["schedule", "continuous", "trigger"]
                .iter()
                .any(|f| j["settings"][f]["pause_status"] == "UNPAUSED")
        })
        .filter_map(|j| {
            j["settings"]["job_clusters"][0]["new_cluster"]["instance_pool_id"]
                .as_str()
                .map(str::to_string)
        })
        .collect();
    let pools = primary_api(
        &env,
        reqwest::Method::GET,
        "/api/2.0/instance-pools/list",
        json!(null),
    )
    .await;
    let pool = pools["instance_pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| used.contains(p["instance_pool_id"].as_str().unwrap()))
        .expect("a pool a live job uses")
        .clone();
    let primary = env
        .deps
        .workspaces
        .client(&plan.sites.primary)
        .await
        .unwrap();
    let pool_id = lifeboat_core::databricks::pools::PoolId(
        pool["instance_pool_id"].as_str().unwrap().to_string(),
    );
    let before = primary.get_pool(&pool_id).await.unwrap();
    let mut changed = before.clone();
    changed.idle_instance_autotermination_minutes = Some(3);
    primary.edit_pool(&changed).await.unwrap();
    snapshots_now(&env, &plan).await;
    let e = expect(&env, &plan, &[Check::Drift]).await;
    let drift = e.findings.iter().find(|f| f.check == Check::Drift).unwrap();
    assert!(
        drift
            .detail
            .contains("idle_instance_autotermination_minutes"),
        "{}",
        drift.detail
    );
    primary.edit_pool(&before).await.unwrap();
    snapshots_now(&env, &plan).await;

    // 4. The snapshot schedule stopped: the primary's snapshot is two hours old.
    let key = keys::snapshot(&plan.name, SiteRole::Primary);
    let fresh = env
        .deps
        .ledger
        .get::<ConfigSnapshot>(&key)
        .await
        .unwrap()
        .unwrap()
        .value;
    let mut old = fresh.clone();
    old.taken_at = Some(chrono::Utc::now() - chrono::Duration::hours(2));
    env.deps.ledger.put(&key, &old).await.unwrap();
    expect(&env, &plan, &[Check::Snapshots]).await;
    env.deps.ledger.put(&key, &fresh).await.unwrap();

    // 5. Replication two hours behind.
    let pair = plan.replication.buckets[0].clone();
    let replica_canary = env
        .aws
        .s3
        .get_object()
        .bucket(&pair.replica)
        .key(&pair.canary_key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    common::replica_two_hours_behind(&env, &plan).await;
    expect(&env, &plan, &[Check::Rpo]).await;
    env.aws
        .s3
        .put_object()
        .bucket(&pair.replica)
        .key(&pair.canary_key)
        .body(replica_canary.to_vec().into())
        .send()
        .await
        .unwrap();

    // 6. The canary writer stopped: the source canary is an hour old (the replica still
    //    caught up with it).
    let hour_ago = serde_json::to_vec(&lifeboat_core::replication::Canary {
        written_at: chrono::Utc::now() - chrono::Duration::minutes(61),
    })
    .unwrap();
    env.aws
        .s3
        .put_object()
        .bucket(&pair.source)
        .key(&pair.canary_key)
        .body(hour_ago.into())
        .send()
        .await
        .unwrap();
    let e = evaluate(&env).await;
    assert_eq!(
        requiring_action(&e),
        [Check::Canary].into(),
        "{:#?}",
        e.findings
    );

    // 7. Capacity: a pool the start-up fills is capped below what it asks at DR.
    let dr = env.deps.workspaces.client(&plan.sites.dr).await.unwrap();
    let startup = &plan.startup.pools[0];
    let dr_pool = dr
        .list_pools()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.instance_pool_name == startup.name)
        .unwrap();
    let mut capped = dr_pool.clone();
    capped.max_capacity = Some(startup.min_idle.saturating_sub(1));
    dr.edit_pool(&capped).await.unwrap();
    let e = expect(&env, &plan, &[Check::Capacity]).await;
    let cap = e
        .findings
        .iter()
        .find(|f| f.check == Check::Capacity)
        .unwrap();
    assert!(cap.detail.contains(&startup.name), "{}", cap.detail);
    dr.edit_pool(&dr_pool).await.unwrap();

    // 8. The status page no longer lists the primary's region (renamed container).
    *page.lock().unwrap() = status_doc(&["AWS us-east-1b", "AWS us-west-2"]);
    expect(&env, &plan, &[Check::StatusPage]).await;
    *page.lock().unwrap() = status_doc(&["AWS us-east-1", "AWS us-west-2"]);

    // 9. The Health API poll is denied (a policy lost `health:DescribeEvents`).
    schedules_tick(&env, &plan).await;
    health_poll(
        &env,
        &plan,
        Err(HealthApiError::Other(
            "AccessDeniedException: not authorized".into(),
        )),
    )
    .await;
    let e = evaluate(&env).await;
    assert_eq!(
        requiring_action(&e),
        [Check::HealthPoll].into(),
        "{:#?}",
        e.findings
    );

    // 10. The forwarder rule was deleted in the primary region.
    let events = env.aws.events_in(&plan.sites.primary.region);
    events
        .remove_targets()
        .rule(lifeboat::local::FORWARDER_RULE)
        .ids("lifeboat-dr-bus")
        .send()
        .await
        .unwrap();
    events
        .delete_rule()
        .name(lifeboat::local::FORWARDER_RULE)
        .send()
        .await
        .unwrap();
    let e = expect(&env, &plan, &[Check::Forwarder]).await;
    let fwd = e
        .findings
        .iter()
        .find(|f| f.check == Check::Forwarder)
        .unwrap();
    assert!(fwd.detail.contains("forwarder.yaml"), "{}", fwd.detail);

    // 11. A lock left behind eight hours ago (the forwarder still missing: two findings).
    env.deps
        .ledger
        .put(
            &keys::lock(&plan.name),
            &json!({"run_id": "failover-sales-platform-20261201T020000Z-dead", "acquired_at": chrono::Utc::now() - chrono::Duration::hours(8)}),
        )
        .await
        .unwrap();
    expect(&env, &plan, &[Check::Forwarder, Check::Lock]).await;

    // The history holds every evaluation, and the status trend counts them.
    let history = lifeboat::operate::readiness_history(&env.deps.ledger, &plan.name, 1)
        .await
        .unwrap();
    assert!(history.len() >= 12, "{}", history.len());
    let t = readiness::trend_of(&history);
    // What `lifeboat status` reads: the latest and the recent list give the same trend.
    let recent = env
        .deps
        .ledger
        .get::<Vec<readiness::Recent>>(&keys::readiness_recent(&plan.name))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(readiness::trend(&recent, history.last().cloned()), t);
    assert_eq!(t.passed, 1, "{t:?}");
    assert!(
        t.by_check.get("forwarder").is_some_and(|n| *n >= 2),
        "{t:?}"
    );
    let text = readiness::render(&t, chrono::Utc::now());
    assert!(
        text.contains("ACTION REQUIRED") && text.contains("lock"),
        "{text}"
    );
    env.stop().await;
}
