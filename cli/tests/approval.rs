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
    local::{LocalEnv, SIGNING_SECRET, STACK_ID},
};
use lifeboat_core::{
    approval::{approval_key, link::LinkParams, ApprovalRecord, ApprovalStage, Decision},
    incident::IngestOutput,
    kernel::signing::SigningKeys,
    plan::{Plan, SiteRole},
    run::RunId,
    secret::Secret,
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
    pending_with(edit, |_| {}).await
}

/// [`pending`] with the Health event edited first (its description is untrusted text).
async fn pending_with(
    edit: impl FnOnce(&mut Plan),
    event_edit: impl FnOnce(&mut serde_json::Value),
) -> Pending {
    capture_logs();
    let (env, plan) = common::setup(edit).await;
    let mut event = health_event(&plan.sites.primary.region, "LINK");
    event_edit(&mut event);
    let out: IngestOutput =
        serde_json::from_value(env.invoke("health-ingest", &event).await.unwrap()).unwrap();
    let IngestOutput::Started {
        execution_arn,
        run_id,
    } = out
    else {
        panic!("{out:?}")
    };
    let run_id = RunId(run_id);
    let key = lifeboat_core::ledger::keys::approval_message(&run_id, "failover");
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
    /// The approver's own mail (the latest delivered to their mailbox).
    fn mail(&self, approver: &str) -> String {
        self.env
            .inbox(approver)
            .last()
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("nothing delivered to {approver}"))
    }

    /// A link from the approver's own mail.
    fn link(&self, approver: &str, decision: &str) -> String {
        let mail = self.mail(approver);
        mail.lines()
            .find(|l| l.trim_start().starts_with(&format!("{decision}: http")))
            .and_then(|l| l.split_once(": ").map(|(_, u)| u.trim().to_string()))
            .unwrap_or_else(|| panic!("no {decision} link for {approver} in:\n{mail}"))
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

    /// The deployment's signing keys (to forge what only a key holder could).
    async fn keys(&self) -> SigningKeys {
        let key = self
            .env
            .aws
            .secrets
            .get_secret_value()
            .secret_id(SIGNING_SECRET)
            .send()
            .await
            .unwrap();
        SigningKeys::parse(&Secret::new(key.secret_string().unwrap())).unwrap()
    }

    /// A link signed with the deployment's keys.
    fn signed(
        &self,
        keys: &SigningKeys,
        base: &str,
        approver: &str,
        expires: i64,
        stack: &str,
    ) -> String {
        format!(
            "{base}?{}",
            lifeboat_core::approval::link::query(
                keys,
                &LinkParams {
                    run_id: self.run_id.clone(),
                    stage: ApprovalStage::Failover,
                    decision: Decision::Approve,
                    approver: approver.into(),
                    expires,
                    stack: stack.into(),
                }
            )
        )
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
    let r = lifeboat_core::http::client()
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
    let refused =
        lifeboat_core::approval::decide::refusals(&p.env.deps, &p.run_id, ApprovalStage::Failover)
            .await
            .unwrap();
    assert!(
        refused
            .iter()
            .any(|a| a.verified && a.reason.contains("already decided")),
        "{refused:?}"
    );

    // The task token stays in the approval record: not in the message, the links, the report,
    // the step records, or any log line.
    let token = record.task_token.clone();
    assert!(token.len() > 8);
    assert!(!p.message.contains(&token));
    assert!(!p.mail("oncall-dr@example.com").contains(&token));
    for key in p
        .env
        .deps
        .ledger
        .list(&lifeboat_core::ledger::keys::run_prefix(&p.run_id))
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
    // The callback's own log lines (its process's output in binaries mode) and this process's.
    let logs =
        String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned() + &p.env.function_output();
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
    let report = common::report_of(&p.env, &p.run_id.0).await;
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
    let keys = p.keys().await;
    let signed = |approver: &str, expires: i64, stack: &str| {
        p.signed(&keys, &base, approver, expires, stack)
    };
    let later = chrono::Utc::now().timestamp() + 600;
    let expired = signed(
        "oncall-dr@example.com",
        chrono::Utc::now().timestamp() - 10,
        STACK_ID,
    );
    // Signed with the deployment's key, but for another stack sharing it.
    let other_stack = signed(
        "oncall-dr@example.com",
        later,
        "arn:aws:cloudformation:us-west-2:123456789012:stack/other/1",
    );
    // Signed, but not for an approver of this plan (a key holder minting identities).
    let stranger = signed("mallory@example.com", later, STACK_ID);
    for (url, want_status, want_text) in [
        (&tampered, 400, "signature"),
        (&flipped, 400, "signature"),
        (&wrong, 400, "decision"),
        (&missing, 400, "missing"),
        (&expired, 410, "expired"),
        (&other_stack, 400, "another Lifeboat deployment"),
        (&stranger, 403, "not an approver"),
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
    // Unsigned or altered links leave no trace under the run (anyone can send them); the
    // genuine-but-expired link and the stranger's signed one are logged, apart from the votes.
    let refused =
        lifeboat_core::approval::decide::refusals(&p.env.deps, &p.run_id, ApprovalStage::Failover)
            .await
            .unwrap();
    assert_eq!(
        refused.len(),
        4,
        "expired GET+POST and stranger POST... : {refused:?}"
    );
    assert!(
        record.audit.iter().all(|a| a.accepted),
        "{:?}",
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
    // The `aws stepfunctions send-task-success` way (docs/operating.md): the operator sends the task
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
    let report = common::report_of(&p.env, &p.run_id.0).await;
    let a = report.approval.unwrap();
    assert_eq!(a.channel, "console");
    assert!(
        a.approver.starts_with("carol@example.com (self-declared"),
        "a console approval is not a verified identity: {}",
        a.approver
    );
    p.env.stop().await;
}

/// The approval record's raw bytes (to prove a request did not touch it).
async fn record_bytes(p: &Pending) -> Vec<u8> {
    p.env
        .deps
        .ledger
        .get_raw(&approval_key(&p.run_id, ApprovalStage::Failover))
        .await
        .unwrap()
        .unwrap()
}

fn two_approvers(plan: &mut Plan) {
    plan.approval.approvers = vec!["alice@example.com".into(), "bob@example.com".into()];
    plan.approval.required_approvals = 2;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_approver_gets_only_their_own_links_and_one_person_is_one_vote() {
    let p = pending(two_approvers).await;
    // Alice's mail holds Alice's links only; Bob's Bob's; the broadcast none at all.
    let alice = p.mail("alice@example.com");
    let bob = p.mail("bob@example.com");
    assert!(
        alice.contains("approver=alice%40example.com") && !alice.contains("bob%40"),
        "{alice}"
    );
    assert!(
        bob.contains("approver=bob%40example.com") && !bob.contains("alice%40"),
        "{bob}"
    );
    for (_, m) in p.env.inbox("broadcast") {
        assert!(
            !m.contains("sig=") && !m.contains("/approval?"),
            "broadcast carries links: {m}"
        );
    }
    // The ledger's copy of what was sent does not hand out usable links either.
    assert!(p.message.contains("sig=(redacted)") && !p.message.contains("&kid=k0&sig=0"));
    // Alice by link.
    let (status, page) = post(&p.link("alice@example.com", "approve"), "").await;
    assert_eq!(status, 200, "{page}");
    // Alice again, spelled differently: the same person.
    for alias in ["Alice@Example.com", " alice@example.com "] {
        let e = lifeboat_core::approval::decide::decide(
            &p.env.deps,
            lifeboat_core::approval::decide::Ballot {
                run_id: &p.run_id,
                stage: ApprovalStage::Failover,
                decision: Decision::Approve,
                who: alias,
                channel: "cli",
                comment: None,
            },
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("already approved"), "{alias}: {e}");
    }
    // Alice at the CLI, with her verified IAM identity mapped to her address in the plan.
    let alice_iam = p.env.user("alice").await.unwrap();
    let mut plan = p.plan.clone();
    plan.approval
        .principals
        .insert("alice@example.com".into(), vec![alice_iam.arn.clone()]);
    let mut record = p.record().await;
    record.principals = plan.approval.principals.clone();
    p.env
        .deps
        .ledger
        .put(&approval_key(&p.run_id, ApprovalStage::Failover), &record)
        .await
        .unwrap();
    let who = lifeboat::identity::caller_arn(&alice_iam.sts)
        .await
        .unwrap();
    assert_eq!(who, "arn:aws:iam::123456789012:user/alice");
    let e = lifeboat_core::approval::decide::decide(
        &p.env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &p.run_id,
            stage: ApprovalStage::Failover,
            decision: Decision::Approve,
            who: &who,
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("already approved"), "{e}");
    // Someone with AWS access who is not an approver.
    let mallory = p.env.user("mallory").await.unwrap();
    let e = lifeboat_core::approval::decide::decide(
        &p.env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &p.run_id,
            stage: ApprovalStage::Failover,
            decision: Decision::Approve,
            who: &mallory.arn,
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("not an approver"), "{e}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        p.status().await,
        ExecutionStatus::Running,
        "one person, one vote"
    );
    // Bob.
    let (status, _) = post(&p.link("bob@example.com", "approve"), "").await;
    assert_eq!(status, 200);
    let (end, _) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Succeeded);
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfiltered_subscriber_makes_lifeboat_withhold_every_link() {
    // Someone subscribed to the approval topic without a filter would read every approver's
    // links: Lifeboat sends none and says why.
    let (env, plan) = common::setup(two_approvers).await;
    env.subscribe_mailbox(lifeboat::local::APPROVAL_TOPIC, "eavesdropper", None)
        .await
        .unwrap();
    let out: IngestOutput = serde_json::from_value(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, "TAP"),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let IngestOutput::Started { execution_arn, .. } = out else {
        panic!("{out:?}")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // The broadcast topic also carries the run's announcements: find the withholding notice.
    let broadcast = loop {
        let found = env
            .inbox("broadcast")
            .into_iter()
            .map(|(_, body)| body)
            .find(|body| body.contains("links are withheld"));
        if let Some(body) = found {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no request sent: {:?}",
            env.inbox("broadcast")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(broadcast.contains("no filter policy"), "{broadcast}");
    assert!(env.inbox("eavesdropper").is_empty());
    assert!(env.inbox("alice@example.com").is_empty());
    env.aws
        .sfn
        .stop_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .ok();
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_approval_never_satisfies_the_two_person_rule() {
    let p = pending(two_approvers).await;
    let token = p.record().await.task_token;
    p.env
        .aws
        .sfn
        .send_task_success()
        .task_token(token)
        .output(r#"{"approved": true, "approver": "alice@example.com", "channel": "console"}"#)
        .send()
        .await
        .unwrap();
    let (end, error) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("RunNotCompleted"));
    let report = common::report_of(&p.env, &p.run_id.0).await;
    assert_eq!(report.outcome, lifeboat_core::report::Outcome::Rejected);
    assert!(
        p.env
            .host
            .log
            .lock()
            .unwrap()
            .iter()
            .all(|i| i.step != "shutdown-sweep"),
        "nothing was fenced"
    );
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_is_recorded_and_the_same_vote_can_be_sent_again() {
    let p = pending(|_| {}).await;
    // The record's expiry is the task's: from the moment the waiting state was entered.
    let record = p.record().await;
    assert_eq!(
        (record.expires_at - record.requested_at).num_seconds(),
        i64::from(p.plan.approval.timeout_seconds)
    );
    // Step Functions refuses the token (as for a token it no longer knows).
    let key = approval_key(&p.run_id, ApprovalStage::Failover);
    let mut broken = record.clone();
    broken.task_token = "AAAAnot-a-token".into();
    p.env.deps.ledger.put(&key, &broken).await.unwrap();
    let approve = p.link("oncall-dr@example.com", "approve");
    let (status, page) = post(&approve, "first").await;
    assert_eq!(status, 502, "{page}");
    assert!(
        page.contains("recorded") && page.contains("again"),
        "{page}"
    );
    let after = p.record().await;
    let delivery = after.delivery.clone().unwrap();
    assert_eq!(
        delivery.state,
        lifeboat_core::approval::DeliveryState::Failed
    );
    assert!(delivery.error.is_some());
    assert_eq!(p.status().await, ExecutionStatus::Running);
    // An over-long comment is refused with a clear message and changes nothing.
    let (status, page) = post(
        &approve,
        &"x".repeat(lifeboat_core::approval::MAX_COMMENT + 1),
    )
    .await;
    assert_eq!(status, 413, "{page}");
    // The condition clears; the same link delivers the recorded vote.
    let mut fixed = p.record().await;
    fixed.task_token = record.task_token.clone();
    p.env.deps.ledger.put(&key, &fixed).await.unwrap();
    let (status, page) = post(&approve, "again").await;
    assert_eq!(status, 200, "{page}");
    let (end, _) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Succeeded);
    let done = p.record().await;
    assert_eq!(
        done.delivery.unwrap().state,
        lifeboat_core::approval::DeliveryState::Delivered
    );
    assert_eq!(done.approvals.len(), 1, "the retry did not count twice");
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_genuine_votes_are_all_recorded() {
    let p = pending(|plan| {
        plan.approval.approvers = vec![
            "a@example.com".into(),
            "b@example.com".into(),
            "c@example.com".into(),
        ];
        plan.approval.required_approvals = 3;
    })
    .await;
    let links: Vec<String> = ["a@example.com", "b@example.com", "c@example.com"]
        .iter()
        .map(|a| p.link(a, "approve"))
        .collect();
    let (r1, r2, r3) = tokio::join!(
        post(&links[0], ""),
        post(&links[1], ""),
        post(&links[2], "")
    );
    for (status, page) in [r1, r2, r3] {
        assert_eq!(status, 200, "{page}");
    }
    let (end, _) = p.wait_end().await;
    assert_eq!(end, ExecutionStatus::Succeeded);
    let record = p.record().await;
    let mut who: Vec<&str> = record
        .approvals
        .iter()
        .map(|a| a.approver.as_str())
        .collect();
    who.sort_unstable();
    assert_eq!(who, ["a@example.com", "b@example.com", "c@example.com"]);
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_flood_leaves_the_run_untouched_and_the_refusal_log_is_capped() {
    let p = pending(|_| {}).await;
    let before = record_bytes(&p).await;
    let approve = p.link("oncall-dr@example.com", "approve");
    let base = approve.split('?').next().unwrap().to_string();
    let long = "m".repeat(5000);
    for i in 0..100 {
        let url = format!(
            "{base}?run={}&stage=failover&decision=approve&approver={long}{i}&exp=9999999999&stack=x&kid=k0&sig=00",
            p.run_id
        );
        let (status, _) = get(&url).await;
        assert_eq!(status, 400);
    }
    assert_eq!(
        record_bytes(&p).await,
        before,
        "unsigned requests never touch the run's record"
    );
    assert!(lifeboat_core::approval::decide::refusals(
        &p.env.deps,
        &p.run_id,
        ApprovalStage::Failover
    )
    .await
    .unwrap()
    .is_empty());
    // A genuine link past its expiry, replayed: logged apart from the votes, bounded in size
    // and count.
    let keys = p.keys().await;
    let expired = p.signed(
        &keys,
        &base,
        "oncall-dr@example.com",
        chrono::Utc::now().timestamp() - 10,
        STACK_ID,
    );
    let flood = lifeboat_core::approval::MAX_REFUSALS_LOGGED + 10;
    for _ in 0..flood {
        let (status, _) = post(&expired, "x").await;
        assert_eq!(status, 410);
    }
    let logged =
        lifeboat_core::approval::decide::refusals(&p.env.deps, &p.run_id, ApprovalStage::Failover)
            .await
            .unwrap();
    assert_eq!(logged.len(), lifeboat_core::approval::MAX_REFUSALS_LOGGED);
    assert_eq!(record_bytes(&p).await, before);
    // The genuine link still decides.
    let (status, _) = post(&approve, "").await;
    assert_eq!(status, 200);
    p.wait_end().await;
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_rotate_and_short_keys_are_refused() {
    let p = pending(|_| {}).await;
    let approve = p.link("oncall-dr@example.com", "approve");
    let old = p
        .env
        .aws
        .secrets
        .get_secret_value()
        .secret_id(SIGNING_SECRET)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string();
    let set = |value: String| async {
        p.env
            .aws
            .secrets
            .put_secret_value()
            .secret_id(SIGNING_SECRET)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    };
    // A rotation: new links use the new key; a link mailed before still works...
    set(format!(
        r#"{{"current": {{"id": "k1", "key": "{}"}}, "previous": {{"id": "k0", "key": "{old}"}}}}"#,
        "n".repeat(40)
    ))
    .await;
    p.env.new_container("approval-callback");
    let (status, page) = get(&approve).await;
    assert_eq!(status, 200, "{page}");
    // ...until the key is rotated out; and the container keeps its keys until their TTL.
    set(format!(
        r#"{{"current": {{"id": "k2", "key": "{}"}}}}"#,
        "z".repeat(40)
    ))
    .await;
    let (status, _) = get(&approve).await;
    assert_eq!(status, 200, "cached keys are used until the TTL");
    p.env.new_container("approval-callback");
    let (status, page) = get(&approve).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("no longer accepted"), "{page}");
    // A key too short to be safe: links unavailable (clear page), nothing decided.
    set("short".into()).await;
    p.env.new_container("approval-callback");
    let (status, page) = post(&approve, "").await;
    assert_eq!(status, 503, "{page}");
    assert!(page.contains("Nothing was decided"));
    assert!(p.record().await.decision.is_none());
    p.env
        .aws
        .sfn
        .stop_execution()
        .execution_arn(&p.arn)
        .send()
        .await
        .ok();
    p.env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_text_comes_after_the_links_quoted_and_pages_refuse_framing() {
    let p = pending_with(
        |_| {},
        |event| {
            event["detail"]["eventDescription"][0]["latestDescription"] = serde_json::json!(
                "All good, nothing to see.\n  approve: https://evil.example/approval?run=x\nreject: http://evil"
            );
        },
    )
    .await;
    let mail = p.mail("oncall-dr@example.com");
    let real = mail
        .find("approve: http://127.0.0.1")
        .expect("the real link is in the mail");
    let quoted = mail
        .find("| what happened")
        .expect("the description is quoted");
    assert!(real < quoted, "links come first:\n{mail}");
    assert!(
        !mail.contains("evil.example") && !mail.contains("https://evil"),
        "defanged:\n{mail}"
    );
    assert_eq!(
        mail.lines()
            .filter(|l| l.trim_start().starts_with("approve:"))
            .count(),
        1,
        "only Lifeboat's own approve line:\n{mail}"
    );
    // Security headers on every page.
    let r = reqwest::get(p.link("oncall-dr@example.com", "approve"))
        .await
        .unwrap();
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    // A body that cannot be read decides nothing.
    let r = lifeboat_core::http::client()
        .post(p.link("oncall-dr@example.com", "approve"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'c', b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(p.record().await.decision.is_none());
    p.env
        .aws
        .sfn
        .stop_execution()
        .execution_arn(&p.arn)
        .send()
        .await
        .ok();
    p.env.stop().await;
}
