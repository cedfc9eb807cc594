//! The canary writer on the local stack: it refreshes every source bucket's canary (and only
//! that key), names a bucket it cannot write, and leaves the replicas to replication.

use std::time::Duration;

use lifeboat_core::{replication::Canary, steps::canary_writer::CanaryOutput};

mod common;

async fn canary(env: &lifeboat::local::LocalEnv, bucket: &str, key: &str) -> Canary {
    let o = env
        .aws
        .s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&o.body.collect().await.unwrap().into_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_writer_refreshes_every_source_canary() {
    let (env, plan) = common::setup(|_| {}).await;
    let b = plan.replication.buckets[0].clone();
    let source_before = canary(&env, &b.source, &b.canary_key).await;
    let replica_before = canary(&env, &b.replica, &b.canary_key).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let out: CanaryOutput = serde_json::from_value(
        env.invoke("canary-writer", &serde_json::json!({}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out.written, vec![format!("{}/{}", b.source, b.canary_key)]);
    assert!(out.failed.is_empty(), "{out:?}");
    let source_after = canary(&env, &b.source, &b.canary_key).await;
    assert!(source_after.written_at > source_before.written_at);
    assert!(
        (chrono::Utc::now() - source_after.written_at).num_seconds() < 5,
        "fresh"
    );
    assert_eq!(
        canary(&env, &b.replica, &b.canary_key).await.written_at,
        replica_before.written_at,
        "the replica is replication's to update"
    );
    // A bucket that cannot be written is named; the others are still refreshed.
    let mut broken = plan.clone();
    let mut missing = b.clone();
    missing.name = "gone".into();
    missing.source = "lifeboat-no-such-source".into();
    missing.replica = "lifeboat-no-such-replica".into();
    broken.replication.buckets.push(missing);
    env.deps
        .ledger
        .put_raw(
            lifeboat::local::PLAN_KEY,
            toml::to_string(&broken).unwrap().into_bytes(),
            "application/toml",
        )
        .await
        .unwrap();
    let out: CanaryOutput = serde_json::from_value(
        env.invoke("canary-writer", &serde_json::json!({}))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out.written.len(), 1);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].0, "lifeboat-no-such-source");
    env.stop().await;
}
