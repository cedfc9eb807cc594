//! The Lambda runtime glue every `functions/*/src/main.rs` calls: JSON logs without secrets,
//! dependencies built once per container, the invocation deadline passed to the step, and
//! errors whose `errorType` is the step error's name (so the state machine can catch it).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};

use crate::{
    dispatch::{self, Entry},
    kernel::{Deps, StepError},
};

impl From<StepError> for Diagnostic {
    fn from(e: StepError) -> Self {
        Diagnostic {
            error_type: e.name().to_string(),
            error_message: e.to_string(),
        }
    }
}

/// Initialises JSON logging at [`log_level`].
pub fn init_logging() {
    let level = log_level(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(level)
        .with_current_span(false)
        .without_time()
        .try_init();
}

/// Pure: the log level — Lambda's advanced logging control (`AWS_LAMBDA_LOG_LEVEL`: TRACE …
/// FATAL) first, then `RUST_LOG` when it is a plain level, else `info`. Per-module directives
/// (`RUST_LOG=lifeboat_core=debug`) are not read: their parser links a regex engine into every
/// function.
pub fn log_level(
    lambda: Option<&str>,
    rust_log: Option<&str>,
) -> tracing::level_filters::LevelFilter {
    use tracing::level_filters::LevelFilter;
    let parse = |s: &str| match s.trim().to_ascii_lowercase().as_str() {
        "fatal" => Some(LevelFilter::ERROR),
        other => other.parse::<LevelFilter>().ok(),
    };
    lambda
        .and_then(parse)
        .or_else(|| rust_log.and_then(parse))
        .unwrap_or(LevelFilter::INFO)
}

fn deadline_instant(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

/// Serves one step as a Lambda function. Takes the step's [`Entry`] (not a [`dispatch::Step`])
/// so the binary links that step alone. Which entry a binary names is checked by
/// `tests/infra` (the deployed function name cannot tell: CloudFormation generates it, e.g.
/// `lifeboat-NotifyFunction-1A2B3C4D5E6F`).
pub async fn run(entry: Entry) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let mut deps = Deps::from_env()
        .await
        .map_err(|e| lambda_runtime::Error::from(e.to_string()))?;
    // `entry` is a constant of the binary's `main`: the other binaries drop this branch and
    // the Health SDK with it.
    if entry.step == dispatch::Step::HealthIngest {
        deps = deps.with_health_api_from_env().await;
    }
    let deps = &deps;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let deadline = deadline_instant(event.context.deadline);
            dispatch::invoke_entry(entry, deps, event.payload, deadline)
                .await
                .map_err(Diagnostic::from)
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use tracing::level_filters::LevelFilter;

    #[test]
    fn log_levels() {
        let cases = [
            (None, None, LevelFilter::INFO),
            (Some("DEBUG"), Some("error"), LevelFilter::DEBUG),
            (Some("FATAL"), None, LevelFilter::ERROR),
            (Some("loud"), Some("warn"), LevelFilter::WARN),
            (None, Some("lifeboat_core=debug"), LevelFilter::INFO),
            (None, Some(" trace "), LevelFilter::TRACE),
            (None, Some("off"), LevelFilter::OFF),
        ];
        for (lambda, rust_log, want) in cases {
            assert_eq!(
                super::log_level(lambda, rust_log),
                want,
                "{lambda:?} {rust_log:?}"
            );
        }
    }
}
