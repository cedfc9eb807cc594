//! The shipped artifacts: every step runs as its function's real binary under the Lambda
//! Runtime API, with the environment and the role policy `infra/template.yaml` gives it; every
//! AWS call is checked against that policy. Removing a permission or renaming a variable in the
//! template fails the drill, naming what is missing. (Needs the function binaries built:
//! `cargo build --workspace --bins`, which `scripts/test.sh` runs first.)

mod common;

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use lifeboat::{
    drill::{self, Answer, DrillKind},
    local::{moto::repo_root, LocalOptions},
};
use yaml_serde::Value as Yaml;

fn binaries(template: Option<PathBuf>) -> LocalOptions {
    LocalOptions {
        lifecycle_delay: Duration::from_millis(200),
        binaries: true,
        template,
        ..LocalOptions::default()
    }
}

/// A copy of the repository's template with `edit` applied to its parsed form.
fn edited_template(edit: impl FnOnce(&mut Yaml)) -> PathBuf {
    let root = repo_root().unwrap();
    let text = std::fs::read_to_string(root.join("infra/template.yaml")).unwrap();
    let mut doc: Yaml = yaml_serde::from_str(&text).unwrap();
    edit(&mut doc);
    let path = std::env::temp_dir().join(format!(
        "lifeboat-template-{}.yaml",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::write(&path, yaml_serde::to_string(&doc).unwrap()).unwrap();
    path
}

/// Removes `action` from every statement of `function`'s policies (a statement left without
/// actions goes too): the template minus one permission.
fn without_permission(function: &str, action: &str) -> PathBuf {
    edited_template(|doc| {
        let policies = doc["Resources"][function]["Properties"]["Policies"]
            .as_sequence_mut()
            .expect("policies");
        for policy in policies {
            let statements = policy["Statement"].as_sequence_mut().expect("statements");
            statements.retain_mut(|s| {
                // A conditional statement (`!If`) is kept as it is.
                if !s.is_mapping() {
                    return true;
                }
                match &mut s["Action"] {
                    Yaml::Sequence(actions) => actions.retain(|a| a.as_str() != Some(action)),
                    Yaml::String(a) if a == action => return false,
                    _ => {}
                }
                !matches!(&s["Action"], Yaml::Sequence(a) if a.is_empty())
            });
        }
    })
}

async fn failover(options: LocalOptions) -> (drill::DrillResult, lifeboat::drill::Artifacts) {
    let (result, artifacts) = failover_attempt(options).await;
    (result.expect("the drill ran to its end"), artifacts)
}

/// An approved failover on a fresh environment, whatever its end, and what the binaries called.
async fn failover_attempt(
    options: LocalOptions,
) -> (
    anyhow::Result<drill::DrillResult>,
    lifeboat::drill::Artifacts,
) {
    let (env, plan) = common::setup_with(options, |_| {}).await;
    let result = drill::drive(
        &env,
        &plan,
        &common::options(DrillKind::Failover, Answer::Approve),
    )
    .await;
    let artifacts = drill::artifacts(&env);
    env.stop().await;
    (result, artifacts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_runs_the_shipped_binaries_within_their_template_policies() {
    let (result, artifacts) = failover(binaries(None)).await;
    assert!(
        artifacts.denied.is_empty(),
        "IAM denied: {:?}",
        artifacts.denied
    );
    assert!(result.outcome.is_success(), "{:?}", result.outcome);
    // Every step of a failover ran as its own process, started cold at least once.
    for f in [
        "health-ingest",
        "run-ledger",
        "request-approval",
        "shutdown-sweep",
        "data-fence",
        "replication-check",
        "dr-config-check",
        "dr-startup",
        "activate-schedules",
        "validate-workspace",
        "dns-switch",
    ] {
        let figures = &artifacts.functions[f];
        assert!(figures["cold_starts"].as_u64() >= Some(1), "{f}: {figures}");
        assert!(figures["invocations"].as_u64() >= Some(1), "{f}: {figures}");
        // Warm reuse: a function invoked several times did not start a process per call.
        assert!(
            figures["cold_starts"].as_u64() <= figures["invocations"].as_u64(),
            "{f}: {figures}"
        );
    }
    assert!(artifacts.allowed > 20, "{}", artifacts.allowed);
    // The reviewers' list of each function's AWS calls (`aws-actions` in its Cargo.toml, which
    // tests/infra holds the template to) is proven by what the binaries really called: every
    // action observed is listed.
    let root = repo_root().unwrap();
    for call in &artifacts.calls {
        let (function, rest) = call.split_once(": ").unwrap();
        let action = rest.split(" on ").next().unwrap();
        if action == "sts:GetCallerIdentity" {
            continue;
        }
        let manifest =
            std::fs::read_to_string(root.join("functions").join(function).join("Cargo.toml"))
                .unwrap();
        let manifest: toml::Table = toml::from_str(&manifest).unwrap();
        let listed: Vec<&str> = manifest["package"]["metadata"]["lifeboat"]["aws-actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert!(
            listed.contains(&action),
            "{function} called {action} ({call}); its aws-actions list {listed:?} misses it"
        );
    }
}

/// Removing any one of these grants from the template fails the failover, with the action in
/// the message. Each row is a different service and a different way of failing: an S3 read of
/// keys that may be absent (403 without ListBucket, as real S3 answers), a publish, a state
/// machine start, a secret read, a DNS change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_permission_fails_the_drill_naming_the_action() {
    let table = [
        (
            "RunLedgerFunction",
            "s3:ListBucket",
            "run-ledger: s3:ListBucket",
        ),
        // Real S3 answers a read of an absent key with 403 when the caller may not list it:
        // the first delivery of an event reads a dedup record that does not exist yet.
        (
            "HealthIngestFunction",
            "s3:ListBucket",
            "health-ingest: s3:GetObject of a missing key (403, not 404",
        ),
        (
            "HealthIngestFunction",
            "states:StartExecution",
            "health-ingest: states:StartExecution",
        ),
        (
            "DrStartupFunction",
            "secretsmanager:GetSecretValue",
            "dr-startup: secretsmanager:GetSecretValue",
        ),
        (
            "DnsSwitchFunction",
            "route53:ChangeResourceRecordSets",
            "dns-switch: route53:ChangeResourceRecordSets",
        ),
    ];
    // Each row its own stack, all at once (they mostly wait).
    let runs = table.map(|(function, action, expected)| {
        Box::pin(async move {
            let template = without_permission(function, action);
            let (result, artifacts) = failover_attempt(binaries(Some(template.clone()))).await;
            let _ = std::fs::remove_file(&template);
            (function, action, expected, result, artifacts)
        })
    });
    for (function, action, expected, result, artifacts) in futures::future::join_all(runs).await {
        assert!(
            artifacts.denied.iter().any(|d| d.starts_with(expected)),
            "without {action} on {function}: denials {:?}",
            artifacts.denied
        );
        if let Ok(mut r) = result {
            r.artifacts = Some(artifacts);
            assert!(
                !r.passed(),
                "without {action} on {function} the drill must fail"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_variable_fails_at_start_naming_it() {
    let template = edited_template(|doc| {
        let vars = doc["Globals"]["Function"]["Environment"]["Variables"]
            .as_mapping_mut()
            .expect("globals");
        let value = vars.remove("LEDGER_BUCKET").expect("LEDGER_BUCKET");
        vars.insert(Yaml::from("LEDGER_BUCKET_NAME"), value);
    });
    let (env, plan) = common::setup_with(binaries(Some(template.clone())), |_| {}).await;
    let err = env
        .invoke(
            "health-ingest",
            &drill::health_event(&plan.sites.primary.region, "RENAMED1"),
        )
        .await
        .expect_err("a function without LEDGER_BUCKET cannot start");
    env.stop().await;
    let _ = std::fs::remove_file(&template);
    let text = format!("{err:#}");
    assert!(text.contains("Runtime.ExitError"), "{text}");
    assert!(text.contains("LEDGER_BUCKET"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_kills_are_lambdas() {
    // A 1-second Timeout for health-ingest: its invocation is killed at the deadline.
    let template = edited_template(|doc| {
        doc["Resources"]["HealthIngestFunction"]["Properties"]["Timeout"] = Yaml::from(1);
    });
    let (env, _plan) = common::setup_with(binaries(Some(template.clone())), |_| {}).await;
    // The primary answers every API call after 5 s: the probe outlives its 1-second Timeout.
    env.admin_post(
        lifeboat_core::plan::SiteRole::Primary,
        "faults",
        serde_json::json!({"latency_ms": 5000}),
    )
    .await
    .unwrap();
    let slow = env
        .invoke("health-ingest", &serde_json::json!({"lifeboat_probe": {}}))
        .await
        .expect_err("timed out");
    // A worker killed while it holds an event answers as a crashed runtime, and the next
    // invocation starts a fresh process.
    env.host
        .faults
        .lock()
        .unwrap()
        .crash_next
        .insert("run-ledger".into(), 1);
    let killed = env
        .invoke("run-ledger", &serde_json::json!({"action": "noop"}))
        .await
        .expect_err("killed");
    let figures = env.host.runtime.figures();
    env.stop().await;
    let _ = std::fs::remove_file(&template);
    let text = format!("{slow:#}");
    assert!(text.contains("Sandbox.Timedout"), "{text}");
    assert!(text.contains("Task timed out after 1.00 seconds"), "{text}");
    let text = format!("{killed:#}");
    assert!(text.contains("Runtime.ExitError"), "{text}");
    assert!(
        text.contains("SIGKILL") || text.contains("signal"),
        "{text}"
    );
    assert_eq!(figures["run-ledger"].cold_starts, 1);
    let names: BTreeSet<&str> = figures.keys().map(String::as_str).collect();
    assert!(names.contains("health-ingest"));
}
