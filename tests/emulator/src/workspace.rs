//! Workspace API 2.0: the workspace file tree (notebooks, directories, files, Git folders).
//!
//! - `GET /api/2.0/workspace/list?path=` → `{objects?: [ObjectInfo]}`: the direct children of
//!   a directory or Git folder, ordered by path (the key is absent when it has none); on a
//!   notebook or file, that one object. Missing path → 404 RESOURCE_DOES_NOT_EXIST
//!   `Path (<path>) doesn't exist.`
//! - `GET /api/2.0/workspace/get-status?path=` → one `ObjectInfo`; missing → the same 404.
//! - `POST /api/2.0/workspace/mkdirs {path}` → `{}`: creates the directory and its missing
//!   parents (`mkdir -p`); a notebook or file at the path or at one of its prefixes → 400
//!   RESOURCE_ALREADY_EXISTS.
//! - `POST /api/2.0/workspace/delete {path, recursive?}` → `{}`: missing → 404
//!   RESOURCE_DOES_NOT_EXIST; a non-empty directory (or Git folder) without `recursive: true`
//!   → 400 DIRECTORY_NOT_EMPTY `Folder (<path>) is not empty`; deleting a Git folder deletes
//!   the repo too. `/` cannot be deleted (400 INVALID_PARAMETER_VALUE).
//!
//! `ObjectInfo` = `{object_type: NOTEBOOK|DIRECTORY|REPO|FILE, path, object_id (int64),
//! resource_id (the id as a string), language? (notebooks: PYTHON|SQL|SCALA|R), created_at?,
//! modified_at? (notebooks and files, epoch ms)}`.
//!
//! Paths: must start with `/` (else 400 INVALID_PARAMETER_VALUE `Path (<p>) doesn't start with
//! '/'`); a leading `/Workspace` mount prefix is accepted and dropped, repeated and trailing
//! slashes are collapsed. The root `/` is a directory with object id 0.
//!
//! Storage: an arena of nodes, each holding only its own name segment, its parent and its
//! children (indices sorted by name), so a path costs one short string; an object's id is the
//! tree's id base plus its arena index (no id → path map). A fixture's job notebooks are first
//! recorded compactly — one `(folder, &'static [task names])` entry per job — and created in
//! the arena on the first access to the tree (every public method takes `&mut self` and
//! materializes first), so building the `large` fixture (~30,000 objects) costs
//! almost nothing and object ids stay deterministic.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::{parse_body, ApiError, ApiResult, Params};
use crate::state::Shared;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ObjectType {
    Notebook,
    Directory,
    Repo,
    File,
}

impl ObjectType {
    /// Whether the object can hold children (directories and Git folders).
    pub fn is_container(self) -> bool {
        matches!(self, ObjectType::Directory | ObjectType::Repo)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Language {
    Python,
    Sql,
    Scala,
    R,
}

/// One object of the tree, as read (its path is given alongside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsObject {
    pub object_type: ObjectType,
    pub object_id: i64,
    /// Notebooks only.
    pub language: Option<Language>,
    /// Emulated epoch ms (reported for notebooks and files).
    pub created_at: i64,
    pub modified_at: i64,
}

#[derive(Debug, Clone)]
struct Node {
    /// The last path segment ("" for the root).
    name: Box<str>,
    parent: u32,
    object_type: ObjectType,
    language: Option<Language>,
    live: bool,
    created_at: i64,
    modified_at: i64,
    /// Indices of the live children, sorted by name.
    children: Vec<u32>,
}

/// Objects recorded by [`WorkspaceTree::defer_many`] / [`WorkspaceTree::defer`], not yet in
/// the arena: `names` in folder `path`, or (no names) the object at `path`.
#[derive(Debug, Clone)]
struct Deferred {
    path: String,
    names: &'static [&'static str],
    object_type: ObjectType,
    language: Option<Language>,
    ts: i64,
}

/// The workspace tree of one emulator.
#[derive(Debug, Clone)]
pub struct WorkspaceTree {
    nodes: Vec<Node>,
    /// Object id of node `i > 0` is `id_base + i`; the root's is 0.
    id_base: i64,
    live: usize,
    deferred: Vec<Deferred>,
}

impl Default for WorkspaceTree {
    fn default() -> Self {
        Self::new(0)
    }
}

/// The canonical form of a request path (see the module doc).
pub fn normalize(path: &str) -> ApiResult<String> {
    if !path.starts_with('/') {
        return Err(ApiError::invalid(format!(
            "Path ({path}) doesn't start with '/'"
        )));
    }
    let mut out = String::with_capacity(path.len());
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(seg);
    }
    let out = match out.strip_prefix("/Workspace") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_string(),
        _ => out,
    };
    Ok(if out.is_empty() { "/".to_string() } else { out })
}

pub fn missing_path(path: &str) -> ApiError {
    ApiError::not_found(format!("Path ({path}) doesn't exist."))
}

fn exists_error(path: &str) -> ApiError {
    ApiError::already_exists(format!("Path ({path}) already exists."))
}

/// The segments of a canonical path (none for `/`).
fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

impl WorkspaceTree {
    /// A tree holding only the root directory (object id 0); the object ids of new objects are
    /// `id_base + 1`, `id_base + 2`, ... (fixtures give each role its own range).
    pub fn new(id_base: i64) -> Self {
        WorkspaceTree {
            nodes: vec![Node {
                name: "".into(),
                parent: 0,
                object_type: ObjectType::Directory,
                language: None,
                live: true,
                created_at: 0,
                modified_at: 0,
                children: Vec::new(),
            }],
            id_base,
            live: 1,
            deferred: Vec::new(),
        }
    }

    /// Records objects `names` in the canonical folder `dir` (created if missing, like
    /// [`WorkspaceTree::insert_many`]), created on the first access to the tree.
    pub fn defer_many(
        &mut self,
        dir: String,
        names: &'static [&'static str],
        object_type: ObjectType,
        language: Option<Language>,
        ts: i64,
    ) {
        if !names.is_empty() {
            self.deferred.push(Deferred {
                path: dir,
                names,
                object_type,
                language,
                ts,
            });
        }
    }

    /// Records one object at a canonical `path` (like [`WorkspaceTree::insert`]), created on
    /// the first access to the tree.
    pub fn defer(
        &mut self,
        path: String,
        object_type: ObjectType,
        language: Option<Language>,
        ts: i64,
    ) {
        self.deferred.push(Deferred {
            path,
            names: &[],
            object_type,
            language,
            ts,
        });
    }

    /// Creates the deferred objects, in the order recorded (errors, which fixtures cannot
    /// cause, are skipped).
    fn flush(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let deferred = std::mem::take(&mut self.deferred);
        let n: usize = deferred.iter().map(|d| d.names.len() + 1).sum();
        self.nodes.reserve(n);
        for d in deferred {
            let _ = if d.names.is_empty() {
                self.insert(&d.path, d.object_type, d.language, d.ts)
                    .map(|_| ())
            } else {
                self.insert_many(
                    &d.path,
                    d.names.iter().copied(),
                    d.object_type,
                    d.language,
                    d.ts,
                )
            };
        }
    }

    /// Number of objects (the root included).
    pub fn len(&mut self) -> usize {
        self.flush();
        self.live
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    fn view(&self, i: u32) -> WsObject {
        let n = &self.nodes[i as usize];
        WsObject {
            object_type: n.object_type,
            object_id: if i == 0 {
                0
            } else {
                self.id_base + i64::from(i)
            },
            language: n.language,
            created_at: n.created_at,
            modified_at: n.modified_at,
        }
    }

    fn path_of(&self, mut i: u32) -> String {
        if i == 0 {
            return "/".to_string();
        }
        let mut parts = Vec::new();
        while i != 0 {
            let n = &self.nodes[i as usize];
            parts.push(&*n.name);
            i = n.parent;
        }
        let mut out = String::new();
        for p in parts.iter().rev() {
            out.push('/');
            out.push_str(p);
        }
        out
    }

    /// The position of child `name` in `dir`'s sorted children (Ok) or where it would go.
    fn find_child(&self, dir: u32, name: &str) -> Result<usize, usize> {
        self.nodes[dir as usize]
            .children
            .binary_search_by(|c| (*self.nodes[*c as usize].name).cmp(name))
    }

    fn lookup(&self, path: &str) -> Option<u32> {
        let mut cur = 0u32;
        for seg in segments(path) {
            let pos = self.find_child(cur, seg).ok()?;
            cur = self.nodes[cur as usize].children[pos];
        }
        Some(cur)
    }

    pub fn get(&mut self, path: &str) -> Option<WsObject> {
        self.flush();
        self.lookup(path).map(|i| self.view(i))
    }

    /// The path and object with this object id.
    pub fn by_id(&mut self, id: i64) -> Option<(String, WsObject)> {
        self.flush();
        let i = if id == 0 {
            0
        } else {
            u32::try_from(id.checked_sub(self.id_base)?)
                .ok()
                .filter(|i| *i > 0)?
        };
        let n = self.nodes.get(i as usize)?;
        n.live.then(|| (self.path_of(i), self.view(i)))
    }

    /// Adds child `name` to container `dir`; fails when it exists.
    fn add_child(
        &mut self,
        dir: u32,
        name: &str,
        object_type: ObjectType,
        language: Option<Language>,
        ts: i64,
    ) -> ApiResult<u32> {
        let pos = match self.find_child(dir, name) {
            Ok(_) => {
                let p = self.path_of(dir);
                let sep = if p == "/" { "" } else { "/" };
                return Err(exists_error(&format!("{p}{sep}{name}")));
            }
            Err(pos) => pos,
        };
        let i = u32::try_from(self.nodes.len())
            .map_err(|_| ApiError::invalid("The workspace is full"))?;
        self.nodes.push(Node {
            name: name.into(),
            parent: dir,
            object_type,
            language,
            live: true,
            created_at: ts,
            modified_at: ts,
            children: Vec::new(),
        });
        self.nodes[dir as usize].children.insert(pos, i);
        self.live += 1;
        Ok(i)
    }

    /// `mkdir -p` of a canonical path; returns the directory's (or Git folder's) index.
    fn ensure_dir(&mut self, path: &str, ts: i64) -> ApiResult<u32> {
        let mut cur = 0u32;
        for seg in segments(path) {
            if !self.nodes[cur as usize].object_type.is_container() {
                return Err(ApiError::already_exists(format!(
                    "Path ({}) already exists and is not a directory.",
                    self.path_of(cur)
                )));
            }
            cur = match self.find_child(cur, seg) {
                Ok(pos) => self.nodes[cur as usize].children[pos],
                Err(_) => self.add_child(cur, seg, ObjectType::Directory, None, ts)?,
            };
        }
        if self.nodes[cur as usize].object_type.is_container() {
            Ok(cur)
        } else {
            Err(exists_error(path))
        }
    }

    /// Inserts an object at a canonical `path`, creating missing parents as directories.
    /// Fails when the path exists or a prefix is not a container. Returns its object id.
    pub fn insert(
        &mut self,
        path: &str,
        object_type: ObjectType,
        language: Option<Language>,
        ts: i64,
    ) -> ApiResult<i64> {
        self.flush();
        let (parent, name) = match path.rfind('/') {
            Some(i) if i + 1 < path.len() => (&path[..i], &path[i + 1..]),
            _ => return Err(exists_error(path)),
        };
        let dir = self.ensure_dir(parent, ts)?;
        let i = self.add_child(dir, name, object_type, language, ts)?;
        Ok(self.view(i).object_id)
    }

    /// Inserts objects named `names` into the directory at `dir` (created if missing) — the
    /// cheap path for a fixture's notebooks.
    pub fn insert_many<'a>(
        &mut self,
        dir: &str,
        names: impl IntoIterator<Item = &'a str>,
        object_type: ObjectType,
        language: Option<Language>,
        ts: i64,
    ) -> ApiResult<()> {
        self.flush();
        let d = self.ensure_dir(dir, ts)?;
        for name in names {
            self.add_child(d, name, object_type, language, ts)?;
        }
        Ok(())
    }

    /// `mkdir -p` of a canonical path: no-op when it is already a directory or Git folder.
    pub fn mkdirs(&mut self, path: &str, ts: i64) -> ApiResult<()> {
        self.flush();
        self.ensure_dir(path, ts).map(|_| ())
    }

    /// The direct children of a canonical directory path, ordered by path.
    pub fn children(&mut self, dir: &str) -> Vec<(String, WsObject)> {
        self.flush();
        let Some(d) = self.lookup(dir) else {
            return Vec::new();
        };
        let base = if d == 0 {
            String::new()
        } else {
            self.path_of(d)
        };
        self.nodes[d as usize]
            .children
            .iter()
            .map(|c| {
                let name = &self.nodes[*c as usize].name;
                (format!("{base}/{name}"), self.view(*c))
            })
            .collect()
    }

    /// Every object, ordered by path (depth first).
    pub fn iter(&mut self) -> Vec<(String, WsObject)> {
        self.flush();
        let mut out = Vec::with_capacity(self.live);
        let mut stack = vec![0u32];
        while let Some(i) = stack.pop() {
            out.push((self.path_of(i), self.view(i)));
            stack.extend(self.nodes[i as usize].children.iter().rev());
        }
        out
    }

    /// Deletes a canonical path (see the module doc); returns the removed objects' (id, type).
    pub fn delete(&mut self, path: &str, recursive: bool) -> ApiResult<Vec<(i64, ObjectType)>> {
        self.flush();
        let i = self.lookup(path).ok_or_else(|| missing_path(path))?;
        if i == 0 {
            return Err(ApiError::invalid("Cannot delete the root folder"));
        }
        if !self.nodes[i as usize].children.is_empty() && !recursive {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "DIRECTORY_NOT_EMPTY",
                format!("Folder ({path}) is not empty"),
            ));
        }
        let parent = self.nodes[i as usize].parent;
        self.nodes[parent as usize].children.retain(|c| *c != i);
        let mut removed = Vec::new();
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            let v = self.view(j);
            let n = &mut self.nodes[j as usize];
            n.live = false;
            stack.append(&mut n.children);
            removed.push((v.object_id, v.object_type));
            self.live -= 1;
        }
        Ok(removed)
    }

    /// The wire form of one object.
    pub fn object_json(path: &str, o: &WsObject) -> Value {
        let mut v = json!({
            "object_type": o.object_type,
            "path": path,
            "object_id": o.object_id,
            "resource_id": o.object_id.to_string(),
        });
        if let Some(l) = o.language {
            v["language"] = json!(l);
        }
        if matches!(o.object_type, ObjectType::Notebook | ObjectType::File) {
            v["created_at"] = json!(o.created_at);
            v["modified_at"] = json!(o.modified_at);
        }
        v
    }
}

#[tracing::instrument(skip_all)]
async fn list(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let raw = p.required("path")?;
    let path = normalize(raw)?;
    let (mut w, _) = emu.world();
    let obj = w.workspace.get(&path).ok_or_else(|| missing_path(raw))?;
    let objects: Vec<Value> = if obj.object_type.is_container() {
        w.workspace
            .children(&path)
            .iter()
            .map(|(k, o)| WorkspaceTree::object_json(k, o))
            .collect()
    } else {
        vec![WorkspaceTree::object_json(&path, &obj)]
    };
    let mut out = json!({});
    if !objects.is_empty() {
        out["objects"] = Value::Array(objects);
    }
    Ok(Json(out))
}

#[tracing::instrument(skip_all)]
async fn get_status(State(emu): State<Shared>, Query(p): Query<Params>) -> ApiResult<Json<Value>> {
    let raw = p.required("path")?;
    let path = normalize(raw)?;
    let (mut w, _) = emu.world();
    let obj = w.workspace.get(&path).ok_or_else(|| missing_path(raw))?;
    Ok(Json(WorkspaceTree::object_json(&path, &obj)))
}

#[derive(Deserialize)]
struct MkdirsBody {
    path: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn mkdirs(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: MkdirsBody = parse_body(&body)?;
    let raw = b
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: path"))?;
    let path = normalize(&raw)?;
    let (mut w, now) = emu.world();
    w.workspace.mkdirs(&path, now.emu_ms)?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DeleteBody {
    path: Option<String>,
    #[serde(default)]
    recursive: bool,
}

#[tracing::instrument(skip_all)]
async fn delete(State(emu): State<Shared>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: DeleteBody = parse_body(&body)?;
    let raw = b
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::invalid("Missing required field: path"))?;
    let path = normalize(&raw)?;
    let (mut w, _) = emu.world();
    if w.workspace.get(&path).is_none() {
        return Err(missing_path(&raw));
    }
    let removed = w.workspace.delete(&path, b.recursive)?;
    for (id, t) in removed {
        if t == ObjectType::Repo {
            w.repos.remove(&id);
        }
    }
    Ok(Json(json!({})))
}

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/2.0/workspace/list", get(list))
        .route("/api/2.0/workspace/get-status", get(get_status))
        .route("/api/2.0/workspace/mkdirs", post(mkdirs))
        .route("/api/2.0/workspace/delete", post(delete))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> WorkspaceTree {
        let mut t = WorkspaceTree::new(1000);
        for p in [
            "/Repos/a/pipelines/job_1/main",
            "/Repos/a/pipelines/job-1/main",
            "/Repos/a/pipelines/job.1/x",
            "/Repos/a/pipelines/job0/x",
            "/Shared/n",
        ] {
            t.insert(p, ObjectType::Notebook, Some(Language::Python), 5)
                .unwrap();
        }
        t
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("/Workspace").unwrap(), "/");
        assert_eq!(normalize("/Workspace/Shared//x/").unwrap(), "/Shared/x");
        assert_eq!(normalize("/WorkspaceX/a").unwrap(), "/WorkspaceX/a");
        assert_eq!(
            normalize("a").unwrap_err().code,
            json!("INVALID_PARAMETER_VALUE")
        );
    }

    #[test]
    fn children_are_direct_and_ordered() {
        let mut t = tree();
        let names: Vec<String> = t
            .children("/Repos/a/pipelines")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            names,
            [
                "/Repos/a/pipelines/job-1",
                "/Repos/a/pipelines/job.1",
                "/Repos/a/pipelines/job0",
                "/Repos/a/pipelines/job_1",
            ]
        );
        let root: Vec<String> = t.children("/").into_iter().map(|(k, _)| k).collect();
        assert_eq!(root, ["/Repos", "/Shared"]);
        assert!(t.children("/Shared/n").is_empty());
        let all: Vec<String> = t.iter().into_iter().map(|(k, _)| k).collect();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all[0], "/");
        assert_eq!(all.len(), t.len());
        assert_eq!(all.len(), 14);
        assert!(sorted.contains(&"/Repos/a/pipelines/job0/x".to_string()));
    }

    #[test]
    fn ids_index_and_delete() {
        let mut t = tree();
        let (p, o) = t.by_id(0).unwrap();
        assert_eq!((p.as_str(), o.object_type), ("/", ObjectType::Directory));
        let n = t.get("/Shared/n").unwrap();
        assert!(n.object_id > 1000);
        assert_eq!(t.by_id(n.object_id).unwrap().0, "/Shared/n");
        assert!(t.by_id(1000).is_none() && t.by_id(-5).is_none() && t.by_id(1 << 40).is_none());
        let e = t.delete("/Repos/a", false).unwrap_err();
        assert_eq!(e.code, json!("DIRECTORY_NOT_EMPTY"));
        let removed = t.delete("/Repos/a/pipelines/job-1", true).unwrap();
        assert_eq!(removed.len(), 2);
        assert!(t.get("/Repos/a/pipelines/job_1/main").is_some());
        assert!(t.get("/Repos/a/pipelines/job-1").is_none());
        t.delete("/Shared/n", false).unwrap();
        assert!(t.by_id(n.object_id).is_none());
        assert_eq!(
            t.delete("/", true).unwrap_err().code,
            json!("INVALID_PARAMETER_VALUE")
        );
        let e = t.mkdirs("/Repos/a/pipelines/job0/x/y", 1).unwrap_err();
        assert_eq!(e.code, json!("RESOURCE_ALREADY_EXISTS"));
        assert!(t.insert("/Shared", ObjectType::Directory, None, 1).is_err());
        t.mkdirs("/Users/me/deep/er", 1).unwrap();
        t.mkdirs("/Users/me", 1).unwrap();
        assert_eq!(
            t.get("/Users/me").unwrap().object_type,
            ObjectType::Directory
        );
        t.insert_many("/Users/me/nb", ["a", "b"], ObjectType::Notebook, None, 1)
            .unwrap();
        assert_eq!(t.children("/Users/me/nb").len(), 2);
    }

    #[test]
    fn deferred_objects_appear_on_first_access_with_stable_ids() {
        let build = || {
            let mut t = WorkspaceTree::new(10);
            t.mkdirs("/Repos/a", 1).unwrap();
            t.defer_many(
                "/Repos/a/j1".into(),
                &["x", "y"],
                ObjectType::Notebook,
                None,
                1,
            );
            t.defer_many("/Repos/a/j0".into(), &["z"], ObjectType::Notebook, None, 1);
            t
        };
        let mut t = build();
        t.defer("/Repos/b/n".into(), ObjectType::Notebook, None, 1);
        assert_eq!(t.get("/Repos/a/j1/y").unwrap().object_id, 15);
        assert_eq!(t.get("/Repos/b/n").unwrap().object_id, 19);
        assert_eq!(t.len(), 3 + 5 + 2);
        let mut u = build();
        let id = u
            .insert("/Shared/later", ObjectType::File, None, 2)
            .unwrap();
        assert_eq!(id, 19, "deferred objects come first");
        assert_eq!(
            u.children("/Repos/a")
                .into_iter()
                .map(|(k, _)| k)
                .collect::<Vec<_>>(),
            ["/Repos/a/j0", "/Repos/a/j1"]
        );
    }
}
