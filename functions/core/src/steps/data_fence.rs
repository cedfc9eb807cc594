//! `data-fence`: the data side of "never both active", O(1) in workspace size. The danger of
//! two active sites is two writers to the same data; pausing 10,000 job schedules takes minutes
//! at the primary's rate limits, denying replication into the replica takes two S3 calls per
//! bucket — in the healthy DR region, whatever state the primary is in.
//!
//! `set` (failover): on every replica bucket of the plan, a bucket-policy statement
//! (`Sid` [`FENCE_SID`]) denies `s3:ReplicateObject`, `s3:ReplicateDelete` and
//! `s3:ReplicateTags` to every principal, so nothing the old primary still writes overwrites
//! what DR now owns; confirmed by reading the policy back. When the source bucket answers,
//! its replication rules towards the replica are also disabled (recorded by rule id). The
//! prior policy and rule states are recorded in `runs/<id>/data-fence.json` before any write.
//!
//! `remove` (failback, or abort-and-restore): removes exactly that statement (other
//! statements, including ones added since, stay) and re-enables exactly the rules it disabled.
//! Both actions are idempotent.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{info, instrument, warn};

use crate::fence::data::{BucketFence, DataFenceRecord, SourceRules};
use crate::kernel::{Deps, StepError};
use crate::ledger::keys;
use crate::{
    aws::sdk_error_message,
    plan::Direction,
    run::{RunContext, RunId},
};

/// `Sid` of the deny statement Lifeboat owns in a replica's bucket policy.
pub const FENCE_SID: &str = "LifeboatDataFence";

/// The replication actions the statement denies.
pub const DENIED_ACTIONS: [&str; 3] = [
    "s3:ReplicateObject",
    "s3:ReplicateDelete",
    "s3:ReplicateTags",
];

/// How long a call to the source region may take: an unreachable region must not hold the
/// fence of the healthy side.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(3);

/// `set` or `remove`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFenceAction {
    /// Deny replication into the replicas.
    Set,
    /// Lift the deny (and re-enable the rules) that a run set.
    Remove,
}

/// Input: the state document and the action.
#[derive(Debug, Clone, Deserialize)]
pub struct DataFenceInput {
    /// The run.
    pub run: RunContext,
    /// What to do.
    pub action: DataFenceAction,
}

/// Output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFenceOutput {
    /// Action done.
    pub action: DataFenceAction,
    /// Every replica confirmed fenced (`set`) or unfenced (`remove`).
    pub confirmed: bool,
    /// Buckets handled.
    pub buckets: usize,
    /// Milliseconds from the step's start to confirmation.
    pub elapsed_ms: u64,
    /// A line for the report.
    pub summary: String,
}

/// Why a policy document cannot take the fence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bucket policy of {bucket} is not a JSON policy document: {reason}")]
pub struct PolicyError {
    bucket: String,
    reason: String,
}

fn statements(policy: &Value) -> Vec<Value> {
    match policy.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(single @ Value::Object(_)) => vec![single.clone()],
        _ => Vec::new(),
    }
}

fn parse_policy(bucket: &str, policy: Option<&str>) -> Result<Value, PolicyError> {
    match policy {
        None => Ok(json!({"Version": "2012-10-17", "Statement": []})),
        Some(text) => {
            let v: Value = serde_json::from_str(text).map_err(|e| PolicyError {
                bucket: bucket.to_string(),
                reason: e.to_string(),
            })?;
            if v.is_object() {
                Ok(v)
            } else {
                Err(PolicyError {
                    bucket: bucket.to_string(),
                    reason: "not an object".into(),
                })
            }
        }
    }
}

/// The deny statement for a replica bucket.
pub fn fence_statement(replica: &str) -> Value {
    json!({
        "Sid": FENCE_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": DENIED_ACTIONS,
        "Resource": format!("arn:aws:s3:::{replica}/*"),
    })
}

/// Pure: the replica's policy with the fence statement (replacing an older copy of it).
pub fn with_fence(replica: &str, policy: Option<&str>) -> Result<String, PolicyError> {
    let mut doc = parse_policy(replica, policy)?;
    let mut list: Vec<Value> = statements(&doc)
        .into_iter()
        .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(FENCE_SID))
        .collect();
    list.push(fence_statement(replica));
    doc["Statement"] = Value::Array(list);
    if doc.get("Version").is_none() {
        doc["Version"] = json!("2012-10-17");
    }
    Ok(doc.to_string())
}

/// Pure: the policy without the fence statement; `None` when nothing else is left (the bucket
/// then gets no policy, as before the fence).
pub fn without_fence(replica: &str, policy: Option<&str>) -> Result<Option<String>, PolicyError> {
    let Some(text) = policy else {
        return Ok(None);
    };
    let mut doc = parse_policy(replica, Some(text))?;
    let list: Vec<Value> = statements(&doc)
        .into_iter()
        .filter(|s| s.get("Sid").and_then(Value::as_str) != Some(FENCE_SID))
        .collect();
    if list.is_empty() {
        return Ok(None);
    }
    doc["Statement"] = Value::Array(list);
    Ok(Some(doc.to_string()))
}

/// Pure: does the policy hold the fence statement exactly as Lifeboat writes it?
pub fn holds_fence(replica: &str, policy: Option<&str>) -> bool {
    let Ok(doc) = parse_policy(replica, policy) else {
        return false;
    };
    let want = fence_statement(replica);
    statements(&doc).iter().any(|s| {
        s.get("Sid") == want.get("Sid")
            && s.get("Effect") == want.get("Effect")
            && s.get("Resource") == want.get("Resource")
            && DENIED_ACTIONS.iter().all(|a| match s.get("Action") {
                Some(Value::Array(list)) => list.iter().any(|x| x.as_str() == Some(a)),
                Some(Value::String(one)) => one == a,
                _ => false,
            })
    })
}

async fn get_policy(deps: &Deps, bucket: &str) -> Result<Option<String>, String> {
    match deps.aws.s3.get_bucket_policy().bucket(bucket).send().await {
        Ok(out) => Ok(out.policy().map(str::to_string)),
        Err(e) => {
            let code = e
                .as_service_error()
                .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s).map(str::to_string));
            if code.as_deref() == Some("NoSuchBucketPolicy") {
                Ok(None)
            } else {
                Err(sdk_error_message(&e))
            }
        }
    }
}

async fn put_policy(deps: &Deps, bucket: &str, policy: Option<String>) -> Result<(), String> {
    match policy {
        Some(p) => deps
            .aws
            .s3
            .put_bucket_policy()
            .bucket(bucket)
            .policy(p)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error_message(&e)),
        None => deps
            .aws
            .s3
            .delete_bucket_policy()
            .bucket(bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error_message(&e)),
    }
}

/// Flips the source's rules towards `replica`: disables the enabled ones (`enable = false`),
/// or re-enables the ids given.
async fn set_source_rules(
    deps: &Deps,
    source: &str,
    replica: &str,
    enable: Option<&[String]>,
) -> SourceRules {
    use aws_sdk_s3::types::ReplicationRuleStatus;
    let work = async {
        let out = deps
            .aws
            .s3
            .get_bucket_replication()
            .bucket(source)
            .send()
            .await
            .map_err(|e| sdk_error_message(&e))?;
        let Some(config) = out.replication_configuration() else {
            return Ok(SourceRules::NoneEnabled);
        };
        let replica_arn = format!("arn:aws:s3:::{replica}");
        let mut changed = Vec::new();
        let mut rules = Vec::new();
        for rule in config.rules() {
            let towards = rule
                .destination()
                .is_some_and(|d| d.bucket() == replica_arn);
            let id = rule.id().unwrap_or_default().to_string();
            let flip = match enable {
                None => towards && *rule.status() == ReplicationRuleStatus::Enabled,
                Some(ids) => towards && ids.contains(&id),
            };
            let mut rule = rule.clone();
            if flip {
                rule.status = if enable.is_some() {
                    ReplicationRuleStatus::Enabled
                } else {
                    ReplicationRuleStatus::Disabled
                };
                changed.push(id);
            }
            rules.push(rule);
        }
        if changed.is_empty() {
            return Ok(SourceRules::NoneEnabled);
        }
        let mut config = config.clone();
        config.rules = rules;
        deps.aws
            .s3
            .put_bucket_replication()
            .bucket(source)
            .replication_configuration(config)
            .send()
            .await
            .map_err(|e| sdk_error_message(&e))?;
        Ok(SourceRules::Disabled(changed))
    };
    match tokio::time::timeout(SOURCE_TIMEOUT, work).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => SourceRules::Unreachable(e),
        Err(_) => {
            SourceRules::Unreachable(format!("no answer within {} s", SOURCE_TIMEOUT.as_secs()))
        }
    }
}

/// The run whose data fence a `remove` lifts: a failback lifts its failover's; an aborted
/// failover its own.
fn fence_owner(run: &RunContext) -> &RunId {
    match (&run.restore_from, run.direction) {
        (Some(previous), Direction::Failback) => previous,
        _ => &run.run_id,
    }
}

/// Sets or lifts the data fence.
#[instrument(skip_all, fields(run = %input.run.run_id, action = ?input.action))]
pub async fn handle(deps: &Deps, input: DataFenceInput) -> Result<DataFenceOutput, StepError> {
    let started = std::time::Instant::now();
    match input.action {
        DataFenceAction::Set => set(deps, &input.run, started).await,
        DataFenceAction::Remove => remove(deps, &input.run, started).await,
    }
}

async fn set(
    deps: &Deps,
    run: &RunContext,
    started: std::time::Instant,
) -> Result<DataFenceOutput, StepError> {
    let key = keys::data_fence(&run.run_id);
    // A retried invocation keeps the prior policies recorded the first time.
    let mut record = match deps.ledger.get::<DataFenceRecord>(&key).await? {
        Some(v) => v.value,
        None => {
            let mut buckets = Vec::new();
            for pair in &run.plan.replication.buckets {
                let prior_policy =
                    get_policy(deps, &pair.replica)
                        .await
                        .map_err(|message| StepError::Aws {
                            service: "s3",
                            message: format!("bucket policy of {}: {message}", pair.replica),
                        })?;
                buckets.push(BucketFence {
                    name: pair.name.clone(),
                    replica: pair.replica.clone(),
                    source: pair.source.clone(),
                    prior_policy,
                    confirmed: false,
                    source_rules: SourceRules::NoneEnabled,
                    error: None,
                });
            }
            let record = DataFenceRecord {
                set_at: Utc::now(),
                confirmed_at: None,
                buckets,
                removed_at: None,
            };
            // Prior state first: nothing is written to a bucket before it is recorded.
            deps.ledger.put(&key, &record).await?;
            record
        }
    };
    let fences = record.buckets.iter().map(|b| async move {
        let mut b = b.clone();
        let current = get_policy(deps, &b.replica).await;
        let result = match current {
            Ok(current) if holds_fence(&b.replica, current.as_deref()) => Ok(()),
            Ok(current) => match with_fence(&b.replica, current.as_deref()) {
                Ok(p) => put_policy(deps, &b.replica, Some(p)).await,
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        b.error = result.err();
        // Confirm by reading back, not from the 204.
        b.confirmed = b.error.is_none()
            && get_policy(deps, &b.replica)
                .await
                .is_ok_and(|p| holds_fence(&b.replica, p.as_deref()));
        if !matches!(b.source_rules, SourceRules::Disabled(_)) {
            b.source_rules = set_source_rules(deps, &b.source, &b.replica, None).await;
        }
        b
    });
    record.buckets = futures::future::join_all(fences).await;
    let confirmed = record.confirmed();
    if confirmed && record.confirmed_at.is_none() {
        record.confirmed_at = Some(Utc::now());
    }
    deps.ledger.put(&key, &record).await?;
    for b in record.buckets.iter().filter(|b| !b.confirmed) {
        warn!(bucket = %b.replica, error = ?b.error, "data fence not confirmed");
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    info!(confirmed, elapsed_ms, "data fence set");
    Ok(DataFenceOutput {
        action: DataFenceAction::Set,
        confirmed,
        buckets: record.buckets.len(),
        elapsed_ms,
        summary: format!(
            "replication into {} replica bucket(s) denied{} in {elapsed_ms} ms",
            record.buckets.len(),
            if confirmed {
                ", confirmed"
            } else {
                ", NOT confirmed"
            }
        ),
    })
}

async fn remove(
    deps: &Deps,
    run: &RunContext,
    started: std::time::Instant,
) -> Result<DataFenceOutput, StepError> {
    let key = keys::data_fence(fence_owner(run));
    let Some(stored) = deps.ledger.get::<DataFenceRecord>(&key).await? else {
        return Ok(DataFenceOutput {
            action: DataFenceAction::Remove,
            confirmed: true,
            buckets: 0,
            elapsed_ms: 0,
            summary: "no data fence was set by the run; nothing to lift".into(),
        });
    };
    let mut record = stored.value;
    let mut all = true;
    for b in &mut record.buckets {
        let result = match get_policy(deps, &b.replica).await {
            Ok(current) if !holds_fence(&b.replica, current.as_deref()) => Ok(()),
            Ok(current) => match without_fence(&b.replica, current.as_deref()) {
                Ok(p) => put_policy(deps, &b.replica, p).await,
                Err(e) => Err(e.to_string()),
            },
            Err(e) => Err(e),
        };
        let lifted = result.is_ok()
            && get_policy(deps, &b.replica)
                .await
                .is_ok_and(|p| !holds_fence(&b.replica, p.as_deref()));
        b.error = result.err();
        if let SourceRules::Disabled(ids) = &b.source_rules {
            match set_source_rules(deps, &b.source, &b.replica, Some(ids)).await {
                SourceRules::Unreachable(e) => {
                    b.error = Some(format!("re-enabling replication rules: {e}"));
                    all = false;
                }
                _ => b.source_rules = SourceRules::NoneEnabled,
            }
        }
        b.confirmed = !lifted;
        all &= lifted;
    }
    if all {
        record.removed_at = Some(Utc::now());
    }
    deps.ledger.put(&key, &record).await?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(DataFenceOutput {
        action: DataFenceAction::Remove,
        confirmed: all,
        buckets: record.buckets.len(),
        elapsed_ms,
        summary: format!(
            "data fence lifted on {} replica bucket(s){}",
            record.buckets.len(),
            if all {
                ""
            } else {
                " — NOT everywhere, see the record"
            }
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fence_statement_is_added_once_and_removed_exactly() {
        let other = r#"{"Version":"2012-10-17","Statement":[{"Sid":"TLS","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::r/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
        let table: &[(&str, Option<&str>, usize)] = &[
            ("no policy before", None, 1),
            ("other statements kept", Some(other), 2),
        ];
        for (name, prior, statements_after) in table {
            let fenced = with_fence("r", *prior).unwrap();
            assert!(holds_fence("r", Some(&fenced)), "{name}");
            // Idempotent: fencing twice keeps one statement.
            let twice = with_fence("r", Some(&fenced)).unwrap();
            let doc: Value = serde_json::from_str(&twice).unwrap();
            assert_eq!(statements(&doc).len(), *statements_after, "{name}");
            let lifted = without_fence("r", Some(&twice)).unwrap();
            assert!(!holds_fence("r", lifted.as_deref()), "{name}");
            match prior {
                None => assert_eq!(lifted, None, "{name}: no policy again"),
                Some(p) => {
                    let a: Value = serde_json::from_str(p).unwrap();
                    let b: Value = serde_json::from_str(&lifted.unwrap()).unwrap();
                    assert_eq!(statements(&a), statements(&b), "{name}: prior restored");
                }
            }
        }
    }

    #[test]
    fn a_statement_for_another_bucket_or_with_fewer_actions_is_not_the_fence() {
        let fenced = with_fence("r", None).unwrap();
        assert!(!holds_fence("other", Some(&fenced)));
        let weaker = fenced.replace("\"s3:ReplicateDelete\",", "");
        assert!(!holds_fence("r", Some(&weaker)));
        assert!(!holds_fence("r", Some("not json")));
        assert!(with_fence("r", Some("[1]")).is_err());
    }
}
