//! `data-sources-check`: the seed's failover step 4 — are the critical external sources
//! (databases, object stores, APIs) reachable from where the target will run?

use std::time::{Duration, Instant};

use serde::Deserialize;
use tracing::instrument;

use crate::kernel::{Deps, StepError};
use crate::sources::{DataSourcesOutput, SourceStatus};
use crate::{plan::DataSourceKind, run::RunContext};

/// Input: the state document.
#[derive(Debug, Clone, Deserialize)]
pub struct DataSourcesInput {
    /// The run.
    pub run: RunContext,
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Probes every declared source concurrently.
#[instrument(skip_all, fields(run = %input.run.run_id))]
pub async fn handle(deps: &Deps, input: DataSourcesInput) -> Result<DataSourcesOutput, StepError> {
    let http = crate::http::client_builder()
        .timeout(PROBE_TIMEOUT)
        .build()
        .map_err(|e| StepError::InvalidInput(e.to_string()))?;
    let probes = input.run.plan.data_sources.iter().map(|source| {
        let http = http.clone();
        async move {
            let started = Instant::now();
            let result: Result<String, String> = match source.kind {
                DataSourceKind::Tcp => {
                    match tokio::time::timeout(
                        PROBE_TIMEOUT,
                        tokio::net::TcpStream::connect(&source.target),
                    )
                    .await
                    {
                        Ok(Ok(_)) => Ok("connected".into()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("timed out".into()),
                    }
                }
                DataSourceKind::Http => match http.get(&source.target).send().await {
                    Ok(r) if r.status().is_success() || r.status().is_redirection() => {
                        Ok(format!("HTTP {}", r.status().as_u16()))
                    }
                    Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                    Err(e) => Err(if e.is_timeout() {
                        "timed out".into()
                    } else {
                        "connection failed".into()
                    }),
                },
                DataSourceKind::S3 => match deps
                    .aws
                    .s3
                    .head_bucket()
                    .bucket(&source.target)
                    .send()
                    .await
                {
                    Ok(_) => Ok("bucket reachable".into()),
                    Err(e) => Err(crate::aws::sdk_error_message(&e)),
                },
            };
            let latency_ms = started.elapsed().as_millis() as u64;
            let (reachable, detail) = match result {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            SourceStatus {
                name: source.name.clone(),
                reachable,
                critical: source.critical,
                latency_ms,
                detail,
            }
        }
    });
    let sources = futures::future::join_all(probes).await;
    Ok(DataSourcesOutput {
        all_critical_ok: sources.iter().all(|s| s.reachable || !s.critical),
        sources,
    })
}
