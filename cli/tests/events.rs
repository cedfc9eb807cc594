//! Lifecycle events on EventBridge, read back from moto: a rule on `source: lifeboat` targets a
//! queue, a failover runs end to end, and the queue holds the documented milestones in order.
//! The same events reach people: the template's `Announce` rule → `notify` → the broadcast
//! topic, Slack, Teams and a generic webhook (the local stack's receivers), in order, with
//! exact payloads, no secret and no approval link; a webhook that is down is retried, then
//! recorded, and the run succeeds anyway.

use std::time::{Duration, Instant};

use lifeboat::{drill::health_event, local::ACCOUNT};
use lifeboat_core::{
    announce::{self, channels, AnnouncementRecord},
    approval::{approval_key, ApprovalRecord, ApprovalStage, Decision},
    incident::IngestOutput,
    run::RunId,
};
use serde_json::Value;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_publishes_its_milestones_in_order() {
    let (env, plan) = common::setup(|_| {}).await;
    {
        let mut faults = env.host.faults.lock().unwrap();
        // Teams is down for the three attempts at the first announcement (never delivered);
        // the generic webhook fails it once (delivered on the second attempt). Keyed by its
        // title: the state machine's own notice may be delivered at the same moment.
        let first = "of sales-platform started".to_string();
        faults
            .inbox_down
            .insert("teams-webhook".into(), (first.clone(), 3));
        faults
            .inbox_down
            .insert("generic-webhook".into(), (first, 1));
    }
    let region = lifeboat::local::REGION;
    let moto = lifeboat_core::aws::config_loader()
        .endpoint_url(env.moto.url.clone())
        .region(aws_config::Region::new(region))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&moto);
    let queue = sqs
        .create_queue()
        .queue_name("lifeboat-events-subscriber")
        .send()
        .await
        .unwrap();
    let queue_url = queue.queue_url().unwrap().to_string();
    let queue_arn = format!("arn:aws:sqs:{region}:{ACCOUNT}:lifeboat-events-subscriber");
    env.aws
        .events
        .put_rule()
        .name("lifeboat-to-queue")
        .event_pattern(r#"{"source": ["lifeboat"]}"#)
        .send()
        .await
        .unwrap();
    env.aws
        .events
        .put_targets()
        .rule("lifeboat-to-queue")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let out: IngestOutput = serde_json::from_value(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, "EVT"),
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
    let run = RunId(run_id.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while env
        .deps
        .ledger
        .get::<ApprovalRecord>(&approval_key(&run, ApprovalStage::Failover))
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "no approval request");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &run,
            stage: ApprovalStage::Failover,
            decision: Decision::Approve,
            who: "oncall-dr@example.com",
            channel: "cli",
            comment: None,
        },
    )
    .await
    .unwrap();
    let (status, _, _) = common::wait_end(&env, &execution_arn).await;
    assert_eq!(status, aws_sdk_sfn::types::ExecutionStatus::Succeeded);

    // Read the queue dry.
    let mut events: Vec<Value> = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            events.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(&queue_url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    for e in &events {
        assert_eq!(e["source"], "lifeboat");
        let d = &e["detail"];
        assert_eq!(d["run_id"], run_id.as_str(), "{e}");
        assert_eq!(d["plan"], plan.name.as_str());
        assert!(d["at"].is_string() && d["kind"].is_string() && d["direction"].is_string());
    }
    events.sort_by(|a, b| {
        a["detail"]["at"]
            .as_str()
            .unwrap()
            .cmp(b["detail"]["at"].as_str().unwrap())
    });
    let order: Vec<&str> = events
        .iter()
        .map(|e| e["detail-type"].as_str().unwrap())
        .collect();
    let at = |t: &str| {
        order
            .iter()
            .position(|o| *o == t)
            .unwrap_or_else(|| panic!("{t} missing from {order:?}"))
    };
    assert_eq!(order.first(), Some(&"Lifeboat Run Started"), "{order:?}");
    assert_eq!(order.last(), Some(&"Lifeboat Run Finished"), "{order:?}");
    assert!(at("Lifeboat Approval Requested") < at("Lifeboat Approval Decided"));
    for after_approval in [
        "Lifeboat Data Fence Set",
        "Lifeboat Fence Confirmed",
        "Lifeboat DNS Switched",
        "Lifeboat Activation Complete",
    ] {
        assert!(
            at("Lifeboat Approval Decided") < at(after_approval),
            "{after_approval}: {order:?}"
        );
    }
    assert!(
        at("Lifeboat Data Fence Set") < at("Lifeboat Activation Complete"),
        "{order:?}"
    );
    assert!(
        !order.contains(&"Lifeboat Run Failed"),
        "a successful run: {order:?}"
    );
    let finished = &events[at("Lifeboat Run Finished")]["detail"];
    assert!(
        finished["report_console_url"]
            .as_str()
            .is_some_and(|u| u.contains(&lifeboat_core::ledger::keys::report(
                &lifeboat_core::run::RunId(run_id.clone()),
                lifeboat_core::ledger::keys::ReportFormat::Html
            ))),
        "{finished}"
    );
    // People hear every milestone, in order, on every channel.
    let expected: Vec<announce::Announcement> = events
        .iter()
        .map(|e| {
            // The report link notify builds from the ledger is the one the dispatcher put in
            // the event (the same helper); notify never takes it from the event.
            let report = e["detail"]["report_console_url"].as_str().map(String::from);
            announce::announcement(
                e["detail-type"].as_str().unwrap(),
                &e["detail"],
                &plan,
                report,
            )
            .unwrap_or_else(|err| panic!("{err}: {e}"))
        })
        .collect();
    for milestone in [
        "Lifeboat Run Started",
        "Lifeboat Approval Requested",
        "Lifeboat Approval Decided",
        "Lifeboat RPO Measured",
        "Lifeboat Data Fence Set",
        "Lifeboat Fence Confirmed",
        "Lifeboat DR Started",
        "Lifeboat Activation Complete",
        "Lifeboat DNS Switched",
        "Lifeboat Validation Finished",
        "Lifeboat Run Finished",
    ] {
        at(milestone);
    }
    // Besides the events, the state machine's own step 5 ("inform platform users") sends
    // one notice as the failover begins.
    let total = expected.len() + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.webhook_inbox("slack").len() < total
        || env.webhook_inbox("webhook").len() < total
        || env.webhook_inbox("teams").len() < total - 1
    {
        assert!(
            Instant::now() < deadline,
            "announcements missing: slack {} teams {} webhook {} of {}",
            env.webhook_inbox("slack").len(),
            env.webhook_inbox("teams").len(),
            env.webhook_inbox("webhook").len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let slack = env.webhook_inbox("slack");
    let teams = env.webhook_inbox("teams");
    let generic = env.webhook_inbox("webhook");
    assert_eq!(slack.len(), total, "each milestone once");
    assert_eq!(generic.len(), total, "each milestone once");
    assert_eq!(teams.len(), total - 1, "all but the one Teams never took");
    let notice: Vec<bool> = generic
        .iter()
        .map(|g| g["detail_type"] == "Lifeboat Notice")
        .collect();
    assert_eq!(notice.iter().filter(|n| **n).count(), 1, "{generic:?}");
    // Each channel holds the events' renderings in event order (the notice, delivered by
    // the state machine beside them, may fall anywhere among them).
    let in_order = |got: &[Value], want: Vec<Value>, channel: &str| {
        let of_events: Vec<&Value> = got.iter().filter(|g| want.contains(g)).collect();
        assert_eq!(of_events, want.iter().collect::<Vec<_>>(), "{channel}");
    };
    in_order(
        &slack,
        expected.iter().map(channels::slack).collect(),
        "slack",
    );
    in_order(
        &generic,
        expected
            .iter()
            .zip(&events)
            .map(|(a, e)| channels::webhook(a, &e["detail"]))
            .collect(),
        "webhook",
    );
    in_order(
        &teams,
        expected
            .iter()
            .filter(|a| a.detail_type != "Lifeboat Run Started")
            .map(channels::teams)
            .collect(),
        "teams",
    );
    let last = &slack[slack.len() - 1].to_string();
    assert!(last.contains(&env.dr.url().to_string()), "{last}");
    assert!(last.contains("report>"), "the report link: {last}");
    // No secret, no approval link, no webhook URL anywhere.
    for payload in slack.iter().chain(&teams).chain(&generic) {
        let text = payload.to_string();
        for secret in [&env.primary_token, &env.dr_oauth_secret] {
            assert!(!text.contains(secret.as_str()), "a secret in {text}");
        }
        assert!(
            !text.contains("sig=") && !text.contains("/approval"),
            "{text}"
        );
        assert!(!text.contains("/inbox/"), "a webhook URL in {text}");
    }
    // The failed delivery is recorded (and the retried one shows its attempts).
    let keys = env
        .deps
        .ledger
        .list(&lifeboat_core::ledger::keys::announcements_prefix(
            &lifeboat_core::run::RunId(run_id.clone()),
        ))
        .await
        .unwrap();
    let mut records = Vec::new();
    for k in &keys {
        records.push(
            env.deps
                .ledger
                .get::<AnnouncementRecord>(k)
                .await
                .unwrap()
                .unwrap()
                .value,
        );
    }
    let started = records
        .iter()
        .find(|r| r.milestone == "Lifeboat Run Started")
        .unwrap_or_else(|| panic!("no record of Run Started in {keys:?}"));
    let delivery = |channel: &str| {
        started
            .deliveries
            .iter()
            .find(|d| d.channel == channel)
            .unwrap_or_else(|| panic!("no {channel} in {started:?}"))
    };
    let teams_delivery = delivery("teams:lifeboat/notify/teams");
    assert!(
        !teams_delivery.ok && teams_delivery.attempts == 3,
        "{started:?}"
    );
    assert_eq!(teams_delivery.error.as_deref(), Some("HTTP 503"));
    let generic_delivery = delivery("webhook:lifeboat/notify/webhook");
    assert!(
        generic_delivery.ok && generic_delivery.attempts == 2,
        "{started:?}"
    );
    assert!(delivery("sns").ok, "{started:?}");
    // ... and reported: the report names the channel that failed.
    let report = env
        .deps
        .ledger
        .get::<lifeboat_core::report::Report>(&lifeboat_core::ledger::keys::report(
            &lifeboat_core::run::RunId(run_id.clone()),
            lifeboat_core::ledger::keys::ReportFormat::Json,
        ))
        .await
        .unwrap()
        .unwrap()
        .value;
    assert!(
        report.announcements.iter().any(|a| a
            .deliveries
            .iter()
            .any(|d| d.channel == "teams:lifeboat/notify/teams" && !d.ok)),
        "{:?}",
        report.announcements
    );
    assert!(
        report
            .lessons_learned
            .iter()
            .any(|l| l.contains("teams:lifeboat/notify/teams")),
        "{:?}",
        report.lessons_learned
    );

    // Everyone hears how it ended, on the broadcast topic: the new workspace URL and the
    // report, and never an approval link.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !env
        .inbox("broadcast")
        .iter()
        .any(|(s, _)| s.contains("finished"))
    {
        assert!(Instant::now() < deadline, "no end-of-run broadcast");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let broadcast = env.inbox("broadcast");
    let (subject, body) = broadcast
        .iter()
        .find(|(s, _)| s.contains("finished"))
        .unwrap_or_else(|| panic!("no end-of-run message in {broadcast:?}"));
    assert!(subject.contains(&plan.name), "{subject}");
    assert!(body.contains(&env.dr.url().to_string()), "{body}");
    assert!(
        body.contains(&lifeboat_core::ledger::keys::report(
            &lifeboat_core::run::RunId(run_id.clone()),
            lifeboat_core::ledger::keys::ReportFormat::Html
        )),
        "{body}"
    );
    for (_, m) in &broadcast {
        assert!(
            !m.contains("sig="),
            "an approval link on the broadcast topic: {m}"
        );
    }
    env.stop().await;
}
