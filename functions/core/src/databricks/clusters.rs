//! Clusters API 2.1.
//!
//! - `GET /api/2.1/clusters/list?page_size&page_token&filter_by.cluster_sources=..&filter_by.cluster_states=..`
//!   → `{clusters[], next_page_token?}` (includes clusters terminated in the last 30 days).
//! - `GET /api/2.1/clusters/get?cluster_id=` (missing → 400 "does not exist" → NotFound).
//! - `POST /api/2.1/clusters/start {cluster_id}`, `POST /api/2.1/clusters/delete {cluster_id}`
//!   (terminate; asynchronous; a no-op on a terminated cluster). Never `permanent-delete`.

use futures::{stream::BoxStream, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::instrument;

use super::{id_newtype, paginate, ApiError, Family, Tags, WorkspaceClient};

id_newtype!(
    /// A cluster id such as `0923-164208-meows279`.
    ClusterId(String)
);

/// Cluster lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterState {
    Pending,
    Running,
    Restarting,
    Resizing,
    Terminating,
    Terminated,
    Error,
    Unknown,
    /// A state this client does not know yet.
    #[serde(other)]
    Other,
}

impl ClusterState {
    /// Whether the cluster is (or is about to be) consuming compute.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            ClusterState::Pending
                | ClusterState::Running
                | ClusterState::Restarting
                | ClusterState::Resizing
        )
    }
}

/// Who created the cluster. Job, pipeline and SQL clusters belong to their services and are
/// fenced through jobs, pipelines and warehouses, not directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterSource {
    Ui,
    Api,
    Job,
    Pipeline,
    PipelineMaintenance,
    Sql,
    Models,
    #[serde(other)]
    Other,
}

impl ClusterSource {
    /// The wire value, for query parameters.
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterSource::Ui => "UI",
            ClusterSource::Api => "API",
            ClusterSource::Job => "JOB",
            ClusterSource::Pipeline => "PIPELINE",
            ClusterSource::PipelineMaintenance => "PIPELINE_MAINTENANCE",
            ClusterSource::Sql => "SQL",
            ClusterSource::Models => "MODELS",
            ClusterSource::Other => "OTHER",
        }
    }

    /// All-purpose clusters are the ones users start themselves.
    pub fn is_all_purpose(self) -> bool {
        matches!(self, ClusterSource::Ui | ClusterSource::Api)
    }
}

/// A cluster as `clusters/list` and `clusters/get` return it (fields Lifeboat reads; the rest
/// is kept in `extra`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub cluster_id: ClusterId,
    #[serde(default)]
    pub cluster_name: String,
    pub state: ClusterState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_source: Option<ClusterSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_pool_id: Option<String>,
    #[serde(default)]
    pub custom_tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_message: Option<String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Server-side filters of `clusters/list`.
#[derive(Debug, Clone, Default)]
pub struct ClusterFilter {
    /// Only these sources (empty: all).
    pub sources: Vec<ClusterSource>,
    /// Only these states (empty: all).
    pub states: Vec<ClusterState>,
    /// Page size (the API caps it at 100).
    pub page_size: Option<u32>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    clusters: Vec<Cluster>,
    #[serde(default)]
    next_page_token: Option<String>,
}

fn state_str(state: ClusterState) -> String {
    serde_json::to_value(state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl WorkspaceClient {
    /// Streams every cluster matching the filter, page by page.
    pub fn list_clusters(
        &self,
        filter: ClusterFilter,
    ) -> BoxStream<'static, Result<Cluster, ApiError>> {
        let client = self.clone();
        paginate(move |token| {
            let client = client.clone();
            let mut query: Vec<(&str, String)> = Vec::new();
            query.push(("page_size", filter.page_size.unwrap_or(100).to_string()));
            for s in &filter.sources {
                query.push(("filter_by.cluster_sources", s.as_str().to_string()));
            }
            for s in &filter.states {
                query.push(("filter_by.cluster_states", state_str(*s)));
            }
            if let Some(t) = token {
                query.push(("page_token", t));
            }
            async move {
                let r: ListResponse = client
                    .get(Family::Clusters, "/api/2.1/clusters/list", &query)
                    .await?;
                Ok((r.clusters, r.next_page_token))
            }
        })
    }

    /// Collects [`WorkspaceClient::list_clusters`].
    pub async fn all_clusters(&self, filter: ClusterFilter) -> Result<Vec<Cluster>, ApiError> {
        self.list_clusters(filter).try_collect().await
    }

    /// One cluster.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn get_cluster(&self, id: &ClusterId) -> Result<Cluster, ApiError> {
        self.get(
            Family::Clusters,
            "/api/2.1/clusters/get",
            &[("cluster_id", id.0.clone())],
        )
        .await
    }

    /// Starts a terminated cluster (asynchronous: it goes PENDING, then RUNNING).
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn start_cluster(&self, id: &ClusterId) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .post(
                Family::Clusters,
                "/api/2.1/clusters/start",
                json!({"cluster_id": id}),
            )
            .await?;
        Ok(())
    }

    /// Terminates a cluster (asynchronous: TERMINATING, then TERMINATED). Keeps its config.
    #[instrument(skip(self), fields(host = %self.host()))]
    pub async fn terminate_cluster(&self, id: &ClusterId) -> Result<(), ApiError> {
        let _: serde_json::Value = self
            .post(
                Family::Clusters,
                "/api/2.1/clusters/delete",
                json!({"cluster_id": id}),
            )
            .await?;
        Ok(())
    }
}
