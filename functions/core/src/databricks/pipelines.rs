//! Pipelines API 2.0 (DLT / Lakeflow).
//!
//! - `GET /api/2.0/pipelines?max_results(≤100)&page_token` → `{statuses[], next_page_token?}`.
//! - `GET /api/2.0/pipelines/{id}` (full spec incl. `continuous`).
//! - `POST /api/2.0/pipelines/{id}/stop` → `{}` (no-op without an active update);
//!   `POST /api/2.0/pipelines/{id}/updates` → `{update_id}` starts an update.

use futures::{stream::BoxStream, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use super::{id_newtype, paginate, ApiError, Family, WorkspaceClient};

id_newtype!(
    /// A pipeline id.
    PipelineId(String)
);

/// Pipeline state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PipelineState {
    Idle,
    Running,
    Starting,
    Stopping,
    Deploying,
    Recovering,
    Resetting,
    Failed,
    Deleted,
    #[serde(other)]
    Other,
}

impl PipelineState {
    /// Processing data or about to.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            PipelineState::Running
                | PipelineState::Starting
                | PipelineState::Deploying
                | PipelineState::Recovering
                | PipelineState::Resetting
        )
    }
}

/// A pipeline as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pipeline {
    pub pipeline_id: PipelineId,
    #[serde(default)]
    pub name: String,
    pub state: PipelineState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    statuses: Vec<Pipeline>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl WorkspaceClient {
    /// Streams every pipeline.
    pub fn list_pipelines(&self) -> BoxStream<'static, Result<Pipeline, ApiError>> {
        let client = self.clone();
        paginate(move |token| {
            let client = client.clone();
            let mut query = vec![("max_results", "100".to_string())];
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            async move {
                let r: ListResponse = client
                    .get(Family::Pipelines, "/api/2.0/pipelines", &query)
                    .await?;
                Ok((r.statuses, r.next_page_token))
            }
        })
    }

    /// Collects [`WorkspaceClient::list_pipelines`].
    pub async fn all_pipelines(&self) -> Result<Vec<Pipeline>, ApiError> {
        self.list_pipelines().try_collect().await
    }

    /// One pipeline.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_pipeline(&self, id: &PipelineId) -> Result<Pipeline, ApiError> {
        self.get(
            Family::Pipelines,
            &format!("/api/2.0/pipelines/{}", super::segment(&id.0)),
            &[],
        )
        .await
    }

    /// Stops the active update, if any.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn stop_pipeline(&self, id: &PipelineId) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .post(
                Family::Pipelines,
                &format!("/api/2.0/pipelines/{id}/stop"),
                json!({}),
            )
            .await?;
        Ok(())
    }

    /// Starts an update (the pipeline runs again).
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn start_pipeline_update(&self, id: &PipelineId) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .post(
                Family::Pipelines,
                &format!("/api/2.0/pipelines/{id}/updates"),
                json!({}),
            )
            .await?;
        Ok(())
    }
}
