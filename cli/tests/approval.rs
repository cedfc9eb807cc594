//! The e-mail link channel of the human in the loop, end to end: the real state machine in
//! moto waits on `request-approval`; the links in the message it sent are opened and posted
//! through the local stand-in for API Gateway, which calls the real `approval-callback`.

use std::{
    io::Write,
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use aws_sdk_sfn::types::ExecutionStatus;
use lifeboat::{
    drill::health_event,
    local::{LocalEnv, SIGNING_SECRET},
};
use lifeboat_core::{
    approval_link::{self, LinkParams},
    plan::{Plan, SiteRole},
    run::RunId,
    secret::Secret,
    steps::{
        health_ingest::IngestOutput,
        request_approval::{approval_key, ApprovalRecord, ApprovalStage, Decision},
    },
};

/// Every log line of this test binary (all levels of our crates), to prove the task token
/// never reaches a log.
mod common;

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "lifeboat=trace,lifeboat_core=trace",
            ))
            .with_writer(|| Capture)
            .try_init();
    });
}

struct Pending {
    env: LocalEnv,
    plan: Plan,
    arn: String,
    run_id: RunId,
    message: String,
}

async fn pending(edit: impl FnOnce(&mut Plan)) -> Pending {
    capture_logs();
    let (env, plan) = common::setup(edit).await;
    let out: IngestOutput = serde_json::from_value(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, "LINK"),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let IngestOutput::Started {
        execution_arn,
        run_id,
    } = out
    else {
        panic!("{out:?}")
    };
    let run_id = RunId(run_id);
    let key = format!("runs/{run_id}/approval-message-failover.txt");
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        if let Some(m) = env.deps.ledger.get_raw(&key).await.unwrap() {
            break String::from_utf8(m).unwrap();
        }
        assert!(Instant::now() < deadline, "no approval message");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Pending {
        env,
        plan,
        arn: execution_arn,
        run_id,
        message,
    }
}

impl Pending {
    fn link(&self, approver: &str, decision: &str) -> String {
        let mut lines = self
            .message
            .lines()
            .skip_while(|l| !l.contains(&format!("for {approver}:")));
        lines.next();
        lines
            .take(2)
            .find(|l| l.trim_start().starts_with(&format!("{decision}:")))
            .and_then(|l| l.split_once(": ").map(|(_, u)| u.trim().to_string()))
            .unwrap_or_else(|| panic!("no {decision} link for {approver} in:\n{}", self.message))
    }

    async fn record(&self) -> ApprovalRecord {
        self.env
            .deps
            .ledger
            .get::<ApprovalRecord>(&approval_key(&self.run_id, ApprovalStage::Failover))
            .await
            .unwrap()
            .unwrap()
            .value
    }

    async fn wait_end(&self) -> (ExecutionStatus, Option<String>) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let d = self
                .env
                .aws
                .sfn
                .describe_execution()
                .execution_arn(&self.arn)
                .send()
                .await
                .unwrap();
            if d.status() != &ExecutionStatus::Running {
                return (d.status().clone(), d.error().map(str::to_string));
            }
            assert!(Instant::now() < deadline, "execution did not end");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn status(&self) -> ExecutionStatus {
        self.env
            .aws
            .sfn
            .describe_execution()
            .execution_arn(&self.arn)
            .send()
            .await
            .unwrap()
            .status()
            .clone()
    }
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(url: &str, comment: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("comment={comment}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn unpaused_count(state: &serde_json::Value) -> usize {
    state["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| {
            [
                "schedule_pause_status",
                "continuous_pause_status",
                "trigger_pause_status",
            ]
            .iter()
            .any(|k| j[*k] == "UNPAUSED")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_by_link_get_confirms_post_decides() {
    let p = pending(|_| {}).await;
    let approve = p.link("oncall-dr@example.com", "approve");
    assert!(approve.contains("sig=") && approve.contains("exp="));
    // GET (what a mail scanner does) shows a confirmation page and decides nothing.
    let (status, page) = get(&approve).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Confirm") && page.contains("<form method=\"post\""),
        "{page}"
    );
    assert!(page.contains("RPO"), "the page shows the evidence");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(p.record().await.decision.is_none());
    assert_eq!(p.status().await, ExecutionStatus::Running);
    // The button decides.
    let (status, page) = post(&approve, "go").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Decision recorded"));
    // Replaying the link is refused with a clear page.
    let (status, page) = post(&approve, "again").await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("Already decided"));
    let (end, _) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Succeeded);
    let record = p.record().await;
    let d = record.decision.as_ref().unwrap();
    assert_eq!(
        (
            d.approver.as_str(),
            d.channel.as_str(),
            d.comment.as_deref()
        ),
        ("oncall-dr@example.com", "email-link", Some("go"))
    );
    assert!(record
        .audit
        .iter()
        .any(|a| !a.accepted && a.reason.contains("already decided")));

    // The task token stays in the approval record: not in the message, the links, the report,
    // the step records, or any log line.
    let token = record.task_token.clone();
    assert!(token.len() > 8);
    assert!(!p.message.contains(&token));
    for key in p
        .env
        .deps
        .ledger
        .list(&format!("runs/{}/", p.run_id))
        .await
        .unwrap()
    {
        if key.ends_with("/approval.json") {
            continue;
        }
        let body = String::from_utf8(p.env.deps.ledger.get_raw(&key).await.unwrap().unwrap())
            .unwrap_or_default();
        assert!(!body.contains(&token), "token leaked into {key}");
    }
    let logs = String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned();
    assert!(logs.contains("decision by link"), "logs were captured");
    assert!(!logs.contains(&token), "token leaked into a log line");
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_by_link_ends_the_run_and_touches_nothing() {
    let p = pending(|_| {}).await;
    let before = (
        unpaused_count(&p.env.admin_get(SiteRole::Primary, "state").await.unwrap()),
        unpaused_count(&p.env.admin_get(SiteRole::Dr, "state").await.unwrap()),
    );
    let (status, _) = post(&p.link("oncall-dr@example.com", "reject"), "false alarm").await;
    assert_eq!(status, 200);
    let (end, error) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("RunNotCompleted"));
    let after = (
        unpaused_count(&p.env.admin_get(SiteRole::Primary, "state").await.unwrap()),
        unpaused_count(&p.env.admin_get(SiteRole::Dr, "state").await.unwrap()),
    );
    assert_eq!(before, after);
    assert_eq!(after.1, 0);
    let report: lifeboat_core::report::Report = p
        .env
        .deps
        .ledger
        .get(&format!("runs/{}/report.json", p.run_id))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(report.outcome, lifeboat_core::report::Outcome::Rejected);
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_links_decide_nothing_and_are_audited() {
    let p = pending(|_| {}).await;
    let approve = p.link("oncall-dr@example.com", "approve");
    let base = approve.split('?').next().unwrap().to_string();
    // Tampered signature.
    let tampered = if approve.ends_with('0') {
        format!("{}1", &approve[..approve.len() - 1])
    } else {
        format!("{}0", &approve[..approve.len() - 1])
    };
    // Decision flipped without re-signing.
    let flipped = approve.replace("decision=approve", "decision=reject");
    // A value that is not a decision.
    let wrong = approve.replace("decision=approve", "decision=maybe");
    // Missing parameters.
    let missing = approve.split("&sig=").next().unwrap().to_string();
    // A correctly signed but expired link (signed with the deployment's key).
    let key = p
        .env
        .aws
        .secrets
        .get_secret_value()
        .secret_id(SIGNING_SECRET)
        .send()
        .await
        .unwrap();
    let key = Secret::new(key.secret_string().unwrap());
    let expired = format!(
        "{base}?{}",
        approval_link::query(
            &key,
            &LinkParams {
                run_id: p.run_id.clone(),
                stage: ApprovalStage::Failover,
                decision: Decision::Approve,
                approver: "oncall-dr@example.com".into(),
                expires: chrono::Utc::now().timestamp() - 10,
            }
        )
    );
    for (url, want_status, want_text) in [
        (&tampered, 400, "signature"),
        (&flipped, 400, "signature"),
        (&wrong, 400, "decision"),
        (&missing, 400, "missing"),
        (&expired, 410, "expired"),
    ] {
        let (status, page) = post(url, "x").await;
        assert_eq!(status, want_status, "{url}: {page}");
        assert!(
            page.contains(want_text) && page.contains("Nothing was decided"),
            "{url}: {page}"
        );
        let (status, _) = get(url).await;
        assert_eq!(status, want_status);
    }
    let (status, _) = get(&base).await;
    assert_eq!(status, 400, "no parameters at all");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let record = p.record().await;
    assert!(record.decision.is_none(), "no bad link decided anything");
    assert_eq!(p.status().await, ExecutionStatus::Running);
    let refused = record.audit.iter().filter(|a| !a.accepted).count();
    assert!(
        refused >= 8,
        "every refused attempt is audited: {:?}",
        record.audit
    );
    // The genuine link still works afterwards.
    let (status, _) = post(&p.link("oncall-dr@example.com", "reject"), "").await;
    assert_eq!(status, 200);
    p.wait_end().await;
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_person_rule_needs_two_distinct_approvers() {
    let p = pending(|plan| {
        plan.approval.approvers = vec!["alice@example.com".into(), "bob@example.com".into()];
        plan.approval.required_approvals = 2;
    })
    .await;
    let (status, page) = post(&p.link("alice@example.com", "approve"), "").await;
    assert_eq!(status, 200);
    assert!(page.contains("1 of 2"), "{page}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        p.status().await,
        ExecutionStatus::Running,
        "one approval is not enough"
    );
    // Alice again does not count twice.
    let (status, page) = post(&p.link("alice@example.com", "approve"), "").await;
    assert_eq!(status, 409, "{page}");
    let (status, _) = post(&p.link("bob@example.com", "approve"), "").await;
    assert_eq!(status, 200);
    let (end, _) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Succeeded);
    let record = p.record().await;
    assert_eq!(record.approvals.len(), 2);
    assert!(record
        .decision
        .unwrap()
        .approver
        .contains("alice@example.com + bob@example.com"));
    let _ = &p.plan;
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_or_api_approval_is_reported_with_its_approver() {
    // The README's `aws stepfunctions send-task-success` way: the operator sends the task
    // output with their identity; the report shows it.
    let p = pending(|_| {}).await;
    let token = p.record().await.task_token;
    p.env
        .aws
        .sfn
        .send_task_success()
        .task_token(token)
        .output(r#"{"approved": true, "approver": "carol@example.com", "channel": "console"}"#)
        .send()
        .await
        .unwrap();
    let (end, _) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Succeeded);
    let report: lifeboat_core::report::Report = p
        .env
        .deps
        .ledger
        .get(&format!("runs/{}/report.json", p.run_id))
        .await
        .unwrap()
        .unwrap()
        .value;
    let a = report.approval.unwrap();
    assert_eq!(
        (a.approver.as_str(), a.channel.as_str()),
        ("carol@example.com", "console")
    );
    p.env.stop().await;
}
