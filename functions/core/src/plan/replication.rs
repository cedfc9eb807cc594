//! `[replication]`: what the RPO is measured on — replicated bucket pairs with a canary object,
//! and critical Delta tables read at the replica — and what a breach of the objective does. The
//! checks keep the canary writer inside its `_lifeboat/` prefix and make every table resolve to
//! two locations.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{invalid, PlanError};

/// Data freshness checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replication {
    /// Replicated bucket pairs with a canary object.
    #[serde(default)]
    pub buckets: Vec<BucketPair>,
    /// Critical Delta tables: RPO from the newest version a reader can load at the replica.
    #[serde(default)]
    pub tables: Vec<DeltaTable>,
    /// What to do when RPO exceeds its objective.
    #[serde(default)]
    pub on_breach: RpoBreachPolicy,
}

/// A source bucket and its replica in the DR region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketPair {
    /// Label in reports.
    pub name: String,
    /// Bucket in the primary region.
    pub source: String,
    /// Replica bucket in the DR region.
    pub replica: String,
    /// Canary object key, rewritten at the source on a schedule; its replica's age is the RPO.
    #[serde(default = "default_canary")]
    pub canary_key: String,
    /// Overrides `objectives.rpo_minutes`.
    #[serde(default)]
    pub rpo_minutes: Option<u32>,
}

/// Most Delta tables a plan may list: each costs a few S3 requests per check, and the
/// measurements travel in the state document (256 KB).
pub const MAX_DELTA_TABLES: usize = 100;

/// A critical Delta table: where it lives at the source and at the replica — either a bucket
/// pair's name and a path inside both buckets, or two `s3://` URIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaTable {
    /// Label in reports.
    pub name: String,
    /// A `replication.buckets` name: the table sits at `path` in both of its buckets.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Path of the table's root inside the pair's buckets (with `bucket`).
    #[serde(default)]
    pub path: Option<String>,
    /// `s3://bucket/path` at the primary (instead of `bucket` + `path`).
    #[serde(default)]
    pub source: Option<String>,
    /// `s3://bucket/path` at the DR site (instead of `bucket` + `path`).
    #[serde(default)]
    pub replica: Option<String>,
    /// Overrides `objectives.rpo_minutes`.
    #[serde(default)]
    pub rpo_minutes: Option<u32>,
}

/// A table's two locations, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLocations {
    /// At the primary.
    pub source: crate::delta::s3::TableLocation,
    /// At the DR site.
    pub replica: crate::delta::s3::TableLocation,
    /// The bucket pair whose canary tells idle tables from stale ones, if any.
    pub bucket_pair: Option<String>,
}

impl DeltaTable {
    /// Resolves the locations; the error names the field at fault (relative to the table).
    pub fn locations(
        &self,
        buckets: &[BucketPair],
    ) -> Result<TableLocations, (&'static str, String)> {
        use crate::delta::s3::TableLocation;
        match (&self.bucket, &self.path, &self.source, &self.replica) {
            (Some(bucket), Some(path), None, None) => {
                let pair = buckets.iter().find(|b| &b.name == bucket).ok_or((
                    "bucket",
                    format!("{bucket:?} is not a replication.buckets name"),
                ))?;
                let at = |b: &str| TableLocation::parse(&format!("s3://{b}/{path}"));
                if path.is_empty() || path.starts_with('/') {
                    return Err((
                        "path",
                        format!("{path:?} is not a table path inside the bucket"),
                    ));
                }
                Ok(TableLocations {
                    source: at(&pair.source).map_err(|e| ("path", e))?,
                    replica: at(&pair.replica).map_err(|e| ("path", e))?,
                    bucket_pair: Some(pair.name.clone()),
                })
            }
            (None, None, Some(source), Some(replica)) => {
                let source = TableLocation::parse(source).map_err(|e| ("source", e))?;
                let replica = TableLocation::parse(replica).map_err(|e| ("replica", e))?;
                if source == replica {
                    return Err(("replica", "is the source location".into()));
                }
                let bucket_pair = buckets
                    .iter()
                    .find(|b| b.replica == replica.bucket && b.source == source.bucket)
                    .map(|b| b.name.clone());
                Ok(TableLocations {
                    source,
                    replica,
                    bucket_pair,
                })
            }
            (Some(_), None, ..) => Err(("path", "is required with `bucket`".into())),
            (None, Some(_), ..) => Err(("bucket", "is required with `path`".into())),
            (None, None, Some(_), None) => Err(("replica", "is required with `source`".into())),
            (None, None, None, Some(_)) => Err(("source", "is required with `replica`".into())),
            (None, None, None, None) => Err((
                "bucket",
                "a table needs `bucket` + `path`, or `source` + `replica` (s3:// URIs)".into(),
            )),
            _ => Err((
                "source",
                "give either `bucket` + `path` or `source` + `replica`, not both".into(),
            )),
        }
    }
}

fn default_canary() -> String {
    "_lifeboat/canary.json".to_string()
}

/// RPO breach policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RpoBreachPolicy {
    /// Stop the failover before the target is activated.
    #[default]
    Stop,
    /// Record the breach and continue (the approver accepted the data loss up front).
    Continue,
    /// Ask for a second approval with the measured RPO before activating the target.
    Ask,
}

impl Replication {
    /// Checks the bucket pairs (distinct names, a replica that is not the source, the canary
    /// under `_lifeboat/`) and the tables (at most [`MAX_DELTA_TABLES`], named once, two
    /// locations each).
    pub(super) fn validate(&self) -> Result<(), PlanError> {
        let mut names = BTreeSet::new();
        for (i, b) in self.buckets.iter().enumerate() {
            if !names.insert(&b.name) {
                return Err(invalid(
                    format!("replication.buckets[{i}].name"),
                    "duplicate name",
                ));
            }
            if b.source == b.replica {
                return Err(invalid(
                    format!("replication.buckets[{i}].replica"),
                    "equals the source bucket",
                ));
            }
            // The canary writer may write under `_lifeboat/` only (its IAM grant): a key
            // elsewhere could overwrite data.
            if !b.canary_key.starts_with("_lifeboat/")
                || b.canary_key.contains("..")
                || b.canary_key.chars().any(char::is_control)
            {
                return Err(invalid(
                    format!("replication.buckets[{i}].canary_key"),
                    "must be under `_lifeboat/` (the canary writer may write nowhere else)",
                ));
            }
        }
        if self.tables.len() > MAX_DELTA_TABLES {
            return Err(invalid(
                format!("replication.tables[{MAX_DELTA_TABLES}]"),
                format!("at most {MAX_DELTA_TABLES} tables"),
            ));
        }
        let mut table_names = BTreeSet::new();
        for (i, t) in self.tables.iter().enumerate() {
            if t.name.trim().is_empty() || !table_names.insert(&t.name) {
                return Err(invalid(
                    format!("replication.tables[{i}].name"),
                    "empty or duplicate name",
                ));
            }
            t.locations(&self.buckets)
                .map_err(|(field, why)| invalid(format!("replication.tables[{i}].{field}"), why))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::test_support::EXAMPLE;
    use crate::plan::{Plan, PlanError};

    #[test]
    fn canary_keys_stay_under_the_lifeboat_prefix() {
        let plan = |key: &str| {
            Plan::from_toml(
                &EXAMPLE.replace(
                    "replica = \"sales-lake-usw2\"",
                    &format!("replica = \"sales-lake-usw2\"\ncanary_key = \"{key}\""),
                ),
                "p",
            )
        };
        assert!(plan("_lifeboat/canary.json").is_ok());
        for bad in [
            "data/part-0001.parquet",
            "_lifeboat/../data/x",
            "canary.json",
        ] {
            match plan(bad) {
                Err(PlanError::Invalid { key, .. }) => {
                    assert_eq!(key, "replication.buckets[0].canary_key", "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn delta_tables_name_the_field_at_fault() {
        let with = |table: &str| {
            Plan::from_toml(
                &EXAMPLE.replace(
                    "[shutdown]",
                    &format!("[[replication.tables]]\n{table}\n\n[shutdown]"),
                ),
                "p",
            )
        };
        let ok = with("name = \"t\"\nbucket = \"sales-lake\"\npath = \"delta/t\"").expect("valid");
        let t = ok.replication.tables.last().expect("added");
        let at = t.locations(&ok.replication.buckets).expect("resolves");
        assert_eq!(at.source.uri(), "s3://sales-lake-use1/delta/t");
        assert_eq!(at.replica.uri(), "s3://sales-lake-usw2/delta/t");
        assert_eq!(at.bucket_pair.as_deref(), Some("sales-lake"));
        let cases: &[(&str, &str, &str)] = &[
            (
                "name = \"t\"\nbucket = \"nope\"\npath = \"t\"",
                ".bucket",
                "not a replication.buckets name",
            ),
            ("name = \"t\"\nbucket = \"sales-lake\"", ".path", "required"),
            ("name = \"t\"\npath = \"t\"", ".bucket", "required"),
            (
                "name = \"t\"\nsource = \"s3://a-b-c/t\"",
                ".replica",
                "required",
            ),
            (
                "name = \"t\"\nsource = \"https://a-b-c/t\"\nreplica = \"s3://d-e-f/t\"",
                ".source",
                "not an s3:// URI",
            ),
            (
                "name = \"t\"\nsource = \"s3://a-b-c/t\"\nreplica = \"s3://a-b-c/t\"",
                ".replica",
                "is the source",
            ),
            (
                "name = \"t\"\nbucket = \"sales-lake\"\npath = \"../x\"",
                ".path",
                "not a table path",
            ),
            (
                "name = \"t\"\nbucket = \"sales-lake\"\npath = \"t/_delta_log\"",
                ".path",
                "names the log",
            ),
            (
                "name = \"t\"\nbucket = \"sales-lake\"\npath = \"t\"\nsource = \"s3://a-b-c/t\"",
                ".source",
                "not both",
            ),
            ("name = \"t\"", ".bucket", "needs"),
            (
                "name = \"orders\"\nbucket = \"sales-lake\"\npath = \"t\"",
                ".name",
                "duplicate",
            ),
        ];
        for (table, field, why) in cases {
            match with(table) {
                Err(PlanError::Invalid { key, reason }) => {
                    assert!(
                        key.starts_with("replication.tables[") && key.ends_with(field),
                        "{table}: {key}"
                    );
                    assert!(reason.contains(why), "{table}: {reason}");
                }
                other => panic!("{table}: {other:?}"),
            }
        }
        // A typo in a table's keys is refused by name.
        match with("name = \"t\"\nbuckett = \"sales-lake\"") {
            Err(e) => assert!(e.to_string().contains("buckett"), "{e}"),
            Ok(_) => panic!("a typo was accepted"),
        }
    }
}
