//! Per-table RPO against real Delta tables: delta-rs (the `deltalake` package) writes a table
//! and replicas as S3 replication can leave them (tests/fixtures/delta/make_tables.py); moto
//! serves them; the check must report, for each replica, exactly the newest version delta-rs
//! itself can load there — never one it cannot — and name what is wrong.

use std::{collections::BTreeMap, path::Path};

use lifeboat::local::{delta_tables, moto};
use lifeboat_core::{
    aws::AwsClients,
    delta::s3::{TableLocation, TableReader},
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    latest: u64,
    cases: BTreeMap<String, Truth>,
}

#[derive(Deserialize)]
struct Truth {
    readable: Vec<u64>,
    newest_readable: Option<u64>,
}

fn make_tables(root: &Path, out: &Path) -> Manifest {
    let python = root.join(".venv/bin/python");
    let status = std::process::Command::new(&python)
        .arg(root.join("tests/fixtures/delta/make_tables.py"))
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running the fixture generator");
    assert!(
        status.success(),
        "make_tables.py failed: is `deltalake` installed in .venv (pip install -r requirements-dev.txt)?"
    );
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
        .expect("manifest parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_replica_reports_the_newest_version_delta_rs_can_load() {
    let root = moto::repo_root().expect("repo root");
    let out = std::env::temp_dir().join(format!("lifeboat-delta-{}", std::process::id()));
    let manifest = make_tables(&root, &out);
    let server = moto::ensure_moto(&root).await.expect("moto");
    let moto = moto::Moto::start(
        &server,
        moto::free_port().unwrap(),
        moto::free_port().unwrap(),
    )
    .await
    .expect("moto starts");
    let aws = AwsClients::for_endpoint(&moto.url, "us-west-2").await;
    for bucket in ["lake-use1", "lake-usw2"] {
        aws.s3
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                    .build(),
            )
            .send()
            .await
            .expect("bucket");
    }
    let source = TableLocation::parse("s3://lake-use1/delta/orders").unwrap();
    delta_tables::upload_dir(&aws.s3, &out.join("source"), &source)
        .await
        .expect("source uploaded");

    // The source's head: the newest commit and its time, in three requests.
    let reader = TableReader::new(&aws.s3, &source);
    let head = reader
        .source_head(None)
        .await
        .expect("source read")
        .expect("a log");
    assert_eq!(head.version, manifest.latest);
    assert!(head.commit_time.is_some());
    assert_eq!(reader.requests(), 2, "_last_checkpoint, one listing");
    // Told where the replica's checkpoint is, it skips the hint.
    let reader = TableReader::new(&aws.s3, &source);
    let head = reader
        .source_head(Some(5))
        .await
        .expect("source read")
        .expect("a log");
    assert_eq!((head.version, reader.requests()), (manifest.latest, 1));
    // Told a version past its log (a source restored from an old backup), it lists it all.
    let reader = TableReader::new(&aws.s3, &source);
    let head = reader
        .source_head(Some(50))
        .await
        .expect("source read")
        .expect("a log");
    assert_eq!((head.version, reader.requests()), (manifest.latest, 2));

    // What each case must name beside the version.
    let named: BTreeMap<&str, &str> = [
        ("complete", ""),
        (
            "missing_data_of_last_two",
            "version 8 needs 1 file(s) not yet at the replica",
        ),
        ("missing_commit_7", "commit 7 is missing at the replica"),
        ("missing_commit_2", ""),
        (
            "missing_checkpoint",
            "checkpoint 5 (named by _last_checkpoint) is missing",
        ),
        (
            "corrupt_checkpoint",
            "checkpoint 5 (named by _last_checkpoint) is not readable",
        ),
        ("empty", "no Delta log at"),
        ("not_delta", "no Delta log at"),
    ]
    .into_iter()
    .collect();
    assert_eq!(
        named.keys().collect::<Vec<_>>(),
        manifest
            .cases
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .iter()
            .collect::<Vec<_>>(),
        "every generated case is checked"
    );
    let mut requests = BTreeMap::new();
    for (case, truth) in &manifest.cases {
        let dir = out.join("replicas").join(case);
        let replica = TableLocation::parse(&format!("s3://lake-usw2/{case}/orders")).unwrap();
        if dir.exists() {
            delta_tables::upload_dir(&aws.s3, &dir, &replica)
                .await
                .expect("replica uploaded");
        }
        let reader = TableReader::new(&aws.s3, &replica);
        let got = reader
            .read_replica()
            .await
            .expect("the replica is readable as S3");
        assert_eq!(
            got.consistency.version, truth.newest_readable,
            "{case}: reported {:?}, delta-rs loads {:?} ({got:?})",
            got.consistency.version, truth.readable
        );
        if let Some(v) = got.consistency.version {
            assert!(truth.readable.contains(&v), "{case}: {v} cannot be read");
            assert!(
                got.commit_time.is_some(),
                "{case}: the version's commit time"
            );
        }
        let text: Vec<String> = got
            .consistency
            .blocker
            .iter()
            .map(ToString::to_string)
            .chain(got.findings.iter().cloned())
            .collect();
        let want = named[case.as_str()];
        if want.is_empty() {
            assert!(text.is_empty(), "{case}: nothing to report, got {text:?}");
        } else {
            assert!(
                text.iter().any(|t| t.contains(want)),
                "{case}: {want:?} not in {text:?}"
            );
        }
        requests.insert(case.clone(), got.requests);
    }
    // Bounded by the commits since the checkpoint (4 here), not by the history: hint, listing,
    // 4 commits, one listing page that settles the 4 files they add (the listed checkpoint has
    // the size _last_checkpoint recorded: no footer read).
    assert_eq!(requests["complete"], 7, "{requests:?}");
    assert_eq!(
        requests["missing_commit_2"], 7,
        "the checkpoint covers commit 2"
    );
    // Pages too small to reach every file: the rest get a HEAD each, and the answer is the same.
    // How many a page reaches depends on the data files' names (random in each delta-rs write):
    // at most one HEAD per file the 4 judged commits add; a 1-key page cannot hold all 4.
    for (case, page, least) in [("complete", 1, 1), ("missing_data_of_last_two", 2, 0)] {
        let replica = TableLocation::parse(&format!("s3://lake-usw2/{case}/orders")).unwrap();
        let reader = TableReader::new(&aws.s3, &replica).with_listing_page(page);
        let got = reader.read_replica().await.expect("read");
        assert_eq!(
            got.consistency.version, manifest.cases[case].newest_readable,
            "{case} with {page}-key pages"
        );
        let extra = got.requests - requests[case];
        assert!(
            (least..=4).contains(&extra),
            "{case}: {page}-key pages: {extra} HEADs"
        );
    }

    // A log with no checkpoint at all over a long history is not replayed (it would not fit
    // the Lambda's minute): no version is claimed, and the finding says why.
    let long = delta_tables::SyntheticTable {
        commits: lifeboat_core::delta::s3::MAX_COMMITS_JUDGED as u64 + 2,
        checkpoint_interval: 0,
        last_commit: chrono::Utc::now(),
        interval: chrono::Duration::seconds(1),
        data_since: lifeboat_core::delta::s3::MAX_COMMITS_JUDGED as u64,
    };
    let at = TableLocation::parse("s3://lake-usw2/long/history").unwrap();
    long.write(&aws.s3, &at, long.commits - 1, &[])
        .await
        .expect("written");
    let reader = TableReader::new(&aws.s3, &at);
    let got = reader.read_replica().await.expect("readable as S3");
    assert_eq!(got.consistency.version, None);
    assert!(
        got.findings
            .iter()
            .any(|f| f.contains("more than the check reads")),
        "{:?}",
        got.findings
    );
    assert!(
        reader.requests() <= 4,
        "no commit was fetched: {}",
        reader.requests()
    );
    moto.stop().await;
    let _ = std::fs::remove_dir_all(&out);
}
