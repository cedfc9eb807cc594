//! Lifecycle events on EventBridge, read back from moto: a rule on `source: lifeboat` targets a
//! queue, a failover runs end to end, and the queue holds the documented milestones in order.

use std::time::{Duration, Instant};

use lifeboat::{drill::health_event, local::ACCOUNT};
use lifeboat_core::{
    run::RunId,
    steps::{
        health_ingest::IngestOutput,
        request_approval::{self, approval_key, ApprovalRecord, ApprovalStage, Decision},
    },
};
use serde_json::Value;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_publishes_its_milestones_in_order() {
    let (env, plan) = common::setup(|_| {}).await;
    let region = lifeboat::local::REGION;
    let moto = aws_config::defaults(aws_config::BehaviorVersion::latest())
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
    request_approval::decide(
        &env.deps,
        &run,
        ApprovalStage::Failover,
        Decision::Approve,
        "oncall-dr@example.com",
        "cli",
        None,
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
            .is_some_and(|u| u.contains(&format!("runs/{run_id}/report.html"))),
        "{finished}"
    );
    // Everyone hears how it ended, on the broadcast topic: the new workspace URL and the
    // report, and never an approval link.
    let broadcast = env.inbox("broadcast");
    let (subject, body) = broadcast
        .iter()
        .find(|(s, _)| s.contains("finished"))
        .unwrap_or_else(|| panic!("no end-of-run message in {broadcast:?}"));
    assert!(subject.contains(&plan.name), "{subject}");
    assert!(body.contains(&env.dr.url().to_string()), "{body}");
    assert!(
        body.contains(&format!("runs/{run_id}/report.html")),
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
