//! The local Lambda host: serves the Lambda Invoke API
//! (`POST /2015-03-31/functions/{name-or-arn}/invocations`) by calling our real step handlers
//! in-process, the way the Lambda runtime would, and proxies every other request to moto
//! (moto sends its other integrations, e.g. `sns:publish`, to the same port).
//!
//! Function errors are answered as Lambda does — HTTP 200, `X-Amz-Function-Error: Unhandled`,
//! `{"errorType", "errorMessage"}` — so Step Functions sees the step error's name.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use base64::Engine;
use lifeboat_core::{
    dispatch::{self, Step},
    kernel::Deps,
};

use super::{
    gate::{Gate, Verdict},
    runtime::{FunctionRuntime, Outcome},
};
use tokio::{net::TcpListener, task::JoinHandle};
use tracing::{info, warn};

/// Injected failures, for tests of "a Lambda killed mid-step" and of AWS errors.
#[derive(Debug, Default)]
pub struct HostFaults {
    /// Step name → number of next invocations that fail as a crashed runtime.
    pub crash_next: HashMap<String, u32>,
    /// AWS errors answered to the function binaries' calls instead of moto's answer (binaries
    /// mode: the calls pass the host).
    pub aws: Vec<AwsFault>,
    /// Mailbox name → (text the delivery must contain, how many such deliveries are answered
    /// `503`): a webhook that is down for one message, whichever deliveries run beside it.
    pub inbox_down: HashMap<String, (String, u32)>,
}

/// One injected AWS fault: calls of `action` (by `function`, or any) get `status`/`code`
/// — or, with `body`, that answer with status 200 — `remaining` times.
#[derive(Debug, Clone)]
pub struct AwsFault {
    /// IAM action, `s3:PutObject`.
    pub action: String,
    /// Only this function's calls (binary name); None: every function's.
    pub function: Option<String>,
    /// HTTP status of the error.
    pub status: u16,
    /// The error code (`ServiceUnavailable`, `ThrottlingException`, `Throttling`, ...).
    pub code: String,
    /// A canned successful answer instead of an error (e.g. a `GetChange` still PENDING).
    pub body: Option<String>,
    /// The call goes through, and in its answer this text is replaced by that one (e.g. a
    /// change Route 53 applied, answered PENDING instead of INSYNC).
    pub rewrite: Option<(String, String)>,
    /// How many more calls it hits (`u32::MAX`: all).
    pub remaining: u32,
    /// Matching calls let through before it starts (a failure after the first writes).
    pub after: u32,
}

impl AwsFault {
    /// `status`/`code` for the next `times` calls of `action` by any function.
    pub fn error(action: &str, status: u16, code: &str, times: u32) -> Self {
        Self {
            action: action.into(),
            function: None,
            status,
            code: code.into(),
            body: None,
            rewrite: None,
            remaining: times,
            after: 0,
        }
    }
}

impl HostFaults {
    /// Takes the injected answer for `function` calling `action`, if any is left.
    fn take_aws(&mut self, function: &str, action: &str) -> Option<AwsFault> {
        let fault = self.aws.iter_mut().find(|f| {
            f.remaining > 0
                && f.action == action
                && f.function.as_deref().is_none_or(|x| x == function)
        })?;
        if fault.after > 0 {
            fault.after -= 1;
            return None;
        }
        if fault.remaining != u32::MAX {
            fault.remaining -= 1;
        }
        Some(fault.clone())
    }
}

/// One invocation, for progress displays and tests.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Step.
    pub step: &'static str,
    /// Whether it succeeded.
    pub ok: bool,
    /// Error name if not.
    pub error: Option<String>,
    /// Duration.
    pub elapsed: Duration,
}

#[derive(Clone)]
struct HostState {
    deps: Arc<Deps>,
    moto_url: String,
    http: reqwest::Client,
    faults: Arc<Mutex<HostFaults>>,
    log: Arc<Mutex<Vec<Invocation>>>,
    step_timeout: Duration,
    inbox: Inbox,
    runtime: Arc<FunctionRuntime>,
    gate: Arc<Gate>,
    arc: RoutingControls,
}

/// The ARC cluster's routing controls the host plays (nothing runs ARC locally): ARN →
/// (name, `On`/`Off`). Served on the cluster endpoints `/arc/{n}` the local plan lists, after
/// the IAM gate and the injected faults, like any AWS call.
pub type RoutingControls = Arc<Mutex<HashMap<String, (String, String)>>>;

/// Messages SNS delivered to the local mailboxes (`POST /inbox/{name}`: an `http` subscription
/// standing in for an e-mail address), by mailbox name.
pub type Inbox = Arc<Mutex<HashMap<String, Vec<serde_json::Value>>>>;

/// A running host.
pub struct LambdaHost {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Fault injection.
    pub faults: Arc<Mutex<HostFaults>>,
    /// Every invocation served.
    pub log: Arc<Mutex<Vec<Invocation>>>,
    /// The local mailboxes.
    pub inbox: Inbox,
    /// The function binaries (binaries mode: installed after provisioning).
    pub runtime: Arc<FunctionRuntime>,
    /// IAM on the binaries' AWS calls.
    pub gate: Arc<Gate>,
    /// The ARC routing controls (statically stable switch).
    pub arc: RoutingControls,
    task: JoinHandle<()>,
}

impl Drop for LambdaHost {
    fn drop(&mut self) {
        self.task.abort();
        self.runtime.shutdown();
    }
}

impl LambdaHost {
    /// Serves on `listener`, proxying non-Lambda requests to `moto_url`. Function binaries,
    /// once installed, are taken from `bin_dir`; their output goes to `log_dir`.
    pub fn start(
        listener: TcpListener,
        deps: Deps,
        moto_url: String,
        step_timeout: Duration,
        bin_dir: std::path::PathBuf,
        log_dir: std::path::PathBuf,
    ) -> anyhow::Result<LambdaHost> {
        let port = listener.local_addr()?.port();
        let runtime = Arc::new(FunctionRuntime::new(
            format!("127.0.0.1:{port}"),
            bin_dir,
            log_dir,
            super::names::REGION,
            super::names::ACCOUNT,
        ));
        let gate = Arc::new(Gate::default());
        let faults = Arc::new(Mutex::new(HostFaults::default()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let inbox = Inbox::default();
        let arc = RoutingControls::default();
        let state = HostState {
            arc: arc.clone(),
            inbox: inbox.clone(),
            deps: Arc::new(deps),
            moto_url,
            http: lifeboat_core::http::client(),
            faults: faults.clone(),
            log: log.clone(),
            step_timeout,
            runtime: runtime.clone(),
            gate: gate.clone(),
        };
        let app = Router::new()
            .route("/2015-03-31/functions/{function}/invocations", post(invoke))
            .route("/approval", get(approval_api).post(approval_api))
            .route("/inbox/{name}", post(deliver_to_inbox))
            .fallback(proxy)
            // AWS requests pass whole up to S3's single-PUT limit (axum's 2 MB default refused
            // the 11 MB configuration snapshot of a 10,000-job workspace); larger ones S3 itself
            // refuses, and so does `proxy`.
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(state)
            .merge(runtime.routes());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                warn!(error = %e, "lambda host stopped");
            }
        });
        Ok(LambdaHost {
            url: format!("http://127.0.0.1:{port}"),
            faults,
            log,
            inbox,
            runtime,
            gate,
            arc,
            task,
        })
    }
}

/// SNS `http` delivery (the notification JSON) or a webhook's `POST` (Slack, Teams, generic),
/// kept per mailbox; answers `503` while the mailbox is made to be down.
async fn deliver_to_inbox(
    State(state): State<HostState>,
    Path(name): Path<String>,
    body: Bytes,
) -> StatusCode {
    {
        let mut faults = state.faults.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((text, n)) = faults.inbox_down.get_mut(&name) {
            if *n > 0 && String::from_utf8_lossy(&body).contains(text.as_str()) {
                *n -= 1;
                return StatusCode::SERVICE_UNAVAILABLE;
            }
        }
    }
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    state
        .inbox
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(name)
        .or_default()
        .push(doc);
    StatusCode::OK
}

fn function_error(error_type: &str, message: &str) -> Response {
    let body = serde_json::json!({"errorType": error_type, "errorMessage": message, "trace": []});
    (
        StatusCode::OK,
        [
            ("X-Amz-Function-Error", "Unhandled"),
            ("Content-Type", "application/json"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn invoke(
    State(state): State<HostState>,
    Path(function): Path<String>,
    body: Bytes,
) -> Response {
    let decoded = url::form_urlencoded::parse(format!("f={function}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or(function);
    let Some(step) = Step::from_function(&decoded) else {
        return (
            StatusCode::NOT_FOUND,
            [
                ("x-amzn-RequestId", "local"),
                ("X-Amzn-ErrorType", "ResourceNotFoundException"),
            ],
            serde_json::json!({"message": format!("Function not found: {decoded}")}).to_string(),
        )
            .into_response();
    };
    let crash = {
        let mut faults = state.faults.lock().unwrap_or_else(|p| p.into_inner());
        match faults.crash_next.get_mut(step.name()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    };
    let started = Instant::now();
    let record = |ok: bool, error: Option<String>| {
        state
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Invocation {
                step: step.name(),
                ok,
                error,
                elapsed: started.elapsed(),
            });
    };
    if state.runtime.function(step.name()).is_some() {
        if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&body) {
            state.gate.note_invocation(&payload);
        }
        let outcome = state.runtime.invoke(step.name(), body, crash).await;
        match &outcome {
            Outcome::Response(_) => record(true, None),
            Outcome::Error { error_type, .. } => record(false, Some(error_type.clone())),
        }
        return match outcome {
            Outcome::Response(bytes) => (
                StatusCode::OK,
                [("Content-Type", "application/json")],
                bytes,
            )
                .into_response(),
            Outcome::Error {
                error_type,
                message,
            } => function_error(&error_type, &message),
        };
    }
    if crash {
        record(false, Some("Runtime.ExitError".into()));
        return function_error(
            "Runtime.ExitError",
            "RequestId: local Error: Runtime exited with error: signal: killed",
        );
    }
    let payload: serde_json::Value =
        match serde_json::from_slice(if body.is_empty() { b"{}" } else { &body }) {
            Ok(v) => v,
            Err(e) => return function_error("InvalidInput", &format!("payload is not JSON: {e}")),
        };
    let deadline = Instant::now() + state.step_timeout;
    match dispatch::invoke(step, &state.deps, payload, deadline).await {
        Ok(v) => {
            info!(
                step = step.name(),
                ms = started.elapsed().as_millis() as u64,
                "invocation ok"
            );
            record(true, None);
            (
                StatusCode::OK,
                [("Content-Type", "application/json")],
                v.to_string(),
            )
                .into_response()
        }
        Err(e) => {
            warn!(step = step.name(), error = %e, "invocation failed");
            record(false, Some(e.name().to_string()));
            function_error(e.name(), &e.to_string())
        }
    }
}

/// The largest object a single S3 `PutObject` takes (5 GiB); S3 answers `EntityTooLarge` above.
pub const S3_MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// What the host reads of a request at most: S3's single-PUT limit, so a larger body is
/// answered as S3 answers it rather than cut off.
const BODY_LIMIT: usize = (S3_MAX_PUT_BYTES + 1024 * 1024) as usize;

/// Pure: S3's refusal of a body over its single-PUT limit, from the declared length.
pub fn too_large_for_s3(content_length: Option<u64>) -> bool {
    content_length.is_some_and(|n| n > S3_MAX_PUT_BYTES)
}

async fn proxy(
    State(state): State<HostState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if too_large_for_s3(declared.or(Some(body.len() as u64))) {
        let (status, content_type, bytes) = super::gate::aws_error(
            local_iam::Protocol::S3,
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed object size.",
        );
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            [("content-type", content_type)],
            bytes,
        )
            .into_response();
    }
    let header_list: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_ascii_lowercase(),
                v.to_str().ok()?.to_string(),
            ))
        })
        .collect();
    let mut rewrite = None;
    let missing_key_is_403 = match state.gate.check(method.as_str(), path, &header_list, &body) {
        Verdict::Unchecked => None,
        Verdict::Allowed {
            missing_key_is_403,
            function,
            action,
            protocol,
        } => {
            let injected = state
                .faults
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take_aws(&function, &action);
            if let Some(f) = injected.as_ref().filter(|f| f.rewrite.is_some()) {
                warn!(%function, %action, "injected AWS answer rewrite");
                rewrite = f.rewrite.clone();
            } else if let Some(f) = injected {
                warn!(%function, %action, status = f.status, code = %f.code, "injected AWS fault");
                let (status, content_type, bytes) = match &f.body {
                    Some(b) => (200, "text/xml", b.clone().into_bytes()),
                    None => super::gate::aws_error(protocol, f.status, &f.code, "injected fault"),
                };
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (
                    status,
                    [
                        ("content-type", content_type),
                        ("x-amzn-errortype", f.code.as_str()),
                    ],
                    bytes,
                )
                    .into_response();
            }
            missing_key_is_403
        }
        Verdict::Denied {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            return (
                status,
                [
                    ("content-type", content_type),
                    ("x-amzn-errortype", "AccessDeniedException"),
                ],
                body,
            )
                .into_response();
        }
    };
    if let Some(op) = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("ToggleCustomerAPI."))
    {
        return routing_control_answer(&state.arc, op, &body);
    }
    let mut req = state
        .http
        .request(method, format!("{}{}", state.moto_url, path));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    match req.body(body).send().await {
        Ok(resp) => {
            let status = resp.status();
            let mut out = HeaderMap::new();
            for (name, value) in resp.headers() {
                if name != "transfer-encoding" && name != "content-length" {
                    out.insert(name.clone(), value.clone());
                }
            }
            let mut bytes = resp.bytes().await.unwrap_or_default();
            if let Some((from, to)) = &rewrite {
                bytes = Bytes::from(String::from_utf8_lossy(&bytes).replace(from, to));
            }
            if let (StatusCode::NOT_FOUND, Some((denied, content_type, body, decision))) =
                (status, missing_key_is_403)
            {
                state.gate.note_hidden_missing_key(decision);
                let status = StatusCode::from_u16(denied).unwrap_or(StatusCode::FORBIDDEN);
                return (status, [("content-type", content_type)], body).into_response();
            }
            (status, out, bytes).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// ARC's cluster data plane (awsJson 1.0, `X-Amz-Target: ToggleCustomerAPI.{Op}`):
/// `GetRoutingControlState` → `{RoutingControlArn, RoutingControlState, RoutingControlName}`,
/// `UpdateRoutingControlState` → `{}`, `ListRoutingControls` → `{RoutingControls: [...]}`;
/// an unknown ARN is `ResourceNotFoundException` (404), a state other than `On`/`Off`
/// `ValidationException` (400).
fn routing_control_answer(arc: &RoutingControls, op: &str, body: &[u8]) -> Response {
    let error = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            [
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amzn-errortype", code),
            ],
            serde_json::json!({"__type": code, "message": message}).to_string(),
        )
            .into_response()
    };
    let ok = |v: serde_json::Value| {
        (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.0")],
            v.to_string(),
        )
            .into_response()
    };
    let input: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let arn = input["RoutingControlArn"].as_str().unwrap_or_default();
    let mut controls = arc.lock().unwrap_or_else(|p| p.into_inner());
    match op {
        "ListRoutingControls" => ok(serde_json::json!({"RoutingControls": controls
            .iter()
            .map(|(arn, (name, state))| serde_json::json!({"RoutingControlArn": arn,
                "RoutingControlName": name, "RoutingControlState": state}))
            .collect::<Vec<_>>()})),
        "GetRoutingControlState" => match controls.get(arn) {
            Some((name, state)) => ok(serde_json::json!({"RoutingControlArn": arn,
                "RoutingControlState": state, "RoutingControlName": name})),
            None => error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                "routing control not found",
            ),
        },
        "UpdateRoutingControlState" => {
            let wanted = input["RoutingControlState"].as_str().unwrap_or_default();
            if !matches!(wanted, "On" | "Off") {
                return error(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "RoutingControlState must be On or Off",
                );
            }
            match controls.get_mut(arn) {
                Some((_, state)) => {
                    *state = wanted.to_string();
                    ok(serde_json::json!({}))
                }
                None => error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFoundException",
                    "routing control not found",
                ),
            }
        }
        _ => error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            "operation not emulated",
        ),
    }
}

/// Plays API Gateway (HTTP API, payload 2.0) for the approval callback: the e-mailed links of a
/// local run point here.
async fn approval_api(
    State(state): State<HostState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header_map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.as_str().to_string(),
                serde_json::Value::String(v.to_str().ok()?.to_string()),
            ))
        })
        .collect();
    let event = serde_json::json!({
        "version": "2.0",
        "routeKey": format!("{method} /approval"),
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": header_map,
        "requestContext": {"http": {"method": method.as_str(), "path": uri.path(), "sourceIp": "127.0.0.1"}},
        // As API Gateway: a body that is not UTF-8 text arrives base64-encoded.
        "body": match std::str::from_utf8(&body) {
            Ok(text) => text.to_string(),
            Err(_) => base64::engine::general_purpose::STANDARD.encode(&body),
        },
        "isBase64Encoded": std::str::from_utf8(&body).is_err(),
    });
    let result = if state
        .runtime
        .function(Step::ApprovalCallback.name())
        .is_some()
    {
        match state
            .runtime
            .invoke(
                Step::ApprovalCallback.name(),
                Bytes::from(event.to_string()),
                false,
            )
            .await
        {
            Outcome::Response(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|e| format!("approval-callback answered non-JSON: {e}")),
            Outcome::Error {
                error_type,
                message,
            } => Err(format!("{error_type}: {message}")),
        }
    } else {
        let deadline = Instant::now() + state.step_timeout;
        dispatch::invoke(Step::ApprovalCallback, &state.deps, event, deadline)
            .await
            .map_err(|e| e.to_string())
    };
    match result {
        Ok(v) => {
            let status = v["statusCode"]
                .as_u64()
                .and_then(|s| StatusCode::from_u16(s as u16).ok())
                .unwrap_or(StatusCode::OK);
            let mut out = HeaderMap::new();
            if let Some(h) = v["headers"].as_object() {
                for (k, val) in h {
                    if let (Ok(name), Some(Ok(value))) = (
                        axum::http::HeaderName::from_bytes(k.as_bytes()),
                        val.as_str().map(axum::http::HeaderValue::from_str),
                    ) {
                        out.insert(name, value);
                    }
                }
            }
            (status, out, v["body"].as_str().unwrap_or("").to_string()).into_response()
        }
        // API Gateway's answer when the integration fails.
        Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 11 MB configuration snapshot of a 10,000-job workspace never reached the ledger: the
    /// host refused any body over axum's 2 MB default. It passes whole now, up to S3's limit.
    #[tokio::test]
    async fn a_body_over_the_old_limit_reaches_moto_whole() {
        // A stand-in for moto that answers with the length of what it received.
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_url = format!("http://{}", upstream.local_addr().unwrap());
        let echo = Router::new()
            .fallback(|body: Bytes| async move { body.len().to_string() })
            .layer(DefaultBodyLimit::disable());
        tokio::spawn(async move { axum::serve(upstream, echo).await });
        let aws = lifeboat_core::aws::AwsClients::for_endpoint(&upstream_url, "us-west-2").await;
        let deps = Deps::new(aws, lifeboat_core::kernel::DeployConfig::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dir = std::env::temp_dir().join(format!("lifeboat-host-{}", std::process::id()));
        let host = LambdaHost::start(
            listener,
            deps,
            upstream_url,
            Duration::from_secs(5),
            dir.clone(),
            dir,
        )
        .unwrap();
        let http = lifeboat_core::http::client();
        for size in [1024, 3 * 1024 * 1024, 12 * 1024 * 1024] {
            let answer = http
                .put(format!(
                    "{}/lifeboat-ledger/sites/big/primary-config.json",
                    host.url
                ))
                .body(vec![b'x'; size])
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success(), "{size}: {}", answer.status());
            assert_eq!(answer.text().await.unwrap(), size.to_string());
        }
    }

    #[test]
    fn a_body_over_s3s_single_put_limit_is_refused_as_s3_refuses_it() {
        let table = [
            (None, false),
            (Some(0), false),
            (Some(S3_MAX_PUT_BYTES), false),
            (Some(S3_MAX_PUT_BYTES + 1), true),
        ];
        for (len, refused) in table {
            assert_eq!(too_large_for_s3(len), refused, "{len:?}");
        }
    }
}
