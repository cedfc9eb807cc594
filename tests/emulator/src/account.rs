//! The account-level API of Databricks Managed Disaster Recovery: failover groups and stable
//! URLs (`/api/disaster-recovery/v1/...`), served by its own listener because in Databricks it
//! lives on the account host (`https://accounts.cloud.databricks.com`), not on a workspace.
//!
//! Wire format (as the official SDK's `disasterrecovery` service encodes it):
//! - Resource names are `accounts/{account_id}/failover-groups/{id}` and
//!   `accounts/{account_id}/stable-urls/{id}`; paths are `/api/disaster-recovery/v1/{name}`.
//! - `GET .../failover-groups[?page_size&page_token]` → `{failover_groups, next_page_token?}`;
//!   `GET .../failover-groups/{id}` → a FailoverGroup: `name, regions, workspace_sets,
//!   effective_primary_region, state, etag, replication_point, create_time, update_time,
//!   has_replication_point_blocking_errors`. Timestamps are RFC 3339 (`...Z`).
//! - `POST .../failover-groups?failover_group_id=ID` creates one (`initial_primary_region`,
//!   `regions`, `workspace_sets`); its regions are derived from the workspaces' own.
//! - `POST .../failover-groups/{id}/failover` `{target_primary_region, etag?, failover_type}` →
//!   the group, now `FAILING_OVER`. `failover_type` is `FORCED` or `FAILOVER_TYPE_UNSPECIFIED`
//!   (absent means the latter: a planned failover, which needs the current primary region).
//! - `GET .../stable-urls[/{id}]`, `POST .../stable-urls?stable_url_id=ID`
//!   (`initial_workspace_id`) → StableUrl: `name, url, stable_workspace_id,
//!   effective_workspace_id, failover_group_name`.
//! - Errors: `{"error_code", "message"}`: 404 `NOT_FOUND`; 400 `INVALID_PARAMETER_VALUE` (bad
//!   region, type, body); 400 `FAILED_PRECONDITION` (the target is already the primary, or the
//!   group is not `ACTIVE`/`FAILOVER_FAILED`); 409 `ABORTED` (stale etag); 409 `ALREADY_EXISTS`;
//!   401 `UNAUTHENTICATED` (no or unknown bearer token).
//! - Auth: OAuth M2M only (the account API takes no PATs): `GET /.well-known/databricks-config`
//!   → `{oidc_endpoint: "<url>/oidc/accounts/{account_id}", account_id, cloud}`, the discovery
//!   document under it, and `POST /oidc/accounts/{account_id}/v1/token` (client credentials).
//!
//! Behaviour a caller relies on:
//! - A failover takes `failover_duration` (real time); then the group is `ACTIVE` with the
//!   target as `effective_primary_region`, a new etag, and every stable URL of its workspace
//!   sets pointing at the set's workspace in that region. A planned failover away from a region
//!   that is down ends `FAILOVER_FAILED` instead (primary unchanged), as does one armed with
//!   `fail-next`. `FORCED` proceeds whatever the old primary's state.
//! - `replication_point` is now minus the replication lag while every region of the group is
//!   up, and stays where it was when one went down.
//!
//! Admin API (no auth) under `/__emulator/account/`: `POST regions/{region}/outage {down}`,
//! `POST failover-groups/{id}/fail-next`, `POST failover-groups/{id}/touch` (a concurrent
//! change: new etag), `POST failover-groups/{id}/stale-next` (the same change, landing between
//! the caller's read and its next failover request), `POST failover-groups/{id}/lose-answer-next`
//! (the next failover is carried out but its connection drops before the answer), `POST outage {enabled}` (every API connection dropped),
//! `POST workspaces {workspace_id, region}` (a workspace the account knows),
//! `GET requests` (`{requests: [{method, path, query, status, body}]}`), `POST requests/clear`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower::ServiceExt;

use crate::state::lock;

/// One workspace the account knows, with the region it runs in.
#[derive(Debug, Clone)]
pub struct AccountWorkspace {
    /// Numeric workspace id, as a string (the API's type).
    pub workspace_id: String,
    /// AWS region, e.g. `us-east-1`.
    pub region: String,
}

/// How to start the account API.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// The account id in every resource name.
    pub account_id: String,
    /// The account admin service principal (OAuth M2M).
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Workspaces that failover groups and stable URLs may name.
    pub workspaces: Vec<AccountWorkspace>,
    /// Real time a failover spends in `FAILING_OVER`.
    pub failover_duration: Duration,
    /// How far `replication_point` trails now while replication flows.
    pub replication_lag: Duration,
}

impl AccountConfig {
    /// An account with its admin credentials; no workspaces, 2 s failovers, 30 s lag.
    pub fn new(
        account_id: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<String>,
    ) -> Self {
        Self {
            account_id: account_id.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            workspaces: Vec::new(),
            failover_duration: Duration::from_secs(2),
            replication_lag: Duration::from_secs(30),
        }
    }

    /// Adds a workspace.
    pub fn workspace(mut self, workspace_id: impl Into<String>, region: impl Into<String>) -> Self {
        self.workspaces.push(AccountWorkspace {
            workspace_id: workspace_id.into(),
            region: region.into(),
        });
        self
    }

    /// Sets how long a failover takes.
    pub fn failover_duration(mut self, d: Duration) -> Self {
        self.failover_duration = d;
        self
    }
}

/// Aggregate state of a failover group (the API's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GroupState {
    Active,
    InitialReplication,
    FailingOver,
    FailoverFailed,
}

/// A set of workspaces replicating to each other.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceSet {
    pub name: String,
    pub workspace_ids: Vec<String>,
    #[serde(default)]
    pub replicate_workspace_assets: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stable_url_names: Vec<String>,
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    regions: Vec<String>,
    workspace_sets: Vec<WorkspaceSet>,
    effective_primary_region: String,
    state: GroupState,
    etag: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    /// A failover in flight: (target region, due, succeeds).
    failing_over: Option<(String, Instant, bool)>,
    fail_next: bool,
    /// The next failover request finds the group changed since it was read (a new etag).
    stale_next: bool,
    /// The next failover request is carried out, but its answer is lost (the connection drops).
    lose_answer_next: bool,
}

#[derive(Debug, Clone)]
struct StableUrl {
    name: String,
    url: String,
    stable_workspace_id: String,
    effective_workspace_id: String,
    failover_group_name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct RequestRecord {
    method: String,
    path: String,
    query: String,
    status: u16,
    body: Value,
}

#[derive(Debug, Default)]
struct Account {
    workspaces: Vec<AccountWorkspace>,
    groups: BTreeMap<String, Group>,
    stable_urls: BTreeMap<String, StableUrl>,
    down_regions: HashSet<String>,
    /// When replication stopped (a region of the group went down).
    replication_stopped_at: Option<DateTime<Utc>>,
    tokens: HashMap<String, Instant>,
    requests: Vec<RequestRecord>,
    next_etag: u64,
}

struct AccountEmulator {
    config: AccountConfig,
    url: String,
    state: Mutex<Account>,
    outage: AtomicBool,
}

type Shared = Arc<AccountEmulator>;

/// A running account API; dropping it does not stop it, [`RunningAccount::shutdown`] does.
pub struct RunningAccount {
    url: String,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl RunningAccount {
    /// `http://127.0.0.1:<port>`: the account host.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops the listener.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
    }
}

/// Starts the account API on 127.0.0.1 (`port` 0 = ephemeral).
pub async fn serve_account(config: AccountConfig, port: u16) -> std::io::Result<RunningAccount> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let emu: Shared = Arc::new(AccountEmulator {
        config: config.clone(),
        url: url.clone(),
        state: Mutex::new(Account {
            workspaces: config.workspaces.clone(),
            ..Account::default()
        }),
        outage: AtomicBool::new(false),
    });
    let router = router(emu.clone());
    let (tx, mut rx) = watch::channel(false);
    let server = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = rx.changed() => break,
                a = listener.accept() => a,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (emu, router, mut sd) = (emu.clone(), router.clone(), rx.clone());
            tokio::spawn(async move {
                let kill = Arc::new(Notify::new());
                let k = kill.clone();
                let svc = hyper::service::service_fn(move |req| {
                    gate(emu.clone(), router.clone(), k.clone(), req)
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    _ = kill.notified() => {}
                    _ = sd.changed() => {}
                }
            });
        }
    });
    Ok(RunningAccount {
        url,
        shutdown: tx,
        server,
    })
}

/// Logs `/api/` requests, drops connections during an outage, checks the bearer token.
async fn gate(
    emu: Shared,
    router: Router,
    kill: Arc<Notify>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let req = req.map(Body::new);
    let path = req.uri().path().to_string();
    if path.starts_with("/__emulator/") {
        return router.oneshot(req).await;
    }
    if emu.outage.load(Ordering::SeqCst) {
        kill.notify_one();
        std::future::pending::<()>().await;
    }
    if !path.starts_with("/api/") {
        return router.oneshot(req).await;
    }
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let body_json: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let authorised = crate::auth::bearer(&parts.headers)
        .map(|t| {
            lock(&emu.state)
                .tokens
                .get(t)
                .is_some_and(|exp| *exp > Instant::now())
        })
        .unwrap_or(false);
    let response = if authorised {
        let req = Request::from_parts(parts, Body::from(bytes));
        let response = router.oneshot(req).await?;
        if response.headers().contains_key(LOSE_ANSWER) {
            lock(&emu.state).requests.push(RequestRecord {
                method: method.clone(),
                path: path.clone(),
                query: query.clone(),
                status: 0,
                body: body_json.clone(),
            });
            kill.notify_one();
            std::future::pending::<()>().await;
        }
        response
    } else {
        AccountError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Credential was not sent or was of an unsupported type for this API.",
        )
        .into_response()
    };
    lock(&emu.state).requests.push(RequestRecord {
        method,
        path,
        query,
        status: response.status().as_u16(),
        body: body_json,
    });
    Ok(response)
}

/// An error in the API's wire format.
#[derive(Debug)]
struct AccountError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl AccountError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{what} does not exist."),
        )
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }
    fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", message)
    }
}

impl IntoResponse for AccountError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error_code": self.code, "message": self.message})),
        )
            .into_response()
    }
}

type AccountResult<T> = Result<T, AccountError>;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl AccountEmulator {
    fn check_account(&self, account_id: &str) -> AccountResult<()> {
        if account_id == self.config.account_id {
            Ok(())
        } else {
            Err(AccountError::new(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "The caller is not an admin of this account.",
            ))
        }
    }
}

impl Account {
    fn region_of(&self, workspace_id: &str) -> Option<String> {
        self.workspaces
            .iter()
            .find(|w| w.workspace_id == workspace_id)
            .map(|w| w.region.clone())
    }

    fn new_etag(&mut self) -> String {
        self.next_etag += 1;
        format!(
            "{:016x}",
            self.next_etag.wrapping_mul(0x9e37_79b9_7f4a_7c15)
        )
    }

    /// Applies failovers that are due (lazily, on every request).
    fn advance(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.failing_over.as_ref().is_some_and(|(_, at, _)| *at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let etag = self.new_etag();
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            let Some((target, _, succeeds)) = group.failing_over.take() else {
                continue;
            };
            group.etag = etag;
            group.update_time = Utc::now();
            if !succeeds {
                group.state = GroupState::FailoverFailed;
                continue;
            }
            group.state = GroupState::Active;
            group.effective_primary_region = target.clone();
            let group_name = group.name.clone();
            let sets = group.workspace_sets.clone();
            for set in sets {
                let Some(primary) = set
                    .workspace_ids
                    .iter()
                    .find(|w| self.region_of(w).as_deref() == Some(target.as_str()))
                else {
                    continue;
                };
                for url_name in &set.stable_url_names {
                    if let Some(u) = self.stable_urls.get_mut(url_name) {
                        if u.failover_group_name.as_deref() == Some(group_name.as_str()) {
                            u.effective_workspace_id = primary.clone();
                        }
                    }
                }
            }
        }
    }

    fn group_json(&self, g: &Group, lag: Duration) -> Value {
        let now = Utc::now();
        let lag = chrono::Duration::from_std(lag).unwrap_or_default();
        let point = self.replication_stopped_at.unwrap_or(now) - lag;
        let mut v = json!({
            "name": g.name,
            "regions": g.regions,
            "workspace_sets": g.workspace_sets,
            "effective_primary_region": g.effective_primary_region,
            "state": g.state,
            "etag": g.etag,
            "create_time": rfc3339(g.create_time),
            "update_time": rfc3339(g.update_time),
            "has_replication_point_blocking_errors": self.replication_stopped_at.is_some(),
        });
        if g.state != GroupState::InitialReplication {
            v["replication_point"] = json!(rfc3339(point));
        }
        v
    }
}

fn stable_url_json(u: &StableUrl) -> Value {
    let mut v = json!({
        "name": u.name,
        "url": u.url,
        "stable_workspace_id": u.stable_workspace_id,
        "effective_workspace_id": u.effective_workspace_id,
    });
    if let Some(g) = &u.failover_group_name {
        v["failover_group_name"] = json!(g);
    }
    v
}

#[derive(Deserialize)]
struct PageQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

/// Pages a list: `page_token` is the offset (opaque to callers), 50 per page by default.
fn page<T: Clone>(items: Vec<T>, q: &PageQuery) -> AccountResult<(Vec<T>, Option<String>)> {
    let start = match q.page_token.as_deref() {
        None | Some("") => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| AccountError::invalid("page_token is not valid."))?,
    };
    let size = q.page_size.unwrap_or(50).clamp(1, 1000);
    let end = (start + size).min(items.len());
    let slice = items.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    let next = (end < items.len()).then(|| end.to_string());
    Ok((slice, next))
}

#[tracing::instrument(skip_all)]
async fn list_groups(
    State(emu): State<Shared>,
    Path(account_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AccountResult<Json<Value>> {
    emu.check_account(&account_id)?;
    let mut st = lock(&emu.state);
    st.advance();
    let all: Vec<Value> = st
        .groups
        .values()
        .map(|g| st.group_json(g, emu.config.replication_lag))
        .collect();
    let (items, next) = page(all, &q)?;
    let mut body = json!({ "failover_groups": items });
    if let Some(n) = next {
        body["next_page_token"] = json!(n);
    }
    Ok(Json(body))
}

fn group_key(account_id: &str, id: &str) -> String {
    format!("accounts/{account_id}/failover-groups/{id}")
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_group(
    State(emu): State<Shared>,
    Path((account_id, id)): Path<(String, String)>,
) -> AccountResult<Json<Value>> {
    emu.check_account(&account_id)?;
    let key = group_key(&account_id, &id);
    let mut st = lock(&emu.state);
    st.advance();
    let g = st
        .groups
        .get(&key)
        .ok_or_else(|| AccountError::not_found(&format!("Failover group {id}")))?;
    Ok(Json(st.group_json(g, emu.config.replication_lag)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    initial_primary_region: String,
    regions: Vec<String>,
    workspace_sets: Vec<WorkspaceSet>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    unity_catalog_assets: Option<Value>,
}

#[derive(Deserialize)]
struct CreateQuery {
    failover_group_id: Option<String>,
    stable_url_id: Option<String>,
}

/// The `?<kind>_id=` a create call must carry.
fn required_id(value: Option<String>, field: &str) -> AccountResult<String> {
    value
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AccountError::invalid(format!("{field} is required.")))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> AccountResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| AccountError::invalid(format!("Invalid request body: {e}")))
}

#[tracing::instrument(skip_all)]
async fn create_group(
    State(emu): State<Shared>,
    Path(account_id): Path<String>,
    Query(q): Query<CreateQuery>,
    body: axum::body::Bytes,
) -> AccountResult<Json<Value>> {
    emu.check_account(&account_id)?;
    let id = required_id(q.failover_group_id, "failover_group_id")?;
    let req: CreateGroup = parse(&body)?;
    let _ = (&req.name, &req.unity_catalog_assets);
    if !req.regions.contains(&req.initial_primary_region) {
        return Err(AccountError::invalid(
            "initial_primary_region must be one of regions.",
        ));
    }
    let key = group_key(&account_id, &id);
    let mut st = lock(&emu.state);
    for set in &req.workspace_sets {
        for w in &set.workspace_ids {
            let region = st.region_of(w).ok_or_else(|| {
                AccountError::invalid(format!("Workspace {w} does not exist in this account."))
            })?;
            if !req.regions.contains(&region) {
                return Err(AccountError::invalid(format!(
                    "Workspace {w} is in {region}, which is not one of regions."
                )));
            }
        }
    }
    if st.groups.contains_key(&key) {
        return Err(AccountError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("Failover group {id} already exists."),
        ));
    }
    for set in &req.workspace_sets {
        for u in &set.stable_url_names {
            let url = st
                .stable_urls
                .get_mut(u)
                .ok_or_else(|| AccountError::invalid(format!("Stable URL {u} does not exist.")))?;
            url.failover_group_name = Some(key.clone());
        }
    }
    let etag = st.new_etag();
    let now = Utc::now();
    let group = Group {
        name: key.clone(),
        regions: req.regions,
        workspace_sets: req.workspace_sets,
        effective_primary_region: req.initial_primary_region,
        state: GroupState::Active,
        etag,
        create_time: now,
        update_time: now,
        failing_over: None,
        fail_next: false,
        stale_next: false,
        lose_answer_next: false,
    };
    let body = st.group_json(&group, emu.config.replication_lag);
    st.groups.insert(key, group);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailoverRequest {
    #[serde(default)]
    target_primary_region: Option<String>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    failover_type: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn failover(
    State(emu): State<Shared>,
    Path((account_id, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> AccountResult<Response> {
    emu.check_account(&account_id)?;
    let req: FailoverRequest = parse(&body)?;
    let _ = &req.name;
    let forced = match req.failover_type.as_deref() {
        Some("FORCED") => true,
        None | Some("FAILOVER_TYPE_UNSPECIFIED") => false,
        Some(other) => {
            return Err(AccountError::invalid(format!(
                "failover_type {other:?} is not one of FORCED, FAILOVER_TYPE_UNSPECIFIED."
            )))
        }
    };
    let target = req
        .target_primary_region
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AccountError::invalid("target_primary_region is required."))?;
    let key = group_key(&account_id, &id);
    let mut st = lock(&emu.state);
    st.advance();
    if st.groups.get(&key).is_some_and(|g| g.stale_next) {
        let etag = st.new_etag();
        if let Some(g) = st.groups.get_mut(&key) {
            g.stale_next = false;
            g.etag = etag;
            g.update_time = Utc::now();
        }
    }
    let down_source = {
        let g = st
            .groups
            .get(&key)
            .ok_or_else(|| AccountError::not_found(&format!("Failover group {id}")))?;
        if let Some(etag) = &req.etag {
            if *etag != g.etag {
                return Err(AccountError::new(
                    StatusCode::CONFLICT,
                    "ABORTED",
                    format!(
                        "The etag {etag} does not match the failover group's current etag; \
                         read the group again."
                    ),
                ));
            }
        }
        if !g.regions.contains(&target) {
            return Err(AccountError::invalid(format!(
                "target_primary_region {target} is not one of the group's regions."
            )));
        }
        if g.effective_primary_region == target {
            return Err(AccountError::precondition(format!(
                "{target} is already the effective primary region."
            )));
        }
        if !matches!(g.state, GroupState::Active | GroupState::FailoverFailed) {
            return Err(AccountError::precondition(format!(
                "The failover group is {:?}; a failover needs ACTIVE or FAILOVER_FAILED.",
                g.state
            )));
        }
        st.down_regions.contains(&g.effective_primary_region)
    };
    let etag = st.new_etag();
    let Some(g) = st.groups.get_mut(&key) else {
        return Err(AccountError::not_found(&format!("Failover group {id}")));
    };
    let succeeds = !g.fail_next && (forced || !down_source);
    g.fail_next = false;
    let lose_answer = std::mem::take(&mut g.lose_answer_next);
    g.state = GroupState::FailingOver;
    g.etag = etag;
    g.update_time = Utc::now();
    g.failing_over = Some((
        target,
        Instant::now() + emu.config.failover_duration,
        succeeds,
    ));
    let g = g.clone();
    let mut response = Json(st.group_json(&g, emu.config.replication_lag)).into_response();
    if lose_answer {
        response
            .headers_mut()
            .insert(LOSE_ANSWER, axum::http::HeaderValue::from_static("1"));
    }
    Ok(response)
}

/// Set by a handler whose request was carried out but whose answer must be lost: the gate
/// drops the connection instead of answering (recorded with status 0).
const LOSE_ANSWER: &str = "x-emulator-lose-answer";

fn stable_key(account_id: &str, id: &str) -> String {
    format!("accounts/{account_id}/stable-urls/{id}")
}

#[tracing::instrument(skip_all)]
async fn list_stable_urls(
    State(emu): State<Shared>,
    Path(account_id): Path<String>,
    Query(q): Query<PageQuery>,
) -> AccountResult<Json<Value>> {
    emu.check_account(&account_id)?;
    let mut st = lock(&emu.state);
    st.advance();
    let all: Vec<Value> = st.stable_urls.values().map(stable_url_json).collect();
    let (items, next) = page(all, &q)?;
    let mut body = json!({ "stable_urls": items });
    if let Some(n) = next {
        body["next_page_token"] = json!(n);
    }
    Ok(Json(body))
}

#[tracing::instrument(skip_all, fields(id = %id))]
async fn get_stable_url(
    State(emu): State<Shared>,
    Path((account_id, id)): Path<(String, String)>,
) -> AccountResult<Json<Value>> {
    emu.check_account(&account_id)?;
    let mut st = lock(&emu.state);
    st.advance();
    let u = st
        .stable_urls
        .get(&stable_key(&account_id, &id))
        .ok_or_else(|| AccountError::not_found(&format!("Stable URL {id}")))?;
    Ok(Json(stable_url_json(u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateStableUrl {
    initial_workspace_id: String,
    #[serde(default)]
    name: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn create_stable_url(
    State(emu): State<Shared>,
    Path(account_id): Path<String>,
    Query(q): Query<CreateQuery>,
    body: axum::body::Bytes,
) -> AccountResult<Json<Value>> {
    emu.check_account(&account_id)?;
    let id = required_id(q.stable_url_id, "stable_url_id")?;
    let req: CreateStableUrl = parse(&body)?;
    let _ = &req.name;
    let key = stable_key(&account_id, &id);
    let mut st = lock(&emu.state);
    if st.region_of(&req.initial_workspace_id).is_none() {
        return Err(AccountError::invalid(format!(
            "Workspace {} does not exist in this account.",
            req.initial_workspace_id
        )));
    }
    if st.stable_urls.contains_key(&key) {
        return Err(AccountError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("Stable URL {id} already exists."),
        ));
    }
    let stable_workspace_id = format!("{}", 7_000_000_000_000_000u64 + st.stable_urls.len() as u64);
    let url = StableUrl {
        name: key.clone(),
        url: format!("{}/?w={stable_workspace_id}", emu.url),
        stable_workspace_id,
        effective_workspace_id: req.initial_workspace_id,
        failover_group_name: None,
    };
    let body = stable_url_json(&url);
    st.stable_urls.insert(key, url);
    Ok(Json(body))
}

#[tracing::instrument(skip_all)]
async fn host_metadata(State(emu): State<Shared>) -> Json<Value> {
    Json(json!({
        "oidc_endpoint": format!("{}/oidc/accounts/{{account_id}}", emu.url),
        "account_id": emu.config.account_id,
        "cloud": "aws",
    }))
}

#[tracing::instrument(skip_all)]
async fn discovery(
    State(emu): State<Shared>,
    Path(account_id): Path<String>,
) -> AccountResult<Json<Value>> {
    emu.check_account(&account_id)?;
    let base = format!("{}/oidc/accounts/{account_id}", emu.url);
    Ok(Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/v1/authorize"),
        "token_endpoint": format!("{base}/v1/token"),
    })))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn token(
    State(emu): State<Shared>,
    Path(account_id): Path<String>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let denied = || {
        (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "error_description": "Client authentication failed"})),
        )
            .into_response()
    };
    if account_id != emu.config.account_id {
        return denied();
    }
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let Some((id, secret)) = basic.or(f.client_id.zip(f.client_secret)) else {
        return denied();
    };
    if f.grant_type.as_deref() != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if id != emu.config.client_id || secret != emu.config.client_secret {
        return denied();
    }
    let access = format!("dacc-oauth-{}", uuid::Uuid::new_v4().simple());
    lock(&emu.state)
        .tokens
        .insert(access.clone(), Instant::now() + Duration::from_secs(3600));
    Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": f.scope.unwrap_or_else(|| "all-apis".into()),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct Down {
    down: bool,
}

async fn region_outage(
    State(emu): State<Shared>,
    Path(region): Path<String>,
    Json(d): Json<Down>,
) -> Json<Value> {
    let mut st = lock(&emu.state);
    if d.down {
        st.down_regions.insert(region);
        if st.replication_stopped_at.is_none() {
            st.replication_stopped_at = Some(Utc::now());
        }
    } else {
        st.down_regions.remove(&region);
        if st.down_regions.is_empty() {
            st.replication_stopped_at = None;
        }
    }
    let mut down: Vec<String> = st.down_regions.iter().cloned().collect();
    down.sort();
    Json(json!({ "down_regions": down }))
}

fn admin_group<'a>(st: &'a mut Account, emu: &AccountEmulator, id: &str) -> Option<&'a mut Group> {
    st.groups.get_mut(&group_key(&emu.config.account_id, id))
}

/// Arms a one-shot behaviour of a group's next failover request.
fn arm(
    emu: &AccountEmulator,
    id: &str,
    set: impl FnOnce(&mut Group),
) -> AccountResult<Json<Value>> {
    let mut st = lock(&emu.state);
    let g = admin_group(&mut st, emu, id)
        .ok_or_else(|| AccountError::not_found(&format!("Failover group {id}")))?;
    set(g);
    Ok(Json(json!({})))
}

async fn fail_next(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> AccountResult<Json<Value>> {
    arm(&emu, &id, |g| g.fail_next = true)
}

async fn lose_answer_next(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> AccountResult<Json<Value>> {
    arm(&emu, &id, |g| g.lose_answer_next = true)
}

async fn stale_next(
    State(emu): State<Shared>,
    Path(id): Path<String>,
) -> AccountResult<Json<Value>> {
    arm(&emu, &id, |g| g.stale_next = true)
}

async fn touch(State(emu): State<Shared>, Path(id): Path<String>) -> AccountResult<Json<Value>> {
    let mut st = lock(&emu.state);
    let etag = st.new_etag();
    let g = admin_group(&mut st, &emu, &id)
        .ok_or_else(|| AccountError::not_found(&format!("Failover group {id}")))?;
    g.etag = etag.clone();
    g.update_time = Utc::now();
    Ok(Json(json!({ "etag": etag })))
}

#[derive(Deserialize)]
struct NewWorkspace {
    workspace_id: String,
    region: String,
}

/// Adds (or moves) a workspace the account knows.
async fn add_workspace(State(emu): State<Shared>, Json(w): Json<NewWorkspace>) -> Json<Value> {
    let mut st = lock(&emu.state);
    st.workspaces.retain(|k| k.workspace_id != w.workspace_id);
    st.workspaces.push(AccountWorkspace {
        workspace_id: w.workspace_id,
        region: w.region,
    });
    Json(json!({ "workspaces": st.workspaces.len() }))
}

#[derive(Deserialize)]
struct Enabled {
    enabled: bool,
}

async fn outage(State(emu): State<Shared>, Json(e): Json<Enabled>) -> Json<Value> {
    emu.outage.store(e.enabled, Ordering::SeqCst);
    Json(json!({ "enabled": e.enabled }))
}

async fn requests(State(emu): State<Shared>) -> Json<Value> {
    Json(json!({ "requests": lock(&emu.state).requests }))
}

async fn clear_requests(State(emu): State<Shared>) -> Json<Value> {
    lock(&emu.state).requests.clear();
    Json(json!({}))
}

async fn not_found(method: axum::http::Method, uri: axum::http::Uri) -> AccountError {
    AccountError::new(
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!("No API found for '{} {}'", method, uri.path()),
    )
}

fn router(emu: Shared) -> Router {
    const DR: &str = "/api/disaster-recovery/v1/accounts/{account_id}";
    Router::new()
        .route("/.well-known/databricks-config", get(host_metadata))
        .route(
            "/oidc/accounts/{account_id}/.well-known/oauth-authorization-server",
            get(discovery),
        )
        .route("/oidc/accounts/{account_id}/v1/token", post(token))
        .route(
            &format!("{DR}/failover-groups"),
            get(list_groups).post(create_group),
        )
        .route(&format!("{DR}/failover-groups/{{id}}"), get(get_group))
        .route(
            &format!("{DR}/failover-groups/{{id}}/failover"),
            post(failover),
        )
        .route(
            &format!("{DR}/stable-urls"),
            get(list_stable_urls).post(create_stable_url),
        )
        .route(&format!("{DR}/stable-urls/{{id}}"), get(get_stable_url))
        .route(
            "/__emulator/account/regions/{region}/outage",
            post(region_outage),
        )
        .route(
            "/__emulator/account/failover-groups/{id}/fail-next",
            post(fail_next),
        )
        .route(
            "/__emulator/account/failover-groups/{id}/touch",
            post(touch),
        )
        .route(
            "/__emulator/account/failover-groups/{id}/stale-next",
            post(stale_next),
        )
        .route(
            "/__emulator/account/failover-groups/{id}/lose-answer-next",
            post(lose_answer_next),
        )
        .route("/__emulator/account/outage", post(outage))
        .route("/__emulator/account/workspaces", post(add_workspace))
        .route("/__emulator/account/requests", get(requests))
        .route("/__emulator/account/requests/clear", post(clear_requests))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(emu)
}
