//! Reading a Delta table's log on S3, with the request count kept (the benchmark's figure).

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::{AtomicU32, Ordering},
};

use chrono::{DateTime, Utc};
use futures::{stream, StreamExt, TryStreamExt};
use tracing::instrument;

use super::log::{
    consistent_version, parse_commit, parse_last_checkpoint, Commit, Consistency, FileLocation,
    LastCheckpoint, Listed, LogListing, Version,
};
use crate::aws::sdk_error_message;

/// Commits fetched at once.
const COMMIT_CONCURRENCY: usize = 16;
/// Existence checks at once (S3 serves 5,500 GET/HEAD per second per prefix).
const HEAD_CONCURRENCY: usize = 32;
/// Keys of the one listing page that settles a table's own files before any HEAD.
const LISTING_PAGE: i32 = 1000;
/// Most commits judged after the base checkpoint. Writers checkpoint every 10 (Spark) or 100
/// (delta-rs) commits; more means no usable checkpoint over a long history, which the check
/// will not replay within its Lambda's minute.
pub const MAX_COMMITS_JUDGED: usize = 1_000;
/// Most files checked for one table, for the same reason.
pub const MAX_FILES_CHECKED: usize = 10_000;

/// `s3://bucket/path/to/table` split into bucket and root key (no trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLocation {
    /// Bucket.
    pub bucket: String,
    /// Table root key (may be empty: the table is the bucket).
    pub root: String,
}

impl TableLocation {
    /// Parses `s3://bucket/root`; the error says what is wrong.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{uri:?} is not an s3:// URI"))?;
        let (bucket, root) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(format!("{bucket:?} is not an S3 bucket name"));
        }
        let root = root.trim_end_matches('/');
        if root.split('/').any(|s| s == ".." || s == ".")
            || root.chars().any(char::is_control)
            || root.contains("//")
            || root.starts_with('/')
        {
            return Err(format!("{root:?} is not a table path"));
        }
        if root.split('/').any(|s| s == "_delta_log") {
            return Err(format!(
                "{root:?} names the log: give the table's root, without `_delta_log`"
            ));
        }
        Ok(Self {
            bucket: bucket.to_string(),
            root: root.to_string(),
        })
    }

    /// The URI form.
    pub fn uri(&self) -> String {
        if self.root.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.root)
        }
    }

    /// `<root>/_delta_log/`.
    pub fn log_prefix(&self) -> String {
        self.key("_delta_log/")
    }

    /// A key under the root.
    pub fn key(&self, relative: &str) -> String {
        if self.root.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{relative}", self.root)
        }
    }
}

/// What the replica holds.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaLog {
    /// The newest loadable version and why the next one is not.
    pub consistency: Consistency,
    /// When the consistent version was committed (`commitInfo`).
    pub commit_time: Option<DateTime<Utc>>,
    /// The newest commit listed at the replica (loadable or not).
    pub newest_listed: Option<Version>,
    /// The checkpoint the reading started from.
    pub checkpoint: Option<Version>,
    /// What a reader would trip on, besides the blocker.
    pub findings: Vec<String>,
    /// S3 requests made.
    pub requests: u32,
}

/// The newest commit at the source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SourceHead {
    /// Version.
    pub version: Version,
    /// Commit time.
    pub commit_time: Option<DateTime<Utc>>,
}

/// Why the log could not be read at all (the caller turns it into a finding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

/// Reads one table's log through S3, counting requests.
pub struct TableReader<'a> {
    s3: &'a aws_sdk_s3::Client,
    location: &'a TableLocation,
    requests: AtomicU32,
    listing_page: i32,
}

impl<'a> TableReader<'a> {
    /// A reader of the table at `location`.
    pub fn new(s3: &'a aws_sdk_s3::Client, location: &'a TableLocation) -> Self {
        Self {
            s3,
            location,
            requests: AtomicU32::new(0),
            listing_page: LISTING_PAGE,
        }
    }

    /// Keys per listing page when settling data files (1,000, S3's maximum, by default): a
    /// smaller page makes tests reach the HEAD fallback without writing a thousand objects.
    pub fn with_listing_page(mut self, keys: i32) -> Self {
        self.listing_page = keys.clamp(1, LISTING_PAGE);
        self
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// GET of a key; `Ok(None)` when absent.
    async fn get(&self, key: &str, range: Option<&str>) -> Result<Option<Vec<u8>>, ReadError> {
        self.count();
        let out = self
            .s3
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            .set_range(range.map(str::to_string))
            .send()
            .await;
        match out {
            Ok(out) => {
                let body = out.body.collect().await.map_err(|e| {
                    ReadError(format!("s3://{}/{key}: body: {e}", self.location.bucket))
                })?;
                Ok(Some(body.into_bytes().to_vec()))
            }
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_s3::operation::get_object::GetObjectError::is_no_such_key,
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(ReadError(format!(
                "s3://{}/{key}: {}",
                self.location.bucket,
                sdk_error_message(&e)
            ))),
        }
    }

    /// Lists `_delta_log/`, starting after `start_after_version`'s files when given.
    async fn list(&self, start_after_version: Option<Version>) -> Result<LogListing, ReadError> {
        let prefix = self.location.log_prefix();
        // `<prefix>{v:020}` sorts just before `{v:020}.checkpoint…` and `{v:020}.json`.
        let start_after = start_after_version.map(|v| format!("{prefix}{v:020}"));
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(&prefix)
            .set_start_after(start_after)
            .into_paginator()
            .send();
        let mut listing = LogListing::default();
        loop {
            self.count();
            let page = match pages.next().await {
                None => {
                    // The paginator's end costs no request.
                    self.requests.fetch_sub(1, Ordering::Relaxed);
                    break;
                }
                Some(page) => page.map_err(|e| {
                    ReadError(format!(
                        "listing s3://{}/{prefix}: {}",
                        self.location.bucket,
                        sdk_error_message(&e)
                    ))
                })?,
            };
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let Some(name) = key.strip_prefix(&prefix) else {
                    continue;
                };
                listing.push(
                    name,
                    Listed {
                        key: key.to_string(),
                        size: object.size().unwrap_or(0),
                        last_modified: object.last_modified().and_then(|t| {
                            DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
                        }),
                    },
                );
            }
        }
        Ok(listing)
    }

    /// Is every part of a checkpoint a Parquet file (footer magic `PAR1`)? One ranged GET each.
    ///
    /// A single file whose listed size is the size `_last_checkpoint` recorded is taken as
    /// written, without a request.
    async fn checkpoint_readable(
        &self,
        parts: &[&Listed],
        recorded_size: Option<i64>,
    ) -> Result<bool, ReadError> {
        if let ([single], Some(size)) = (parts, recorded_size) {
            return Ok(single.size == size);
        }
        for part in parts {
            if part.key.ends_with(".json") {
                continue;
            }
            if part.size < 12 {
                return Ok(false);
            }
            match self.get(&part.key, Some("bytes=-8")).await? {
                Some(tail) if tail.len() == 8 && &tail[4..] == b"PAR1" => {
                    let footer = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
                    if i64::from(footer) + 12 > part.size {
                        return Ok(false);
                    }
                }
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// `_last_checkpoint`, or a finding saying why it is not usable.
    async fn last_checkpoint(
        &self,
        findings: &mut Vec<String>,
    ) -> Result<Option<LastCheckpoint>, ReadError> {
        let key = self.location.key("_delta_log/_last_checkpoint");
        match self.get(&key, None).await? {
            None => Ok(None),
            Some(bytes) => match parse_last_checkpoint(&bytes) {
                Ok(hint) => Ok(Some(hint)),
                Err(e) => {
                    findings.push(format!("{e}: the whole log was listed instead"));
                    Ok(None)
                }
            },
        }
    }

    /// Finds the checkpoint to start from: the hint's when it is complete and readable, else
    /// the newest complete and readable one below it in a full listing. Returns the listing
    /// used and, when the hint's checkpoint is unusable, that version as a cap: readers that
    /// follow `_last_checkpoint` (delta-rs does) fail on every version from it on, even with
    /// all the JSON commits present, so none of those may be reported as loadable.
    async fn base(
        &self,
        findings: &mut Vec<String>,
    ) -> Result<(Option<Version>, LogListing, Option<Version>), ReadError> {
        let hint = self.last_checkpoint(findings).await?;
        if let Some(LastCheckpoint {
            version: v,
            size_in_bytes,
            ..
        }) = hint
        {
            let listing = self.list(Some(v)).await?;
            let why = match listing.complete_checkpoint(v) {
                Some(parts) if self.checkpoint_readable(&parts, size_in_bytes).await? => {
                    return Ok((Some(v), listing, None));
                }
                Some(_) => "is not readable at the replica (not a Parquet file)",
                None => "is missing at the replica",
            };
            findings.push(format!(
                "checkpoint {v} (named by _last_checkpoint) {why}: readers that follow \
                 _last_checkpoint cannot load version {v} or later until it arrives or is \
                 rewritten; the whole log was listed to judge the versions before it"
            ));
        }
        let listing = self.list(None).await?;
        let candidates: Vec<Version> = listing
            .checkpoints
            .keys()
            .rev()
            .copied()
            .filter(|c| hint.is_none_or(|h| *c < h.version))
            .collect();
        for v in candidates {
            match listing.complete_checkpoint(v) {
                Some(parts) if self.checkpoint_readable(&parts, None).await? => {
                    return Ok((Some(v), listing, hint.map(|h| h.version)));
                }
                Some(_) => findings.push(format!("checkpoint {v} is not readable at the replica")),
                None => {}
            }
        }
        Ok((None, listing, hint.map(|h| h.version)))
    }

    /// Which of the table's own files one listing page settles: the page starts just before
    /// the smallest key and holds up to 1,000 keys, so the files of a small table or of recent
    /// commits in one partition are settled by one request instead of a HEAD each. A key the
    /// page reaches is present exactly when listed; a key past a truncated page stays
    /// unsettled (it gets its HEAD). `None` when listing failed: HEAD everything.
    async fn listed(&self, keys: &BTreeSet<String>) -> Option<BTreeMap<String, bool>> {
        let first = keys.iter().next()?;
        let mut chars = first.chars();
        chars.next_back();
        let start_after = chars.as_str();
        let prefix = if self.location.root.is_empty() {
            String::new()
        } else {
            format!("{}/", self.location.root)
        };
        self.count();
        let page = self
            .s3
            .list_objects_v2()
            .bucket(&self.location.bucket)
            .prefix(prefix)
            .start_after(start_after)
            .max_keys(self.listing_page)
            .send()
            .await
            .ok()?;
        let listed: BTreeSet<&str> = page.contents().iter().filter_map(|o| o.key()).collect();
        // A truncated page answers only up to its last key.
        let reach = if page.is_truncated() == Some(true) {
            Some(listed.iter().next_back().copied().unwrap_or(start_after))
        } else {
            None
        };
        Some(
            keys.iter()
                .filter(|k| reach.is_none_or(|last| k.as_str() <= last))
                .map(|k| (k.clone(), listed.contains(k.as_str())))
                .collect(),
        )
    }

    /// Whether each file is at the replica; a HEAD that fails otherwise than 404 counts as
    /// absent and is named. The table's own files are first looked up in one listing page
    /// ([`Self::listed`]).
    async fn present(
        &self,
        files: BTreeSet<&FileLocation>,
        findings: &mut Vec<String>,
    ) -> BTreeSet<FileLocation> {
        let own: BTreeSet<String> = files
            .iter()
            .filter_map(|f| match f {
                FileLocation::Relative(p) => Some(self.location.key(p)),
                FileLocation::Absolute(_) => None,
            })
            .collect();
        let settled = if own.len() > 1 {
            self.listed(&own).await.unwrap_or_default()
        } else {
            BTreeMap::new()
        };
        let mut present = BTreeSet::new();
        let files: BTreeSet<&FileLocation> = files
            .into_iter()
            .filter(|f| {
                let FileLocation::Relative(p) = f else {
                    return true;
                };
                match settled.get(&self.location.key(p)) {
                    Some(true) => {
                        present.insert((*f).clone());
                        false
                    }
                    Some(false) => false,
                    None => true,
                }
            })
            .collect();
        // Futures built up front, not in a stream closure: keeps the future `Send` for the
        // Lambda runtime (a closure over borrowed data trips the compiler's HRTB inference).
        let checks: Vec<_> = files
            .into_iter()
            .map(|file| async move {
                let (bucket, key) = match file {
                    FileLocation::Relative(p) => {
                        (self.location.bucket.clone(), self.location.key(p))
                    }
                    FileLocation::Absolute(uri) => match TableLocation::parse(uri) {
                        Ok(l) => (l.bucket, l.root),
                        Err(_) => {
                            return (
                                file.clone(),
                                Err(format!("{uri} is outside S3 and cannot be checked")),
                            )
                        }
                    },
                };
                self.count();
                let out = self.s3.head_object().bucket(&bucket).key(&key).send().await;
                let result = match out {
                    Ok(_) => Ok(true),
                    Err(e)
                        if e.as_service_error().is_some_and(
                            aws_sdk_s3::operation::head_object::HeadObjectError::is_not_found,
                        ) =>
                    {
                        Ok(false)
                    }
                    Err(e) => Err(format!("s3://{bucket}/{key}: {}", sdk_error_message(&e))),
                };
                (file.clone(), result)
            })
            .collect();
        let results: Vec<(FileLocation, Result<bool, String>)> = stream::iter(checks)
            .buffer_unordered(HEAD_CONCURRENCY)
            .collect()
            .await;
        let mut failures = Vec::new();
        for (file, result) in results {
            match result {
                Ok(true) => {
                    present.insert(file);
                }
                Ok(false) => {}
                Err(why) => failures.push(why),
            }
        }
        if let Some(first) = failures.iter().min() {
            findings.push(format!(
                "{} existence check(s) failed, counted as missing (first: {first})",
                failures.len()
            ));
        }
        present
    }

    /// A replica where no version is claimed readable; the findings say why.
    fn nothing_readable(
        &self,
        newest_listed: Option<Version>,
        checkpoint: Option<Version>,
        findings: Vec<String>,
    ) -> ReplicaLog {
        ReplicaLog {
            consistency: Consistency {
                version: None,
                blocker: None,
            },
            commit_time: None,
            newest_listed,
            checkpoint,
            findings,
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// The newest version a reader can load at this location, and why not a newer one.
    #[instrument(skip_all, fields(table = %self.location.uri()))]
    pub async fn read_replica(&self) -> Result<ReplicaLog, ReadError> {
        let mut findings = Vec::new();
        let (base, listing, cap) = self.base(&mut findings).await?;
        let newest_listed = listing.newest_commit();
        if listing.commits.is_empty() && base.is_none() {
            findings.push(format!(
                "no Delta log at {}/_delta_log/ (not a Delta table, or nothing replicated yet)",
                self.location.uri()
            ));
            return Ok(self.nothing_readable(newest_listed, None, findings));
        }
        let pending = listing
            .commits
            .keys()
            .filter(|v| base.is_none_or(|b| **v > b) && cap.is_none_or(|c| **v < c))
            .count();
        if pending > MAX_COMMITS_JUDGED {
            findings.push(format!(
                "{pending} commits after the last usable checkpoint ({}): more than the check \
                 reads ({MAX_COMMITS_JUDGED}); no version is claimed readable",
                base.map_or("none".to_string(), |b| b.to_string())
            ));
            return Ok(self.nothing_readable(newest_listed, base, findings));
        }
        let after: Vec<(Version, &Listed)> = listing
            .commits
            .iter()
            .filter(|(v, _)| base.is_none_or(|b| **v > b) && cap.is_none_or(|c| **v < c))
            .map(|(v, l)| (*v, l))
            .collect();
        let fetches: Vec<_> = after
            .into_iter()
            .map(|(v, listed)| async move {
                let parsed = match self.get(&listed.key, None).await? {
                    Some(bytes) => parse_commit(&bytes).map_err(|e| e.to_string()),
                    None => Err("listed, then gone".to_string()),
                };
                Ok::<_, ReadError>((v, parsed))
            })
            .collect();
        let commits: Vec<(Version, Result<Commit, String>)> = stream::iter(fetches)
            .buffered(COMMIT_CONCURRENCY)
            .try_collect()
            .await?;
        let needed: BTreeSet<&FileLocation> = commits
            .iter()
            .filter_map(|(_, c)| c.as_ref().ok())
            .flat_map(|c| c.adds.iter().flat_map(|a| a.required()))
            .collect();
        if needed.len() > MAX_FILES_CHECKED {
            findings.push(format!(
                "{} files added since the last usable checkpoint: more than the check verifies \
                 ({MAX_FILES_CHECKED}); no version after the checkpoint is claimed readable",
                needed.len()
            ));
        }
        let present = if needed.len() > MAX_FILES_CHECKED {
            BTreeSet::new()
        } else {
            self.present(needed, &mut findings).await
        };
        let judged: Vec<(Version, Result<&Commit, String>)> = commits
            .iter()
            .map(|(v, c)| (*v, c.as_ref().map_err(Clone::clone)))
            .collect();
        let consistency = consistent_version(base, &judged, |f| present.contains(f));
        let commit_time = match consistency.version {
            None => None,
            Some(v) if Some(v) == base => match listing.commits.get(&v) {
                // The checkpoint's own commit, for its time (one more GET).
                Some(listed) => self
                    .get(&listed.key, None)
                    .await?
                    .and_then(|b| parse_commit(&b).ok())
                    .and_then(|c| c.timestamp_ms),
                None => None,
            }
            .and_then(DateTime::from_timestamp_millis),
            Some(v) => commits
                .iter()
                .find(|(cv, _)| *cv == v)
                .and_then(|(_, c)| c.as_ref().ok())
                .and_then(|c| c.timestamp_ms)
                .and_then(DateTime::from_timestamp_millis),
        };
        if consistency.version.is_some() && commit_time.is_none() {
            findings.push(
                "the consistent version's commit has no commitInfo timestamp: its age is unknown"
                    .into(),
            );
        }
        Ok(ReplicaLog {
            consistency,
            commit_time,
            newest_listed,
            checkpoint: base,
            findings,
            requests: self.requests.load(Ordering::Relaxed),
        })
    }

    /// The newest commit at the source and its time: one listing from `known` (a version the
    /// source surely has — the replica's checkpoint; else `_last_checkpoint` is read first).
    /// The time is the commit object's `LastModified`: at the source that is when the commit
    /// was written (a commit file is written once, put-if-absent), and it saves a GET per table.
    /// `Ok(None)`: no log there.
    #[instrument(skip_all, fields(table = %self.location.uri()))]
    pub async fn source_head(
        &self,
        known: Option<Version>,
    ) -> Result<Option<SourceHead>, ReadError> {
        let start = match known {
            Some(v) => Some(v),
            None => self
                .last_checkpoint(&mut Vec::new())
                .await?
                .map(|h| h.version),
        };
        let mut listing = self.list(start).await?;
        if listing.commits.is_empty() && start.is_some() {
            listing = self.list(None).await?;
        }
        let Some((version, listed)) = listing.commits.iter().next_back() else {
            return Ok(None);
        };
        Ok(Some(SourceHead {
            version: *version,
            commit_time: listed.last_modified,
        }))
    }

    /// Requests made so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_locations() {
        let ok = TableLocation::parse("s3://sales-lake/delta/orders/").expect("valid");
        assert_eq!(ok.bucket, "sales-lake");
        assert_eq!(ok.root, "delta/orders");
        assert_eq!(ok.log_prefix(), "delta/orders/_delta_log/");
        assert_eq!(ok.uri(), "s3://sales-lake/delta/orders");
        let bucket_root = TableLocation::parse("s3://sales-lake").expect("valid");
        assert_eq!(bucket_root.log_prefix(), "_delta_log/");
        for (bad, why) in [
            ("https://x/y", "not an s3:// URI"),
            ("s3://Sales/t", "bucket name"),
            ("s3://ab/t", "bucket name"),
            ("s3://sales/a/../b", "not a table path"),
            ("s3://sales/a//b", "not a table path"),
            ("s3://sales/t/_delta_log", "names the log"),
            ("s3://sales/t\n", "not a table path"),
        ] {
            let err = TableLocation::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
