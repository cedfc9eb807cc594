//! The client never panics on what a workspace (or something pretending to be one) answers:
//! any status, any `Retry-After`, and bodies that are arbitrary JSON under the API's own field
//! names (wrong types, huge numbers, deep nesting), real response pages with one field replaced,
//! or real pages cut anywhere. Each case goes through the real client over HTTP to a loopback
//! server that answers every request with the case's answer; what decodes is then read as the
//! steps read it (schedules' next fire time). A non-success status must come back as an error.
//!
//! Longer: `PROPTEST_CASES=150000 cargo test -p lifeboat-core --lib never_panic` (RELIABILITY.md).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use proptest::prelude::*;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{
    clusters::ClusterFilter,
    jobs::{JobId, RunFilter, RunId},
    ClientConfig, Credentials, WorkspaceClient,
};
use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// What the loopback workspace answers, to every request, until the next case.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: Vec<u8>,
}

/// Field names of the responses the client decodes (jobs, runs, clusters, pools, warehouses,
/// errors, pagination).
const FIELDS: &[&str] = &[
    "jobs",
    "job_id",
    "settings",
    "name",
    "schedule",
    "quartz_cron_expression",
    "timezone_id",
    "pause_status",
    "trigger",
    "continuous",
    "max_concurrent_runs",
    "tags",
    "created_time",
    "has_more",
    "next_page_token",
    "runs",
    "run_id",
    "state",
    "life_cycle_state",
    "result_state",
    "start_time",
    "end_time",
    "clusters",
    "cluster_id",
    "cluster_name",
    "cluster_source",
    "instance_pool_id",
    "custom_tags",
    "instance_pools",
    "instance_pool_name",
    "node_type_id",
    "min_idle_instances",
    "warehouses",
    "id",
    "cluster_size",
    "error_code",
    "message",
];

/// Real pages, as the API documents them.
const CORPUS: &[&str] = &[
    r#"{"jobs":[{"job_id":11,"created_time":1700000000000,"creator_user_name":"a@x.com","settings":{"name":"nightly","tags":{"team":"data"},"schedule":{"quartz_cron_expression":"0 15 2 * * ?","timezone_id":"Europe/Amsterdam","pause_status":"UNPAUSED"},"max_concurrent_runs":1}}],"has_more":true,"next_page_token":"CAEQ"}"#,
    r#"{"jobs":[{"job_id":12,"settings":{"name":"events","trigger":{"file_arrival":{"url":"s3://b/in/"},"pause_status":"UNPAUSED"}}},{"job_id":13,"settings":{"name":"stream","continuous":{"pause_status":"PAUSED"}}}],"has_more":false}"#,
    r#"{"runs":[{"run_id":901,"job_id":11,"state":{"life_cycle_state":"RUNNING","state_message":""},"trigger":"PERIODIC","start_time":1700000100000,"end_time":0}],"has_more":false}"#,
    r#"{"clusters":[{"cluster_id":"0101-000000-abcd","cluster_name":"adhoc","state":"RUNNING","cluster_source":"UI","custom_tags":{"owner":"bi"},"spark_version":"15.4.x-scala2.12"}],"next_page_token":"p2"}"#,
    r#"{"instance_pools":[{"instance_pool_id":"pool-1","instance_pool_name":"etl","node_type_id":"i3.xlarge","min_idle_instances":2,"state":"ACTIVE"}]}"#,
    r#"{"warehouses":[{"id":"wh1","name":"bi","state":"RUNNING","cluster_size":"Small","auto_stop_mins":10}]}"#,
    r#"{"run_id":901,"job_id":11,"state":{"life_cycle_state":"TERMINATED","result_state":"SUCCESS"},"start_time":1700000100000,"end_time":1700000200000}"#,
    r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"Run 901 does not exist."}"#,
    r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"Too many requests."}"#,
];

fn json() -> impl Strategy<Value = Value> {
    crate::test_support::json_under(
        FIELDS,
        vec![
            "RUNNING",
            "TERMINATED",
            "UNPAUSED",
            "PAUSED",
            "0 15 2 * * ?",
            "0 0/1 * * * ?",
            "* * * * * * * *",
            "Europe/Amsterdam",
            "Mars/Olympus",
            "",
        ],
    )
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => Just(200u16),
        1 => prop::sample::select(vec![204u16, 400, 401, 403, 404, 409, 429, 500, 503]),
        1 => 100u16..=599,
    ]
}

fn retry_after() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "0",
            "1",
            "0.25",
            "-1",
            "1e308",
            "18446744073709551616",
            "NaN",
            "inf",
            " 2 ",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ])
        .prop_map(|s| Some(s.to_string())),
        // Any header-safe text.
        "[ -~]{0,24}".prop_map(Some),
    ]
}

/// A loopback "workspace" answering every request with the current answer.
async fn serve(answer: Arc<Mutex<Answer>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            tokio::spawn(async move {
                crate::test_support::read_request(&mut socket).await;
                let mut head = format!(
                    "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    answer.status,
                    answer.body.len()
                );
                if let Some(r) = &answer.retry_after {
                    head.push_str(&format!("retry-after: {r}\r\n"));
                }
                head.push_str("\r\n");
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&answer.body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    base
}

struct Harness {
    rt: tokio::runtime::Runtime,
    answer: Arc<Mutex<Answer>>,
    client: WorkspaceClient,
}

fn harness() -> Harness {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let answer = Arc::new(Mutex::new(Answer {
        status: 200,
        retry_after: None,
        body: b"{}".to_vec(),
    }));
    let base = rt.block_on(serve(answer.clone()));
    let mut config = ClientConfig::new(base, Credentials::Pat(Secret::new("dapi-test")));
    config.retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        jitter: Duration::ZERO,
    };
    for rate in config.rate_limits.0.values_mut() {
        *rate = 10_000.0;
    }
    let client = WorkspaceClient::new(config).expect("a client");
    Harness { rt, answer, client }
}

/// One case: every typed call the steps make, against `answer`. Panics only if a call panics
/// or a non-success answer is taken for a success.
fn exercise(h: &Harness, answer: Answer) {
    let failed = !(200..300).contains(&answer.status);
    *h.answer
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = answer;
    let client = h
        .client
        .with_deadline(Instant::now() + Duration::from_secs(2));
    h.rt.block_on(async {
        let jobs: Vec<_> = client.list_jobs(true).take(20).collect().await;
        let now = chrono::Utc::now();
        for job in jobs.iter().flatten() {
            if let Some(schedule) = &job.settings.schedule {
                let _ = crate::schedule::next_fire(schedule, now);
            }
        }
        let runs: Vec<_> = client
            .list_runs(RunFilter {
                active_only: true,
                job_id: Some(JobId(1)),
            })
            .take(20)
            .collect()
            .await;
        let clusters: Vec<_> = client
            .list_clusters(ClusterFilter::default())
            .take(20)
            .collect()
            .await;
        let warehouses: Vec<_> = client.list_warehouses().take(20).collect().await;
        let pools = client.list_pools().await;
        let run = client.get_run(RunId(901)).await;
        let job = client.get_job(JobId(11)).await;
        if failed {
            assert!(jobs.first().is_some_and(Result::is_err), "jobs: {jobs:?}");
            assert!(runs.first().is_some_and(Result::is_err), "runs");
            assert!(clusters.first().is_some_and(Result::is_err), "clusters");
            assert!(warehouses.first().is_some_and(Result::is_err), "warehouses");
            assert!(
                pools.is_err() && run.is_err() && job.is_err(),
                "single gets"
            );
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn arbitrary_json_under_api_field_names_never_panics(
        status in status(),
        retry_after in retry_after(),
        value in json(),
    ) {
        thread_local!(static H: Harness = harness());
        let body = serde_json::to_vec(&value).unwrap_or_default();
        H.with(|h| exercise(h, Answer { status, retry_after, body }));
    }

    #[test]
    fn a_real_page_with_any_field_replaced_never_panics(
        pick in any::<prop::sample::Index>(),
        field in prop::sample::select(FIELDS),
        value in json(),
        status in status(),
    ) {
        thread_local!(static H: Harness = harness());
        let page: &&str = pick.get(CORPUS);
        let mut doc: Value = serde_json::from_str(page).expect("the corpus is JSON");
        replace_everywhere(&mut doc, field, &value);
        let body = serde_json::to_vec(&doc).unwrap_or_default();
        H.with(|h| exercise(h, Answer { status, retry_after: None, body }));
    }

    #[test]
    fn a_real_page_cut_anywhere_never_panics(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
    ) {
        thread_local!(static H: Harness = harness());
        let text = pick.get(CORPUS).as_bytes();
        let body = text[..at.index(text.len() + 1)].to_vec();
        H.with(|h| exercise(h, Answer { status: 200, retry_after: None, body }));
    }
}

/// Sets `field` to `value` wherever it occurs in `doc` (or at the top when it occurs nowhere).
fn replace_everywhere(doc: &mut Value, field: &str, value: &Value) {
    fn walk(v: &mut Value, field: &str, value: &Value) -> bool {
        let mut hit = false;
        match v {
            Value::Object(m) => {
                for (k, child) in m.iter_mut() {
                    if k == field {
                        // Not walked into: the new value may hold the field again.
                        *child = value.clone();
                        hit = true;
                    } else {
                        hit |= walk(child, field, value);
                    }
                }
            }
            Value::Array(items) => {
                for child in items {
                    hit |= walk(child, field, value);
                }
            }
            _ => {}
        }
        hit
    }
    if !walk(doc, field, value) {
        if let Some(m) = doc.as_object_mut() {
            m.insert(field.to_string(), value.clone());
        }
    }
}

/// The `Retry-After` a server sends cannot make the client panic or wait past its cap.
#[test]
fn retry_after_is_bounded() {
    use super::client::parse_retry_after;
    let cap = super::client::MAX_RETRY_AFTER;
    let table: &[(&str, Option<Duration>)] = &[
        ("1", Some(Duration::from_secs(1))),
        (" 0.5 ", Some(Duration::from_millis(500))),
        ("0", Some(Duration::ZERO)),
        ("-1", None),
        ("NaN", None),
        ("inf", None),
        ("1e308", Some(cap)),
        ("18446744073709551616", Some(cap)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("", None),
    ];
    for (header, expected) in table {
        assert_eq!(parse_retry_after(header), *expected, "{header:?}");
    }
}

/// A server that sends the same page token again would be paged until the deadline: the
/// listing ends at once with an error naming the loop.
#[test]
fn a_repeated_page_token_ends_the_listing_with_an_error() {
    let h = harness();
    *h.answer.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Answer {
        status: 200,
        retry_after: None,
        body: br#"{"jobs":[{"job_id":1,"settings":{"name":"a"}}],"has_more":true,"next_page_token":"again"}"#.to_vec(),
    };
    let client = h
        .client
        .with_deadline(Instant::now() + Duration::from_secs(30));
    let started = Instant::now();
    let items: Vec<_> = h.rt.block_on(client.list_jobs(false).collect());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "paged until the deadline"
    );
    // The first page's item, then the error (the repeated page is not yielded again).
    assert_eq!(items.len(), 2, "{items:?}");
    let err = items[1].as_ref().expect_err("the loop is an error");
    assert!(err.to_string().contains("twice"), "{err}");
}
