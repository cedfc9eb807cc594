//! `StepError`: why a step failed, named so the state machine can `Catch` or `Retry` on it.

use crate::{aws::sdk_error_message, databricks::ApiError, ledger::LedgerError};

/// Why a step failed. The variant name is the error name Step Functions sees (`errorType`),
/// so the state machine can `Catch` or `Retry` on it.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Another run holds the plan's lock.
    #[error("another run holds the lock of plan {plan}: {holder}")]
    LockHeld {
        /// Plan name.
        plan: String,
        /// Run id holding it.
        holder: String,
    },
    /// The input document is not what the step expects.
    #[error("invalid step input: {0}")]
    InvalidInput(String),
    /// A precondition of the step does not hold (e.g. failback without a failover).
    #[error("refused: {0}")]
    Refused(String),
    /// The ledger could not be read or written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A Databricks call failed for good.
    #[error("databricks: {0}")]
    Databricks(#[from] ApiError),
    /// An AWS call failed.
    #[error("aws {service}: {message}")]
    Aws {
        /// Service name.
        service: &'static str,
        /// Secret-free message.
        message: String,
    },
    /// A secret could not be resolved (its id is named, never its value).
    #[error("secret {secret_id}: {message}")]
    Secret {
        /// Secrets Manager id.
        secret_id: String,
        /// What went wrong.
        message: String,
    },
    /// The Managed DR failover this run asked for ended `FAILOVER_FAILED`.
    #[error("managed DR: {0}")]
    FailoverGroupFailed(String),
}

impl StepError {
    /// The error name Step Functions matches on.
    pub fn name(&self) -> &'static str {
        match self {
            StepError::LockHeld { .. } => "LockHeld",
            StepError::InvalidInput(_) => "InvalidInput",
            StepError::Refused(_) => "Refused",
            StepError::Ledger(_) => "LedgerUnavailable",
            StepError::Databricks(e) if e.kind.is_transient() => "WorkspaceUnavailable",
            StepError::Databricks(_) => "WorkspaceError",
            StepError::Aws { .. } => "AwsError",
            StepError::Secret { .. } => "SecretUnavailable",
            StepError::FailoverGroupFailed(_) => "FailoverGroupFailed",
        }
    }

    /// Wraps an AWS SDK error.
    pub fn aws<E, R>(service: &'static str, e: &aws_sdk_s3::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error,
    {
        StepError::Aws {
            service,
            message: sdk_error_message(e),
        }
    }
}
