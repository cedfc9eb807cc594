//! The parts of the Delta transaction log protocol this check needs, as pure functions.
//!
//! Wire format (Delta protocol, `_delta_log/` under the table root):
//! - `{version:020}.json`: one commit, newline-delimited JSON, one action per line —
//!   `{"add":{"path":..,"deletionVector":{..}?}}`, `{"remove":{"path":..}}`,
//!   `{"commitInfo":{"timestamp":ms,"inCommitTimestamp":ms?}}`, `metaData`, `protocol`, `txn`, ...
//!   Paths are relative URIs (percent-encoded) or absolute URIs.
//! - `{version:020}.checkpoint.parquet` (classic), `{version:020}.checkpoint.{i:010}.{n:010}.parquet`
//!   (multi-part: all `n` parts needed), `{version:020}.checkpoint.{uuid}.{parquet|json}` (V2).
//! - `_last_checkpoint`: JSON `{"version":N,"size":..,"parts":n?}` — a hint, possibly stale.
//! - Deletion vectors with `storageType` `u` live at `<random prefix>/deletion_vector_<uuid>.bin`
//!   where `pathOrInlineDv` is the prefix followed by the UUID in Z85 (20 characters); `p` is an
//!   absolute path; `i` is inline (no file).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

/// A table version (commit number).
pub type Version = u64;

/// Why a log object could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// A line of a commit is not a JSON object.
    #[error("line {line} is not valid JSON: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// Parser message.
        reason: String,
    },
    /// A path in an action cannot be decoded.
    #[error("action path {path:?} cannot be decoded")]
    BadPath {
        /// The path as written.
        path: String,
    },
    /// A deletion vector descriptor is not one the protocol defines.
    #[error("deletion vector {descriptor:?} is not valid: {reason}")]
    BadDeletionVector {
        /// `pathOrInlineDv`.
        descriptor: String,
        /// Why.
        reason: &'static str,
    },
    /// `_last_checkpoint` is not what the protocol describes.
    #[error("_last_checkpoint is not valid: {0}")]
    BadLastCheckpoint(String),
}

/// Where a file a commit needs lives, relative to the table root or elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileLocation {
    /// A key under the table root (decoded, no leading `/`).
    Relative(String),
    /// An absolute URI (`s3://bucket/key`, or another scheme the replica cannot serve).
    Absolute(String),
}

/// One `add` action: the data file and, when it has one, its deletion-vector file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedFile {
    /// The data file (the key `remove` actions name).
    pub path: FileLocation,
    /// The deletion-vector file the reader also needs.
    pub deletion_vector: Option<FileLocation>,
}

impl AddedFile {
    /// Every object a reader needs for this file.
    pub fn required(&self) -> impl Iterator<Item = &FileLocation> {
        std::iter::once(&self.path).chain(self.deletion_vector.as_ref())
    }
}

/// What a commit changes that matters for readability, and when it was made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// Files added.
    pub adds: Vec<AddedFile>,
    /// Files removed (data file paths).
    pub removes: Vec<FileLocation>,
    /// `commitInfo.inCommitTimestamp`, else `commitInfo.timestamp` (ms since the epoch).
    pub timestamp_ms: Option<i64>,
}

#[derive(Deserialize)]
struct Action {
    add: Option<AddAction>,
    remove: Option<RemoveAction>,
    #[serde(rename = "commitInfo")]
    commit_info: Option<CommitInfo>,
}

#[derive(Deserialize)]
struct AddAction {
    path: String,
    #[serde(rename = "deletionVector")]
    deletion_vector: Option<DeletionVector>,
}

#[derive(Deserialize)]
struct RemoveAction {
    path: String,
}

#[derive(Deserialize)]
struct CommitInfo {
    timestamp: Option<serde_json::Value>,
    #[serde(rename = "inCommitTimestamp")]
    in_commit_timestamp: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct DeletionVector {
    #[serde(rename = "storageType")]
    storage_type: String,
    #[serde(rename = "pathOrInlineDv")]
    path_or_inline_dv: String,
}

/// Parses one commit file. Unknown actions are ignored (the protocol grows); a line that is not
/// JSON makes the whole commit unreadable, as it would for a reader.
pub fn parse_commit(bytes: &[u8]) -> Result<Commit, LogError> {
    let text = String::from_utf8_lossy(bytes);
    let mut commit = Commit::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let action: Action = serde_json::from_str(line).map_err(|e| LogError::BadLine {
            line: i + 1,
            reason: e.to_string(),
        })?;
        if let Some(add) = action.add {
            commit.adds.push(AddedFile {
                path: file_location(&add.path)?,
                deletion_vector: add
                    .deletion_vector
                    .map(|dv| deletion_vector_file(&dv.storage_type, &dv.path_or_inline_dv))
                    .transpose()?
                    .flatten(),
            });
        }
        if let Some(remove) = action.remove {
            commit.removes.push(file_location(&remove.path)?);
        }
        if let Some(info) = action.commit_info {
            let ms = |v: Option<serde_json::Value>| v.and_then(|v| v.as_i64());
            commit.timestamp_ms = ms(info.in_commit_timestamp).or(ms(info.timestamp));
        }
    }
    Ok(commit)
}

/// A path as an action writes it: an absolute URI, or a percent-encoded path relative to the
/// table root.
pub fn file_location(path: &str) -> Result<FileLocation, LogError> {
    if path.contains("://") {
        return Ok(FileLocation::Absolute(path.to_string()));
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| LogError::BadPath { path: path.into() })?;
    let relative = decoded.trim_start_matches('/');
    // A relative path that climbs out of the table is not a file of this table.
    if relative.is_empty() || relative.split('/').any(|s| s == "..") {
        return Err(LogError::BadPath { path: path.into() });
    }
    Ok(FileLocation::Relative(relative.to_string()))
}

const Z85: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Decodes Z85 (ZeroMQ's base85) text whose length is a multiple of 5.
pub fn z85_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if bytes.len() % 5 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 5 * 4);
    for chunk in bytes.chunks(5) {
        let mut value: u64 = 0;
        for &c in chunk {
            let digit = Z85.iter().position(|&z| z == c)? as u64;
            value = value * 85 + digit;
        }
        let value = u32::try_from(value).ok()?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Some(out)
}

/// The file a deletion vector lives in (`None`: inline, no file).
pub fn deletion_vector_file(
    storage_type: &str,
    path_or_inline: &str,
) -> Result<Option<FileLocation>, LogError> {
    let bad = |reason| LogError::BadDeletionVector {
        descriptor: path_or_inline.to_string(),
        reason,
    };
    match storage_type {
        "i" => Ok(None),
        "p" => Ok(Some(FileLocation::Absolute(path_or_inline.to_string()))),
        "u" => {
            let split = path_or_inline
                .len()
                .checked_sub(20)
                .filter(|&s| path_or_inline.is_char_boundary(s))
                .ok_or_else(|| bad("shorter than a Z85 UUID (20 characters)"))?;
            let (prefix, encoded) = path_or_inline.split_at(split);
            let raw = z85_decode(encoded).ok_or_else(|| bad("the UUID is not Z85"))?;
            let hex = hex::encode(raw);
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            let name = format!("deletion_vector_{uuid}.bin");
            if prefix.split('/').any(|s| s == "..") {
                return Err(bad("the prefix climbs out of the table"));
            }
            Ok(Some(FileLocation::Relative(if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            })))
        }
        _ => Err(bad("unknown storageType")),
    }
}

/// What a name under `_delta_log/` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogObject {
    /// `{v:020}.json`.
    Commit(Version),
    /// A checkpoint file of version `v`.
    Checkpoint {
        /// Version it captures.
        version: Version,
        /// `Some((i, n))` for part `i` of a multi-part checkpoint.
        part: Option<(u32, u32)>,
    },
    /// `_last_checkpoint`.
    LastCheckpoint,
    /// Anything else (`.crc`, compacted logs, temporary files).
    Other,
}

/// Names `name` (the part after `_delta_log/`).
pub fn classify(name: &str) -> LogObject {
    if name == "_last_checkpoint" {
        return LogObject::LastCheckpoint;
    }
    let Some((digits, rest)) = name.split_once('.') else {
        return LogObject::Other;
    };
    let version = match (digits.len(), digits.parse::<Version>()) {
        (20, Ok(v)) => v,
        _ => return LogObject::Other,
    };
    if rest == "json" {
        return LogObject::Commit(version);
    }
    let Some(checkpoint) = rest.strip_prefix("checkpoint") else {
        return LogObject::Other;
    };
    if checkpoint == ".parquet" {
        return LogObject::Checkpoint {
            version,
            part: None,
        };
    }
    let fields: Vec<&str> = checkpoint.trim_start_matches('.').split('.').collect();
    match fields.as_slice() {
        [i, n, "parquet"] if i.len() == 10 && n.len() == 10 => {
            match (i.parse::<u32>(), n.parse::<u32>()) {
                (Ok(i), Ok(n)) if i >= 1 && i <= n => LogObject::Checkpoint {
                    version,
                    part: Some((i, n)),
                },
                _ => LogObject::Other,
            }
        }
        // V2: a UUID-named top-level checkpoint.
        [id, "parquet" | "json"] if id.len() == 36 => LogObject::Checkpoint {
            version,
            part: None,
        },
        _ => LogObject::Other,
    }
}

/// `_last_checkpoint` as the protocol writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastCheckpoint {
    /// The checkpoint's version.
    pub version: Version,
    /// Number of parts, if multi-part.
    pub parts: Option<u32>,
    /// Size of the checkpoint file in bytes, when the writer recorded it (delta-rs and Spark
    /// do): a listed size that differs means a truncated or foreign file.
    pub size_in_bytes: Option<i64>,
}

/// Parses `_last_checkpoint`.
pub fn parse_last_checkpoint(bytes: &[u8]) -> Result<LastCheckpoint, LogError> {
    #[derive(Deserialize)]
    struct Wire {
        version: serde_json::Value,
        parts: Option<serde_json::Value>,
        #[serde(rename = "sizeInBytes")]
        size_in_bytes: Option<serde_json::Value>,
    }
    let wire: Wire =
        serde_json::from_slice(bytes).map_err(|e| LogError::BadLastCheckpoint(e.to_string()))?;
    let version = wire.version.as_u64().ok_or_else(|| {
        LogError::BadLastCheckpoint(format!("version {} is not a version", wire.version))
    })?;
    let parts = match wire.parts {
        None | Some(serde_json::Value::Null) => None,
        Some(p) => Some(
            p.as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .filter(|&p| p >= 1)
                .ok_or_else(|| LogError::BadLastCheckpoint(format!("parts {p} is not a count")))?,
        ),
    };
    let size_in_bytes = wire
        .size_in_bytes
        .and_then(|v| v.as_i64())
        .filter(|&n| n > 0);
    Ok(LastCheckpoint {
        version,
        parts,
        size_in_bytes,
    })
}

/// One listed object of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Full key.
    pub key: String,
    /// Size in bytes.
    pub size: i64,
    /// When it was written to this bucket.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// One checkpoint file: `Some((i, n))` for part `i` of `n`, and the object.
pub type CheckpointFile = (Option<(u32, u32)>, Listed);

/// The log as one listing saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogListing {
    /// Commit files by version.
    pub commits: BTreeMap<Version, Listed>,
    /// Checkpoint files by version.
    pub checkpoints: BTreeMap<Version, Vec<CheckpointFile>>,
}

impl LogListing {
    /// Files a listing found under `_delta_log/` (`name` is the part after it).
    pub fn push(&mut self, name: &str, listed: Listed) {
        match classify(name) {
            LogObject::Commit(v) => {
                self.commits.insert(v, listed);
            }
            LogObject::Checkpoint { version, part } => {
                self.checkpoints
                    .entry(version)
                    .or_default()
                    .push((part, listed));
            }
            LogObject::LastCheckpoint | LogObject::Other => {}
        }
    }

    /// The objects of a complete checkpoint of `version`: one classic or V2 file, or every part
    /// of one multi-part set. `None` when no complete checkpoint of that version is listed.
    pub fn complete_checkpoint(&self, version: Version) -> Option<Vec<&Listed>> {
        let files = self.checkpoints.get(&version)?;
        if let Some((_, single)) = files.iter().find(|(part, _)| part.is_none()) {
            return Some(vec![single]);
        }
        // Multi-part sets of different sizes may coexist (a retried writer); any complete one.
        let mut by_total: BTreeMap<u32, BTreeMap<u32, &Listed>> = BTreeMap::new();
        for (part, listed) in files {
            if let Some((i, n)) = part {
                by_total.entry(*n).or_default().insert(*i, listed);
            }
        }
        by_total
            .into_iter()
            .find(|(n, parts)| parts.len() == *n as usize)
            .map(|(_, parts)| parts.into_values().collect())
    }

    /// The newest commit listed.
    pub fn newest_commit(&self) -> Option<Version> {
        self.commits.keys().next_back().copied()
    }
}

/// Why the version after the consistent one cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocker {
    /// The commit file of this version is not at the replica while later ones are.
    MissingCommit(Version),
    /// The commit file of this version cannot be parsed.
    UnreadableCommit(Version, String),
    /// Files live at this version are not at the replica.
    MissingFiles {
        /// First version needing them.
        version: Version,
        /// How many are missing at that version.
        count: usize,
        /// One of them.
        example: FileLocation,
    },
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Blocker::MissingCommit(v) => write!(
                f,
                "commit {v} is missing at the replica: no version from {v} on can be read"
            ),
            Blocker::UnreadableCommit(v, why) => {
                write!(f, "commit {v} cannot be read at the replica ({why})")
            }
            Blocker::MissingFiles {
                version,
                count,
                example,
            } => {
                let example = match example {
                    FileLocation::Relative(p) | FileLocation::Absolute(p) => p,
                };
                write!(
                    f,
                    "version {version} needs {count} file(s) not yet at the replica (e.g. {example})"
                )
            }
        }
    }
}

/// The newest version a reader can load, from a base (a usable checkpoint's version, or `None`
/// to replay from commit 0) and the commits after it in ascending order (`Err` for a commit
/// listed but unreadable). `present` says whether a file is at the replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consistency {
    /// The newest loadable version (`None`: none).
    pub version: Option<Version>,
    /// Why the next version is not loadable, when a later one is listed.
    pub blocker: Option<Blocker>,
}

/// Pure: the newest consistent version. Files the base checkpoint references are taken as
/// present (see the module doc); every file added after it and still live at a version must be
/// present for that version to count. A later commit that removes a missing file (compaction)
/// makes its version readable again.
pub fn consistent_version(
    base: Option<Version>,
    commits: &[(Version, Result<&Commit, String>)],
    present: impl Fn(&FileLocation) -> bool,
) -> Consistency {
    let mut expected = base.map_or(0, |b| b + 1);
    let mut best = base;
    let mut blocker: Option<Blocker> = None;
    // Data file → whether everything it needs is present.
    let mut live: HashMap<&FileLocation, bool> = HashMap::new();
    let mut missing = 0usize;
    for (version, commit) in commits {
        if *version < expected {
            continue;
        }
        if *version != expected {
            blocker.get_or_insert(Blocker::MissingCommit(expected));
            break;
        }
        let commit = match commit {
            Ok(c) => c,
            Err(why) => {
                blocker.get_or_insert(Blocker::UnreadableCommit(*version, why.clone()));
                break;
            }
        };
        for removed in &commit.removes {
            if live.remove(removed) == Some(false) {
                missing -= 1;
            }
        }
        for added in &commit.adds {
            let ok = added.required().all(&present);
            if let Some(was) = live.insert(&added.path, ok) {
                if !was {
                    missing -= 1;
                }
            }
            if !ok {
                missing += 1;
            }
        }
        if missing == 0 {
            best = Some(*version);
            blocker = None;
        } else if blocker.is_none() {
            let example = live
                .iter()
                .filter(|(_, ok)| !**ok)
                .map(|(f, _)| (*f).clone())
                .min();
            if let Some(example) = example {
                blocker = Some(Blocker::MissingFiles {
                    version: *version,
                    count: missing,
                    example,
                });
            }
        }
        expected = version + 1;
    }
    Consistency {
        version: best,
        blocker,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(p: &str) -> FileLocation {
        FileLocation::Relative(p.into())
    }

    fn commit(adds: &[&str], removes: &[&str], ts: i64) -> Commit {
        Commit {
            adds: adds
                .iter()
                .map(|p| AddedFile {
                    path: rel(p),
                    deletion_vector: None,
                })
                .collect(),
            removes: removes.iter().map(|p| rel(p)).collect(),
            timestamp_ms: Some(ts),
        }
    }

    #[test]
    fn classify_log_names() {
        let cases: &[(&str, LogObject)] = &[
            ("00000000000000000007.json", LogObject::Commit(7)),
            (
                "00000000000000000010.checkpoint.parquet",
                LogObject::Checkpoint {
                    version: 10,
                    part: None,
                },
            ),
            (
                "00000000000000000010.checkpoint.0000000002.0000000003.parquet",
                LogObject::Checkpoint {
                    version: 10,
                    part: Some((2, 3)),
                },
            ),
            (
                "00000000000000000010.checkpoint.80a083e8-7026-4e79-81be-64bd76c43a11.json",
                LogObject::Checkpoint {
                    version: 10,
                    part: None,
                },
            ),
            (
                "00000000000000000010.checkpoint.0000000004.0000000003.parquet",
                LogObject::Other,
            ),
            ("_last_checkpoint", LogObject::LastCheckpoint),
            ("00000000000000000007.crc", LogObject::Other),
            (
                "00000000000000000001.00000000000000000009.compacted.json",
                LogObject::Other,
            ),
            ("7.json", LogObject::Other),
            ("_commits/", LogObject::Other),
            ("99999999999999999999999.json", LogObject::Other),
            (".00000000000000000007.json.tmp", LogObject::Other),
        ];
        for (name, want) in cases {
            assert_eq!(&classify(name), want, "{name}");
        }
    }

    #[test]
    fn commits_parse_adds_removes_and_time() {
        let text = br#"{"commitInfo":{"timestamp":1700000000123,"operation":"WRITE"}}
{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}
{"add":{"path":"year%3D2024/part-0.parquet","size":10,"dataChange":true}}
{"remove":{"path":"part-old.parquet","dataChange":true}}

{"add":{"path":"s3://other/t/part-9.parquet","deletionVector":{"storageType":"i","pathOrInlineDv":"wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L","offset":1,"sizeInBytes":36,"cardinality":2}}}
"#;
        let c = parse_commit(text).expect("parses");
        assert_eq!(c.timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(c.adds[0].path, rel("year=2024/part-0.parquet"));
        assert_eq!(
            c.adds[1].path,
            FileLocation::Absolute("s3://other/t/part-9.parquet".into())
        );
        assert_eq!(
            c.adds[1].deletion_vector, None,
            "inline vectors need no file"
        );
        assert_eq!(c.removes, vec![rel("part-old.parquet")]);
        // In-commit timestamps win over the wall clock of the writer.
        let c = parse_commit(br#"{"commitInfo":{"timestamp":5,"inCommitTimestamp":7}}"#)
            .expect("parses");
        assert_eq!(c.timestamp_ms, Some(7));
    }

    #[test]
    fn bad_commits_name_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"add\":{\"path\":\"a\"}}\n{truncated", "line 2"),
            (b"{\"add\":{\"path\":\"../../etc/passwd\"}}", "cannot be decoded"),
            (b"{\"add\":{\"path\":\"%FF%FE\"}}", "cannot be decoded"),
            (b"{\"add\":{}}", "line 1"),
            (
                b"{\"add\":{\"path\":\"a\",\"deletionVector\":{\"storageType\":\"u\",\"pathOrInlineDv\":\"short\"}}}",
                "shorter than",
            ),
            (
                b"{\"add\":{\"path\":\"a\",\"deletionVector\":{\"storageType\":\"x\",\"pathOrInlineDv\":\"\"}}}",
                "unknown storageType",
            ),
        ];
        for (bytes, want) in cases {
            let err = parse_commit(bytes).expect_err("refused").to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
    }

    #[test]
    fn z85_and_deletion_vector_paths() {
        // The Z85 spec's test vector.
        assert_eq!(
            z85_decode("HelloWorld"),
            Some(vec![0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B])
        );
        assert_eq!(z85_decode("Hell"), None);
        assert_eq!(z85_decode("~~~~~"), None);
        assert_eq!(z85_decode("#####"), None, "overflows 32 bits");
        // The Delta protocol's example: prefix "ab", UUID d2c639aa-8816-431a-aaf6-d3fe2512ff61.
        let file = deletion_vector_file("u", "ab^-aqEH.-t@S}K{vb[*k^").expect("valid");
        assert_eq!(
            file,
            Some(rel(
                "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"
            ))
        );
        let file = deletion_vector_file("u", "^-aqEH.-t@S}K{vb[*k^").expect("valid");
        assert_eq!(
            file,
            Some(rel(
                "deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"
            ))
        );
        assert_eq!(
            deletion_vector_file("p", "s3://b/t/dv.bin").expect("valid"),
            Some(FileLocation::Absolute("s3://b/t/dv.bin".into()))
        );
    }

    #[test]
    fn last_checkpoint_hint() {
        let ok = parse_last_checkpoint(br#"{"version":10,"size":13,"parts":3}"#).expect("valid");
        assert_eq!(
            ok,
            LastCheckpoint {
                version: 10,
                parts: Some(3),
                size_in_bytes: None,
            }
        );
        let ok = parse_last_checkpoint(
            br#"{"version":5,"size":8,"sizeInBytes":14457,"numOfAddFiles":1}"#,
        )
        .expect("delta-rs writes this");
        assert_eq!((ok.parts, ok.size_in_bytes), (None, Some(14457)));
        for bad in [
            &b"{\"version\":-1}"[..],
            b"{\"version\":1e400}",
            b"{}",
            b"garbage",
            b"{\"version\":1,\"parts\":0}",
        ] {
            assert!(
                parse_last_checkpoint(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn complete_checkpoints_only() {
        let listed = |k: &str| Listed {
            key: k.into(),
            size: 1,
            last_modified: None,
        };
        let mut log = LogListing::default();
        log.push(
            "00000000000000000010.checkpoint.0000000001.0000000002.parquet",
            listed("a"),
        );
        assert_eq!(log.complete_checkpoint(10), None, "one part of two");
        log.push(
            "00000000000000000010.checkpoint.0000000002.0000000002.parquet",
            listed("b"),
        );
        assert_eq!(log.complete_checkpoint(10).map(|v| v.len()), Some(2));
        log.push("00000000000000000020.checkpoint.parquet", listed("c"));
        assert_eq!(log.complete_checkpoint(20).map(|v| v.len()), Some(1));
        assert_eq!(log.complete_checkpoint(30), None);
    }

    /// Table: base, commits (version, adds, removes or unreadable), files missing at the replica
    /// → the consistent version and the blocker.
    #[test]
    fn consistent_version_table() {
        struct Case {
            name: &'static str,
            base: Option<Version>,
            commits: Vec<(Version, Option<Commit>)>,
            missing: &'static [&'static str],
            want: Option<Version>,
            blocker: Option<&'static str>,
        }
        let c = |a: &[&str], r: &[&str]| Some(commit(a, r, 0));
        let cases = vec![
            Case {
                name: "complete from commit 0",
                base: None,
                commits: vec![(0, c(&["a"], &[])), (1, c(&["b"], &[]))],
                missing: &[],
                want: Some(1),
                blocker: None,
            },
            Case {
                name: "data of the last two commits missing",
                base: Some(5),
                commits: vec![
                    (6, c(&["f6"], &[])),
                    (7, c(&["f7"], &[])),
                    (8, c(&["f8"], &[])),
                    (9, c(&["f9"], &[])),
                ],
                missing: &["f8", "f9"],
                want: Some(7),
                blocker: Some("version 8 needs 1 file(s)"),
            },
            Case {
                name: "a gap in the log",
                base: Some(5),
                commits: vec![(6, c(&["f6"], &[])), (8, c(&["f8"], &[]))],
                missing: &[],
                want: Some(6),
                blocker: Some("commit 7 is missing"),
            },
            Case {
                name: "commit 0 missing and no checkpoint",
                base: None,
                commits: vec![(1, c(&["f1"], &[]))],
                missing: &[],
                want: None,
                blocker: Some("commit 0 is missing"),
            },
            Case {
                name: "an unreadable commit",
                base: Some(5),
                commits: vec![(6, c(&["f6"], &[])), (7, None), (8, c(&[], &[]))],
                missing: &[],
                want: Some(6),
                blocker: Some("commit 7 cannot be read"),
            },
            Case {
                name: "compaction removes the missing file: readable again",
                base: Some(0),
                commits: vec![
                    (1, c(&["small1"], &[])),
                    (2, c(&["small2"], &[])),
                    (3, c(&["big"], &["small1", "small2"])),
                ],
                missing: &["small2"],
                want: Some(3),
                blocker: None,
            },
            Case {
                name: "a removed checkpoint file needs nothing",
                base: Some(5),
                commits: vec![(6, c(&[], &["from-checkpoint"]))],
                missing: &["from-checkpoint"],
                want: Some(6),
                blocker: None,
            },
            Case {
                name: "only the checkpoint: its version",
                base: Some(5),
                commits: vec![],
                missing: &[],
                want: Some(5),
                blocker: None,
            },
            Case {
                name: "missing files first, a gap later: the first reason is named",
                base: Some(5),
                commits: vec![(6, c(&["f6"], &[])), (8, c(&[], &[]))],
                missing: &["f6"],
                want: Some(5),
                blocker: Some("version 6 needs"),
            },
            Case {
                name: "commits at or before the base are ignored",
                base: Some(5),
                commits: vec![
                    (4, c(&["old"], &[])),
                    (5, c(&["f5"], &[])),
                    (6, c(&[], &[])),
                ],
                missing: &["old", "f5"],
                want: Some(6),
                blocker: None,
            },
        ];
        for case in cases {
            let commits: Vec<(Version, Result<&Commit, String>)> = case
                .commits
                .iter()
                .map(|(v, c)| (*v, c.as_ref().ok_or_else(|| "bad json".to_string())))
                .collect();
            let got = consistent_version(
                case.base,
                &commits,
                |f| !matches!(f, FileLocation::Relative(p) if case.missing.contains(&p.as_str())),
            );
            assert_eq!(got.version, case.want, "{}", case.name);
            match (case.blocker, &got.blocker) {
                (None, None) => {}
                (Some(want), Some(b)) => {
                    assert!(b.to_string().contains(want), "{}: {b}", case.name)
                }
                (want, got) => panic!("{}: blocker {got:?}, want {want:?}", case.name),
            }
        }
    }

    #[test]
    fn a_missing_deletion_vector_blocks_its_version() {
        let mut with_dv = commit(&["f1"], &[], 0);
        with_dv.adds[0].deletion_vector = Some(rel("deletion_vector_x.bin"));
        let commits = [(1, Ok(&with_dv))];
        let got = consistent_version(Some(0), &commits, |f| f != &rel("deletion_vector_x.bin"));
        assert_eq!(got.version, Some(0));
    }
}
