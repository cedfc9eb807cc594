//! The Lambda runtime glue every `functions/*/src/main.rs` calls: JSON logs without secrets,
//! dependencies built once per container, the invocation deadline passed to the step, and
//! errors whose `errorType` is the step error's name (so the state machine can catch it).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

use crate::steps::{self, Deps, Entry, StepError};

impl From<StepError> for Diagnostic {
    fn from(e: StepError) -> Self {
        Diagnostic {
            error_type: e.name().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// Initialises JSON logging (level from `RUST_LOG`, default `info`).
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .try_init();
}

fn deadline_instant(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Serves one step as a Lambda function. Takes the step's [`Entry`] (not a [`steps::Step`])
/// so the binary links that step alone. Which entry a binary names is checked by
/// `tests/infra` (the deployed function name cannot tell: CloudFormation generates it, e.g.
/// `lifeboat-NotifyFunction-1A2B3C4D5E6F`).
pub async fn run(entry: Entry) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let deps = Deps::from_env()
        .await
        .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            steps::invoke_entry(entry, deps, event.payload, deadline)
                .await
                .map_err(Diagnostic::from)
        },
    ))
    .await
}
