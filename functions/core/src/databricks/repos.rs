//! Repos API 2.0: `GET /api/2.0/repos?path_prefix=&next_page_token=` →
//! `{repos?: [{id, path, url, provider, branch?, head_commit_id?}], next_page_token?}`
//! (the token absent on the last page).

use futures::{stream::BoxStream, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::{paginate, ApiError, Family, WorkspaceClient};

/// A Git folder (repo) in the workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Repo {
    pub id: i64,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub branch: Option<String>,
    #[serde(default)]
    pub head_commit_id: Option<String>,
}

#[derive(Deserialize)]
struct ListResponse {
    #[serde(default)]
    repos: Vec<Repo>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl WorkspaceClient {
    /// Streams every repo.
    pub fn list_repos(&self) -> BoxStream<'static, Result<Repo, ApiError>> {
        let client = self.clone();
        paginate(move |token| {
            let client = client.clone();
            let query: Vec<(&str, String)> =
                token.map(|t| ("next_page_token", t)).into_iter().collect();
            async move {
                let r: ListResponse = client.get(Family::Other, "/api/2.0/repos", &query).await?;
                Ok((r.repos, r.next_page_token))
            }
        })
    }

    /// Collects [`WorkspaceClient::list_repos`].
    pub async fn all_repos(&self) -> Result<Vec<Repo>, ApiError> {
        self.list_repos().try_collect().await
    }
}
