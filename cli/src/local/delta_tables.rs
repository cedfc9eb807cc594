//! Delta tables in the local S3: uploading a real table written by delta-rs (test fixtures), and
//! writing synthetic logs for the demo plan and the benchmark (replication-check reads only the
//! log and checks that data files exist, so their bytes do not matter).

use std::path::Path;

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use lifeboat_core::delta::s3::TableLocation;

/// Objects written at once.
const PUT_CONCURRENCY: usize = 32;

/// Uploads every file under `dir` to `location` (keys relative to the table root).
pub async fn upload_dir(
    s3: &aws_sdk_s3::Client,
    dir: &Path,
    location: &TableLocation,
) -> Result<usize> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)?
                    .to_string_lossy()
                    .replace(std::path::MAIN_SEPARATOR, "/");
                files.push((location.key(&rel), path));
            }
        }
    }
    let n = files.len();
    put_all(
        s3,
        &location.bucket,
        files
            .into_iter()
            .map(|(key, path)| {
                Ok((
                    key,
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?,
    )
    .await?;
    Ok(n)
}

async fn put_all(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    objects: Vec<(String, Vec<u8>)>,
) -> Result<()> {
    stream::iter(objects.into_iter().map(|(key, body)| async move {
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(ByteStream::from(body))
            .send()
            .await
            .with_context(|| format!("writing s3://{bucket}/{key}"))
            .map(|_| ())
    }))
    .buffer_unordered(PUT_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    Ok(())
}

/// A synthetic table: `commits` appends, one data file each, committed `interval` apart and
/// ending at `last_commit`, with a checkpoint every `checkpoint_interval` commits.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticTable {
    /// Number of commits (versions 0 .. commits-1).
    pub commits: u64,
    /// Checkpoint every this many versions (delta-rs default 100, Spark 10).
    pub checkpoint_interval: u64,
    /// Time of the newest commit.
    pub last_commit: DateTime<Utc>,
    /// Time between commits.
    pub interval: chrono::Duration,
    /// Data files are written from this version on only (0: all). The check never looks at the
    /// files of commits a checkpoint covers, so a benchmark of a long history can skip them.
    pub data_since: u64,
}

/// Data file of `version`.
pub fn data_file(version: u64) -> String {
    format!("part-{version:020}-0000.snappy.parquet")
}

/// A stand-in Parquet file: the magic at both ends and a footer length, which is all the
/// check reads of a checkpoint.
fn parquet_stub() -> Vec<u8> {
    let mut b = b"PAR1".to_vec();
    b.extend_from_slice(&[0u8; 8]);
    b.extend_from_slice(&4u32.to_le_bytes());
    b.extend_from_slice(b"PAR1");
    b
}

impl SyntheticTable {
    fn commit_time(&self, version: u64) -> DateTime<Utc> {
        let back = i32::try_from(self.commits - 1 - version).unwrap_or(i32::MAX);
        self.last_commit - self.interval * back
    }

    fn commit_json(&self, version: u64) -> String {
        let mut lines = Vec::new();
        lines.push(serde_json::json!({"commitInfo": {
            "timestamp": self.commit_time(version).timestamp_millis(),
            "operation": if version == 0 { "CREATE TABLE" } else { "WRITE" },
        }}));
        if version == 0 {
            lines.push(
                serde_json::json!({"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}}),
            );
            lines.push(serde_json::json!({"metaData": {
                "id": "00000000-0000-0000-0000-000000000000",
                "format": {"provider": "parquet", "options": {}},
                "schemaString": "{\"type\":\"struct\",\"fields\":[{\"name\":\"id\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}}]}",
                "partitionColumns": [], "configuration": {}, "createdTime": 0,
            }}));
        }
        lines.push(serde_json::json!({"add": {
            "path": data_file(version), "size": 1, "partitionValues": {},
            "modificationTime": self.commit_time(version).timestamp_millis(), "dataChange": true,
        }}));
        lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Every object of the table, `(relative key, body)`, versions `0..=upto` only (a replica
    /// that has not received the later ones), minus the data files of `without_data`.
    pub fn objects(&self, upto: u64, without_data: &[u64]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut last_checkpoint = None;
        for v in 0..self.commits.min(upto.saturating_add(1)) {
            out.push((
                format!("_delta_log/{v:020}.json"),
                self.commit_json(v).into_bytes(),
            ));
            if v >= self.data_since && !without_data.contains(&v) {
                out.push((data_file(v), b"x".to_vec()));
            }
            if v > 0 && self.checkpoint_interval > 0 && v % self.checkpoint_interval == 0 {
                out.push((
                    format!("_delta_log/{v:020}.checkpoint.parquet"),
                    parquet_stub(),
                ));
                last_checkpoint = Some(v);
            }
        }
        if let Some(v) = last_checkpoint {
            out.push((
                "_delta_log/_last_checkpoint".into(),
                serde_json::to_vec(&serde_json::json!({"version": v, "size": v + 1}))
                    .unwrap_or_default(),
            ));
        }
        out
    }

    /// Writes [`Self::objects`] at `location`.
    pub async fn write(
        &self,
        s3: &aws_sdk_s3::Client,
        location: &TableLocation,
        upto: u64,
        without_data: &[u64],
    ) -> Result<usize> {
        let objects: Vec<(String, Vec<u8>)> = self
            .objects(upto, without_data)
            .into_iter()
            .map(|(k, b)| (location.key(&k), b))
            .collect();
        let n = objects.len();
        put_all(s3, &location.bucket, objects).await?;
        Ok(n)
    }
}
