//! `canary-writer` (EventBridge Scheduler, every minute): writes the canary document
//! (`{"written_at": ...}`) to every source bucket of the plan, at the plan's `canary_key`.
//! Replication carries it to the replica, where `replication-check` reads its age as the RPO —
//! without this writer every replica's canary only ages, and every RPO gate reads a breach.
//!
//! One bucket failing (its region down, a denied write) does not stop the others; the output
//! names each failure, and the step fails only when no canary could be written.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use tracing::{instrument, warn};

use crate::kernel::{Deps, StepError};
use crate::replication::Canary;

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CanaryOutput {
    /// `bucket/key` written.
    pub written: Vec<String>,
    /// `(bucket, error)` not written.
    pub failed: Vec<(String, String)>,
}

/// Writes every source bucket's canary.
#[instrument(skip_all)]
pub async fn handle(deps: &Deps) -> Result<CanaryOutput, StepError> {
    let plan = crate::kernel::load_plan(deps).await?;
    let body = serde_json::to_vec(&Canary {
        written_at: Utc::now(),
    })
    .map_err(|e| StepError::InvalidInput(e.to_string()))?;
    let mut out = CanaryOutput::default();
    for b in &plan.replication.buckets {
        match deps
            .aws
            .s3
            .put_object()
            .bucket(&b.source)
            .key(&b.canary_key)
            .content_type("application/json")
            .body(body.clone().into())
            .send()
            .await
        {
            Ok(_) => out.written.push(format!("{}/{}", b.source, b.canary_key)),
            Err(e) => {
                let msg = crate::aws::sdk_error_message(&e);
                warn!(bucket = %b.source, error = %msg, "canary not written");
                out.failed.push((b.source.clone(), msg));
            }
        }
    }
    if out.written.is_empty() && !out.failed.is_empty() {
        return Err(StepError::Aws {
            service: "s3",
            message: format!("no canary could be written: {:?}", out.failed),
        });
    }
    Ok(out)
}
