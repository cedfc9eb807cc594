//! The operator's commands end to end: the real `lifeboat` binary against a `lifeboat local up`
//! process (moto running the real state machines, two emulated workspaces, the Lambda host),
//! as an on-call engineer would drive them — and against a CloudFormation stack in moto for the
//! deployed-stack path.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use lifeboat::stack::LocalState;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_lifeboat");

/// `lifeboat local up` in the background; stopped (and its state removed) on drop.
struct LocalUp {
    child: Child,
    state: PathBuf,
    dir: PathBuf,
}

impl LocalUp {
    fn start() -> LocalUp {
        let dir =
            std::env::temp_dir().join(format!("lifeboat-op-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("state.json");
        let root = lifeboat::local::moto::repo_root().unwrap();
        let child = Command::new(BIN)
            .current_dir(&root)
            // The function binaries are built before the tests (scripts/test.sh).
            .args(["local", "up", "--no-build", "--state"])
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !state.exists() {
            assert!(Instant::now() < deadline, "local up did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        LocalUp { child, state, dir }
    }

    fn state(&self) -> LocalState {
        serde_json::from_str(&std::fs::read_to_string(&self.state).unwrap()).unwrap()
    }

    /// Runs `lifeboat ARGS --local --state S`.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--local")
            .arg("--state")
            .arg(&self.state)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for LocalUp {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["local", "down", "--state"])
            .arg(&self.state)
            .output();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code 2 with one line naming the problem.
fn refused(o: &Output, words: &str) {
    refused_with(o, words);
    let err = stderr(o);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

/// Exit code 2 naming the problem (a plan error quotes the offending line too).
fn refused_with(o: &Output, words: &str) {
    assert_eq!(
        o.status.code(),
        Some(2),
        "stdout {} stderr {}",
        stdout(o),
        stderr(o)
    );
    let err = stderr(o);
    assert!(err.contains(words), "{err}");
}

fn json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "stdout {} stderr {}",
        stdout(o),
        stderr(o)
    );
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

async fn emulator_requests(http: &reqwest::Client, base: &str) -> Vec<Value> {
    let v: Value = http
        .get(format!("{base}/__emulator/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["requests"].as_array().cloned().unwrap_or_default()
}

/// Everything moto holds that a command could change: ledger objects with their versions, the
/// SSM parameters with theirs, the DNS records.
async fn moto_state(state: &LocalState) -> Vec<String> {
    let aws = lifeboat_core::aws::AwsClients::for_endpoint(&state.moto_url, &state.region).await;
    let mut out = Vec::new();
    let versions = aws
        .s3
        .list_object_versions()
        .bucket(&state.outputs.ledger_bucket)
        .send()
        .await
        .unwrap();
    for v in versions.versions() {
        out.push(format!(
            "s3 {} {}",
            v.key().unwrap_or_default(),
            v.version_id().unwrap_or_default()
        ));
    }
    let params = aws.ssm.describe_parameters().send().await.unwrap();
    for p in params.parameters() {
        out.push(format!(
            "ssm {} v{}",
            p.name().unwrap_or_default(),
            p.version()
        ));
    }
    let zones = aws.route53.list_hosted_zones().send().await.unwrap();
    for z in zones.hosted_zones() {
        let records = aws
            .route53
            .list_resource_record_sets()
            .hosted_zone_id(z.id())
            .send()
            .await
            .unwrap();
        for r in records.resource_record_sets() {
            out.push(format!("dns {} {:?}", r.name(), r.resource_records()));
        }
    }
    out.sort();
    out
}

fn wait_json(up: &LocalUp, args: &[&str], ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let o = up.run(args);
        if o.status.success() {
            let v = json(&o);
            if ok(&v) {
                return v;
            }
        }
        assert!(Instant::now() < deadline, "never: {}", stdout(&o));
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_session_against_local_up() {
    let up = LocalUp::start();
    let state = up.state();
    let http = lifeboat_core::http::client();

    // Nothing has run yet.
    refused(&up.run(&["status"]), "no run is recorded");
    // A failback needs a completed failover.
    refused(
        &up.run(&["failback", "--yes", "--detach"]),
        "no completed failover",
    );
    // Accepting drift needs a reason.
    refused(
        &up.run(&["failover", "--yes", "--detach", "--accept-drift", " "]),
        "--accept-drift needs a reason",
    );

    // Preview: what a failover would do, with zero writes anywhere.
    for base in [&state.primary_url, &state.dr_url] {
        http.post(format!("{base}/__emulator/requests/clear"))
            .send()
            .await
            .unwrap();
    }
    let before = moto_state(&state).await;
    let preview = json(&up.run(&["preview", "--json"]));
    assert_eq!(preview["source_reachable"], true, "{preview}");
    assert!(
        !preview["fence"].as_array().unwrap().is_empty(),
        "{preview}"
    );
    assert!(preview["fence_estimate_seconds"].as_f64().unwrap() > 0.0);
    assert!(
        preview["rto_estimate_seconds"].as_f64().unwrap()
            > preview["fence_estimate_seconds"].as_f64().unwrap()
    );
    assert!(preview["switch"][0][0]
        .as_str()
        .unwrap()
        .starts_with("CNAME"));
    assert_eq!(moto_state(&state).await, before, "preview wrote to AWS");
    for base in [&state.primary_url, &state.dr_url] {
        let requests = emulator_requests(&http, base).await;
        assert!(!requests.is_empty(), "the preview read {base}");
        let writes: Vec<&Value> = requests.iter().filter(|r| r["method"] != "GET").collect();
        assert!(writes.is_empty(), "preview wrote to {base}: {writes:?}");
    }
    let text = stdout(&up.run(&["preview"]));
    assert!(
        text.contains("nothing was written") && text.contains("Would switch"),
        "{text}"
    );

    // Start a failover: it waits for a human.
    let started = up.run(&[
        "failover",
        "--yes",
        "--detach",
        "--reason",
        "us-east-1 degraded",
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    let run_id = stdout(&started)
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_string();
    assert!(run_id.starts_with("operator-failover-"), "{run_id}");
    let pending = wait_json(&up, &["status", "--json"], |v| {
        v["approvals"][0]["state"] == "pending"
    });
    assert_eq!(pending["run_id"], run_id.as_str());
    assert_eq!(pending["holds_lock"], true);
    assert!(pending["trigger"]
        .as_str()
        .unwrap()
        .contains("arn:aws:iam::123456789012:user/lifeboat-operator"));
    // While it runs: a second failover, an unlock, an override without a data fence — refused.
    refused(
        &up.run(&["failover", "--yes", "--detach"]),
        "holds the lock",
    );
    refused(&up.run(&["unlock"]), "holds the lock");
    refused(&up.run(&["unlock", "--force"]), "--force needs --reason");
    refused(
        &up.run(&["override", "--run", &run_id, "--reason", "primary API down"]),
        "data fence",
    );
    refused(
        &up.run(&["override", "--run", &run_id, "--reason", " "]),
        "needs a reason",
    );
    // Bad input.
    refused(&up.run(&["status", "no-such-run"]), "no run `no-such-run`");
    refused(&up.run(&["status", "bad/id"]), "run id `bad/id`");
    refused(
        &up.run(&["intervene", "--run", &run_id, "--action", "maybe"]),
        "maybe",
    );

    // Approve with the verified STS identity (mapped to the on-call approver by the plan).
    let approved = up.run(&["approve", "--run", &run_id, "--comment", "go"]);
    assert!(approved.status.success(), "{}", stderr(&approved));
    assert!(stdout(&approved).contains("oncall-dr@example.com"));
    let done = wait_json(&up, &["status", &run_id, "--json"], |v| {
        v["execution_status"] != "RUNNING"
    });
    assert_eq!(done["execution_status"], "SUCCEEDED", "{done}");
    assert_eq!(done["approvals"][0]["state"], "approved");
    assert_eq!(done["fence"][0]["status"], "confirmed");
    assert_eq!(done["result"]["outcome"], "succeeded");
    assert_eq!(done["holds_lock"], false);
    let aws = lifeboat_core::aws::AwsClients::for_endpoint(&state.moto_url, &state.region).await;
    let ledger =
        lifeboat_core::ledger::Ledger::new((*aws.s3).clone(), &state.outputs.ledger_bucket);
    let record: lifeboat_core::approval::ApprovalRecord = ledger
        .get(&lifeboat_core::ledger::keys::approval(
            &lifeboat_core::run::RunId(run_id.clone()),
        ))
        .await
        .unwrap()
        .unwrap()
        .value;
    let decision = record.decision.unwrap();
    assert_eq!(decision.approver, "oncall-dr@example.com");
    assert_eq!(
        decision.principal.as_deref(),
        Some("arn:aws:iam::123456789012:user/lifeboat-operator"),
        "the STS identity, not an environment variable"
    );
    // Failover again while DR is active: refused; the status text shows the fence per kind.
    refused(
        &up.run(&["failover", "--yes", "--detach"]),
        "already active",
    );
    let text = stdout(&up.run(&["status"]));
    assert!(
        text.contains("fence Primary: Confirmed") && text.contains("approved"),
        "{text}"
    );

    // A lock left by an execution Step Functions does not know: unlock releases it, audited.
    let lock = serde_json::json!({
        "run_id": "operator-failover-ghost",
        "acquired_at": chrono::Utc::now(),
        "execution_arn": "arn:aws:states:us-west-2:123456789012:execution:lifeboat-failover:ghost",
    });
    ledger
        .put("locks/sales-platform.json", &lock)
        .await
        .unwrap();
    let o = up.run(&["unlock"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("released"), "{}", stdout(&o));
    let audits = ledger.list("audit/locks/sales-platform/").await.unwrap();
    let audit: Value = ledger
        .get(audits.last().unwrap())
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        audit["released_by"],
        "arn:aws:iam::123456789012:user/lifeboat-operator"
    );
    assert!(stdout(&up.run(&["unlock"])).contains("not locked"));

    // `local env` prints what points the AWS CLI at the stack; `local down` stops it.
    let env = Command::new(BIN)
        .args(["local", "env", "--state"])
        .arg(&up.state)
        .output()
        .unwrap();
    assert!(stdout(&env).contains(&format!("AWS_ENDPOINT_URL={}", state.moto_url)));
    let down = Command::new(BIN)
        .args(["local", "down", "--state"])
        .arg(&up.state)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(!Path::new(&up.state).exists());
    refused(&up.run(&["status"]), "no local stack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_stack_is_found_by_its_outputs_and_bad_setups_are_named() {
    let up = LocalUp::start();
    let state = up.state();
    // A CloudFormation stack in moto without Lifeboat's outputs.
    let config = lifeboat_core::aws::config_loader()
        .endpoint_url(&state.moto_url)
        .region(aws_config::Region::new(state.region.clone()))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_cloudformation::Client::new(&config)
        .create_stack()
        .stack_name("not-lifeboat")
        .template_body(
            r#"{"Resources": {"T": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "not-lifeboat"}}}}"#,
        )
        .send()
        .await
        .unwrap();
    let deployed = |args: &[&str], stack: &str| {
        Command::new(BIN)
            .args(args)
            .args(["--stack", stack])
            .env("AWS_ENDPOINT_URL", &state.moto_url)
            .env("AWS_REGION", &state.region)
            .env("AWS_ACCESS_KEY_ID", &state.operator_access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &state.operator_secret_access_key)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("LIFEBOAT_STATE")
            .output()
            .unwrap()
    };
    refused(
        &deployed(&["status"], "not-lifeboat"),
        "has no output `LedgerBucketName`",
    );
    refused(&deployed(&["status"], "no-such-stack"), "no-such-stack");
    // No credentials at all (and no instance metadata to fall back to).
    let o = Command::new(BIN)
        .args(["status", "--stack", "lifeboat"])
        .env("AWS_ENDPOINT_URL", &state.moto_url)
        .env("AWS_REGION", &state.region)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // An invalid plan in the ledger: named, nothing started.
    let aws = lifeboat_core::aws::AwsClients::for_endpoint(&state.moto_url, &state.region).await;
    let ledger =
        lifeboat_core::ledger::Ledger::new((*aws.s3).clone(), &state.outputs.ledger_bucket);
    let plan =
        String::from_utf8(ledger.get_raw("plan/lifeboat.toml").await.unwrap().unwrap()).unwrap();
    ledger
        .put_raw(
            "plan/lifeboat.toml",
            plan.replace("rpo_minutes", "rpo_minuts").into_bytes(),
            "application/toml",
        )
        .await
        .unwrap();
    let o = up.run(&["failover", "--yes", "--detach"]);
    refused_with(&o, "rpo_minuts");
}
