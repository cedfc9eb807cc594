//! Repos API 2.0 (Git folders). A repo is also a `REPO` object of the workspace tree
//! ([`crate::workspace`]) at its path, and its id is that object's id.
//!
//! - `GET /api/2.0/repos?path_prefix=&next_page_token=` → `{repos?: [Repo], next_page_token?}`:
//!   20 per page (as the real service), ordered by path, the token absent on the last page.
//!   `path_prefix` is a plain string prefix (a leading `/Workspace` is dropped); absent, empty,
//!   `/` or `/Workspace` serve the repos under `/Repos`.
//! - `GET /api/2.0/repos/{id}` → `Repo`; a non-numeric id → 400 INVALID_PARAMETER_VALUE;
//!   unknown → 404 RESOURCE_DOES_NOT_EXIST `Repo <id> does not exist.`
//! - `PATCH /api/2.0/repos/{id} {branch} | {tag}` → `Repo` (the real service answers `{}`; the
//!   SDK ignores the body): checks out the branch (or detaches at the tag, dropping `branch`);
//!   `head_commit_id` becomes a deterministic function of (url, branch/tag). Neither or both →
//!   400 INVALID_PARAMETER_VALUE.
//! - `POST /api/2.0/repos {url, provider, path?}` → `Repo`: `provider` one of `gitHub`,
//!   `gitHubEnterprise`, `bitbucketCloud`, `bitbucketServer`, `gitLab`,
//!   `gitLabEnterpriseEdition`, `azureDevOpsServices`, `awsCodeCommit` (case-insensitive, else
//!   400 INVALID_PARAMETER_VALUE); `path` defaults to `/Repos/<caller>/<repo name from url>`;
//!   under `/Repos` it must be `/Repos/<folder>/<name>`; an existing path → 400
//!   RESOURCE_ALREADY_EXISTS; a repo inside a repo → 400 INVALID_PARAMETER_VALUE. Checks out
//!   `main`.
//! - `DELETE /api/2.0/repos/{id}` → `{}` (the Git folder and everything in it).
//!
//! `Repo` = `{id (int64), path, url, provider, branch?, head_commit_id}`.

use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::{page, parse_body, ApiError, ApiResult, Params};
use crate::scim::ADMIN_USER;
use crate::state::{Shared, World};
use crate::workspace::{normalize, ObjectType};

/// Repos per page of `GET /api/2.0/repos` ("each page containing twenty repos").
pub const PAGE_SIZE: usize = 20;

const PROVIDERS: &[&str] = &[
    "gitHub",
    "gitHubEnterprise",
    "bitbucketCloud",
    "bitbucketServer",
    "gitLab",
    "gitLabEnterpriseEdition",
    "azureDevOpsServices",
    "awsCodeCommit",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub id: i64,
    pub path: String,
    pub url: String,
    pub provider: String,
    /// None when detached at a tag.
    pub branch: Option<String>,
    pub head_commit_id: String,
}

impl Repo {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "path": self.path,
            "url": self.url,
            "provider": self.provider,
            "head_commit_id": self.head_commit_id,
        });
        if let Some(b) = &self.branch {
            v["branch"] = json!(b);
        }
        v
    }
}

/// A deterministic 40-hex-digit commit id for a (url, ref) pair: the same on every emulator.
pub fn commit_id(url: &str, reference: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.bytes().chain([0u8]).chain(reference.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = String::with_capacity(48);
    while out.len() < 40 {
        // splitmix64
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.push_str(&format!("{z:016x}"));
    }
    out.truncate(40);
    out
}

fn missing(id: &str) -> ApiError {
    ApiError::not_found(format!("Repo {id} does not exist."))
}

fn parse_id(id: &str) -> ApiResult<i64> {
    id.parse()
        .map_err(|_| ApiError::invalid(format!("Invalid repo id: {id}")))
}

impl World {
    /// Creates a Git folder at a canonical `path` (parents created as directories); returns its
    /// id. See the module doc for the rules.
    pub fn create_repo(
        &mut self,
        url: &str,
        provider: &str,
        path: &str,
        branch: &str,
        ts: i64,
    ) -> ApiResult<i64> {
        let mut p = path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if self
                .workspace
                .get(if p.is_empty() { "/" } else { p })
                .is_some_and(|o| o.object_type == ObjectType::Repo)
            {
                return Err(ApiError::invalid(format!(
                    "Cannot create a repo inside another repo ({p})"
                )));
            }
        }
        let id = self.workspace.insert(path, ObjectType::Repo, None, ts)?;
        self.repos.insert(
            id,
            Repo {
                id,
                path: path.to_string(),
                url: url.to_string(),
                provider: provider.to_string(),
                branch: Some(branch.to_string()),
                head_commit_id: commit_id(url, branch),
            },
        );
        Ok(id)
    }
}

/// `path_prefix` as a string prefix (see the module doc); None = the repos under `/Repos`.
fn prefix_of(raw: Option<&str>) -> String {
    let p = raw.unwrap_or("");
    let p = match p.strip_prefix("/Workspace") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => p,
    };
    if p.is_empty() || p == "/" {
        "/Repos/".to_string()
    } else {
        p.to_string()
    }
}

#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let prefix = prefix_of(p.get("path_prefix"));
    let after = match p.get("next_page_token") {
        None | Some("") => None,
        Some(t) => Some(page::decode(t, "rp")?),
    };
    let (w, _) = emu.world();
    let mut repos: Vec<&Repo> = w
        .repos
        .values()
        .filter(|r| r.path.starts_with(&prefix))
        .filter(|r| after.as_ref().is_none_or(|a| r.path.as_str() > a.as_str()))
        .collect();
    repos.sort_by(|a, b| a.path.cmp(&b.path));
    let more = repos.len() > PAGE_SIZE;
    repos.truncate(PAGE_SIZE);
    let mut out = json!({});
    if let (true, Some(last)) = (more, repos.last()) {
        out["next_page_token"] = json!(page::encode(&format!("rp:{}", last.path)));
    }
    if !repos.is_empty() {
        out["repos"] = repos.iter().map(|r| r.to_json()).collect();
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_repo(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let rid = parse_id(&id)?;
    let (w, _) = emu.world();
    let r = w.repos.get(&rid).ok_or_else(|| missing(&id))?;
    Ok(Json(r.to_json()))
}

#[derive(Deserialize)]
struct UpdateBody {
    branch: Option<String>,
    tag: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn update(
    State(emu): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let rid = parse_id(&id)?;
    let b: UpdateBody = parse_body(&body)?;
    let (branch, tag) = (
        b.branch.filter(|s| !s.is_empty()),
        b.tag.filter(|s| !s.is_empty()),
    );
    let (mut w, _) = emu.world();
    let r = w.repos.get_mut(&rid).ok_or_else(|| missing(&id))?;
    match (branch, tag) {
        (Some(br), None) => {
            r.head_commit_id = commit_id(&r.url, &br);
            r.branch = Some(br);
        }
        (None, Some(t)) => {
            r.head_commit_id = commit_id(&r.url, &format!("refs/tags/{t}"));
            r.branch = None;
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "Only one of branch and tag can be specified",
            ))
        }
        (None, None) => return Err(ApiError::invalid("Either branch or tag must be specified")),
    }
    Ok(Json(r.to_json()))
}

#[derive(Deserialize)]
struct CreateBody {
    url: Option<String>,
    provider: Option<String>,
    path: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create(
    State(emu): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: CreateBody = parse_body(&body)?;
    let url = b
        .url
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: url"))?;
    let raw_provider = b
        .provider
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: provider"))?;
    let provider = PROVIDERS
        .iter()
        .find(|p| p.eq_ignore_ascii_case(&raw_provider))
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "Invalid provider: {raw_provider}. Supported providers: {}",
                PROVIDERS.join(", ")
            ))
        })?;
    let path = match b.path.filter(|s| !s.is_empty()) {
        Some(p) => normalize(&p)?,
        None => {
            let user = match &caller {
                Caller::Pat => ADMIN_USER.to_string(),
                Caller::ServicePrincipal(id) => id.clone(),
            };
            let name = url
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("repo")
                .trim_end_matches(".git");
            format!("/Repos/{user}/{name}")
        }
    };
    if path.starts_with("/Repos/") && path.split('/').count() != 4 {
        return Err(ApiError::invalid(format!(
            "Invalid repo path {path}: a repo in /Repos must be at /Repos/{{folder}}/{{repo-name}}"
        )));
    }
    let (mut w, now) = emu.world();
    let id = w.create_repo(&url, provider, &path, "main", now.emu_ms)?;
    let r = w.repos.get(&id).map(Repo::to_json).unwrap_or_default();
    Ok(Json(r))
}

#[tracing::instrument(skip_all)]
async fn delete(State(emu): State<Shared>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let rid = parse_id(&id)?;
    let (mut w, _) = emu.world();
    let path = w.repos.get(&rid).ok_or_else(|| missing(&id))?.path.clone();
    let removed = w.workspace.delete(&path, true)?;
    for (oid, t) in removed {
        if t == ObjectType::Repo {
            w.repos.remove(&oid);
        }
    }
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/repos", get(list).post(create))
        .route(
            "/api/2.0/repos/{id}",
            get(get_repo).patch(update).delete(delete),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_ids_are_deterministic_hex() {
        let a = commit_id("https://github.com/acme/sales-pipelines", "main");
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(
            a,
            commit_id("https://github.com/acme/sales-pipelines", "main")
        );
        assert_ne!(
            a,
            commit_id("https://github.com/acme/sales-pipelines", "dev")
        );
        assert_ne!(a, commit_id("https://github.com/acme/ml-pipelines", "main"));
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_of(None), "/Repos/");
        assert_eq!(prefix_of(Some("/Workspace")), "/Repos/");
        assert_eq!(prefix_of(Some("/Workspace/Repos/sa")), "/Repos/sa");
        assert_eq!(prefix_of(Some("/Users/x")), "/Users/x");
    }
}
