//! Runs the shipped artifacts: each function's real `bootstrap` binary, started as Lambda would
//! start it, served over the Lambda Runtime API.
//!
//! Wire format (the Runtime API as `lambda_runtime` speaks it): a worker process finds the API in
//! `AWS_LAMBDA_RUNTIME_API` (`http://127.0.0.1:<port>/runtime/<worker>`), long-polls
//! `GET …/2018-06-01/runtime/invocation/next` (body = event; headers
//! `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//! `Lambda-Runtime-Invoked-Function-Arn`), then answers `POST …/invocation/{id}/response` or
//! `…/invocation/{id}/error` (`{"errorType", "errorMessage"}`); `POST …/runtime/init/error`
//! reports a failed start.
//!
//! Behaviour callers rely on, as Lambda: a warm worker is reused; a new one is started (cold
//! start) when none is idle; each runs with the template's environment only (plus the Lambda
//! variables and the function role's credentials); an invocation that outlives the template's
//! `Timeout` is killed (`Sandbox.Timedout`); a worker whose resident memory exceeds `MemorySize`
//! is killed (`Runtime.OutOfMemory`); a worker that exits mid-invocation answers
//! `Runtime.ExitError`.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    path::PathBuf,
    process::Stdio,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::Command,
    sync::{mpsc, oneshot, watch},
};
use tracing::{info, warn};

use super::template::{FunctionSpec, LocalValues};

/// Credentials of a function's role (from `sts:AssumeRole` in moto).
#[derive(Debug, Clone)]
pub struct RoleCredentials {
    /// `ASIA…` key id: the local IAM gate knows the calling function by it.
    pub access_key_id: String,
    /// Secret key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// `arn:aws:sts::…:assumed-role/<role>/<session>`.
    pub principal: String,
}

/// A function ready to run: its template spec and its role's credentials.
#[derive(Debug, Clone)]
pub struct Function {
    /// From the template.
    pub spec: FunctionSpec,
    /// The role's session.
    pub credentials: RoleCredentials,
}

/// How an invocation ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The function answered.
    Response(Bytes),
    /// The function (or the runtime) failed: Lambda's `errorType` / `errorMessage`.
    Error {
        /// `errorType` (the step error's name, or `Runtime.*` / `Sandbox.*`).
        error_type: String,
        /// `errorMessage`.
        message: String,
    },
}

/// Per-function figures: cold starts and their time to the first `next`, peak memory.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FunctionFigures {
    /// Processes started.
    pub cold_starts: u64,
    /// Process start → first `GET next`, per cold start (ms).
    pub init_ms: Vec<f64>,
    /// Invocations served.
    pub invocations: u64,
    /// Highest resident memory seen (KiB, `VmHWM`).
    pub peak_rss_kib: u64,
}

struct Event {
    request_id: String,
    payload: Bytes,
    deadline_ms: u64,
    function_arn: String,
}

struct Worker {
    id: u64,
    binary: String,
    pid: Option<u32>,
    events: Mutex<Option<mpsc::Sender<Event>>>,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Event>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Set when the process ended: its exit status and the tail of its output.
    exited: watch::Receiver<Option<String>>,
    kill: Mutex<Option<oneshot::Sender<()>>>,
    started: Instant,
    /// Fault injection: the process is killed when it takes its next event, so the
    /// invocation is in flight when it dies (a Lambda killed mid-step).
    crash: std::sync::atomic::AtomicBool,
    /// Whether the process has taken an event before.
    warm: std::sync::atomic::AtomicBool,
}

/// The process manager behind the host's Lambda API in binaries mode.
pub struct FunctionRuntime {
    functions: Mutex<HashMap<String, Arc<Function>>>,
    idle: Mutex<HashMap<String, VecDeque<Arc<Worker>>>>,
    workers: Mutex<HashMap<u64, Arc<Worker>>>,
    figures: Mutex<BTreeMap<String, FunctionFigures>>,
    next_worker: AtomicU64,
    next_request: AtomicU64,
    host_addr: String,
    bin_dir: PathBuf,
    log_dir: PathBuf,
    region: String,
    account: String,
    /// The last lines every worker printed (`[function] line`), for tests that read logs.
    output: Arc<Mutex<VecDeque<String>>>,
}

/// Lines of worker output kept in memory.
const OUTPUT_KEPT: usize = 20_000;

impl FunctionRuntime {
    /// A runtime whose workers reach the API at `host_addr` (`127.0.0.1:<port>`) and whose
    /// binaries are in `bin_dir`; each function's output is appended to `log_dir/<binary>.log`.
    pub fn new(
        host_addr: String,
        bin_dir: PathBuf,
        log_dir: PathBuf,
        region: &str,
        account: &str,
    ) -> Self {
        Self {
            functions: Mutex::default(),
            idle: Mutex::default(),
            workers: Mutex::default(),
            figures: Mutex::default(),
            next_worker: AtomicU64::new(1),
            next_request: AtomicU64::new(1),
            host_addr,
            bin_dir,
            log_dir,
            region: region.to_string(),
            account: account.to_string(),
            output: Arc::default(),
        }
    }

    /// Installs (or replaces) the functions; warm workers of replaced functions are retired.
    pub fn install(&self, functions: Vec<Function>) {
        let mut map = lock(&self.functions);
        let mut idle = lock(&self.idle);
        for f in functions {
            if let Some(old) = idle.remove(&f.spec.binary) {
                for w in old {
                    w.stop();
                }
            }
            map.insert(f.spec.binary.clone(), Arc::new(f));
        }
    }

    /// The installed function of `binary`.
    pub fn function(&self, binary: &str) -> Option<Arc<Function>> {
        lock(&self.functions).get(binary).cloned()
    }

    /// Everything the workers printed (their JSON log lines), oldest first, each prefixed
    /// with `[function]`.
    pub fn output(&self) -> Vec<String> {
        lock(&self.output).iter().cloned().collect()
    }

    /// Retires the idle workers of `binary`: its next invocation starts a new process (a new
    /// Lambda container, with empty caches).
    pub fn retire(&self, binary: &str) {
        if let Some(idle) = lock(&self.idle).remove(binary) {
            for w in idle {
                w.stop();
                lock(&self.workers).remove(&w.id);
            }
        }
    }

    /// Figures per function so far.
    pub fn figures(&self) -> BTreeMap<String, FunctionFigures> {
        lock(&self.figures).clone()
    }

    /// Invokes `binary` with `payload` as Lambda would; `crash` kills the worker after it took
    /// the event (a Lambda killed mid-step).
    pub async fn invoke(&self, binary: &str, payload: Bytes, crash: bool) -> Outcome {
        let Some(function) = self.function(binary) else {
            return runtime_error(
                "Runtime.InvalidEntrypoint",
                &format!("no function {binary} is installed"),
            );
        };
        let worker = match self.take_idle(binary) {
            Some(w) => w,
            None => match self.spawn(&function).await {
                Ok(w) => w,
                Err(e) => return runtime_error("Runtime.InvalidEntrypoint", &e),
            },
        };
        let request_id = format!(
            "local-{}",
            self.next_request.fetch_add(1, Ordering::Relaxed)
        );
        let timeout = function.spec.timeout;
        let deadline_ms = now_ms() + timeout.as_millis() as u64;
        let (tx, rx) = oneshot::channel();
        lock(&worker.pending).insert(request_id.clone(), tx);
        let sender = lock(&worker.events).clone();
        let event = Event {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
            function_arn: format!(
                "arn:aws:lambda:{}:{}:function:{}",
                self.region,
                self.account,
                deployed_name(&function.spec)
            ),
        };
        worker.crash.store(crash, Ordering::SeqCst);
        if sender.map(|s| s.try_send(event).is_ok()) != Some(true) {
            return runtime_error("Runtime.ExitError", "the worker is gone");
        }
        let outcome = self.await_outcome(&worker, &function.spec, rx).await;
        {
            let mut figures = lock(&self.figures);
            let f = figures.entry(binary.to_string()).or_default();
            f.invocations += 1;
            if let Some(kib) = worker.pid.and_then(peak_rss_kib) {
                f.peak_rss_kib = f.peak_rss_kib.max(kib);
            }
        }
        match &outcome {
            Outcome::Error { error_type, .. }
                if error_type.starts_with("Runtime.") || error_type.starts_with("Sandbox.") =>
            {
                worker.stop();
                lock(&self.workers).remove(&worker.id);
            }
            _ if worker.exited.borrow().is_some() => {
                lock(&self.workers).remove(&worker.id);
            }
            _ => lock(&self.idle)
                .entry(binary.to_string())
                .or_default()
                .push_back(worker),
        }
        outcome
    }

    async fn await_outcome(
        &self,
        worker: &Arc<Worker>,
        spec: &FunctionSpec,
        rx: oneshot::Receiver<Outcome>,
    ) -> Outcome {
        let mut exited = worker.exited.clone();
        let memory_kib = spec.memory_mb * 1024;
        let pid = worker.pid;
        let over_memory = async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if let Some(rss) = pid.and_then(current_rss_kib) {
                    if rss > memory_kib {
                        return rss;
                    }
                }
            }
        };
        tokio::select! {
            outcome = rx => outcome.unwrap_or_else(|_| runtime_error("Runtime.ExitError", "the worker dropped the invocation")),
            _ = exited.wait_for(Option::is_some) => {
                let why = worker.exited.borrow().clone().unwrap_or_default();
                runtime_error("Runtime.ExitError", &format!("RequestId: local Error: Runtime exited: {why}"))
            }
            _ = tokio::time::sleep(spec.timeout) => {
                worker.stop();
                runtime_error("Sandbox.Timedout", &format!("Task timed out after {:.2} seconds", spec.timeout.as_secs_f64()))
            }
            rss = over_memory => {
                worker.stop();
                runtime_error("Runtime.OutOfMemory", &format!(
                    "RequestId: local Error: Runtime exited: memory {} MB exceeds MemorySize {} MB",
                    rss / 1024, spec.memory_mb))
            }
        }
    }

    fn take_idle(&self, binary: &str) -> Option<Arc<Worker>> {
        let mut idle = lock(&self.idle);
        let queue = idle.get_mut(binary)?;
        while let Some(w) = queue.pop_front() {
            if w.exited.borrow().is_none() {
                return Some(w);
            }
        }
        None
    }

    async fn spawn(&self, function: &Function) -> Result<Arc<Worker>, String> {
        let spec = &function.spec;
        let path = self.bin_dir.join(&spec.binary);
        if !path.is_file() {
            return Err(format!(
                "{} is not built (cargo build -p {})",
                path.display(),
                spec.binary
            ));
        }
        let id = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let creds = &function.credentials;
        let mut cmd = Command::new(&path);
        cmd.env_clear()
            .envs(&spec.environment)
            // Lambda gives `host:port`; `lambda_runtime` also takes a full URI, whose path routes
            // this worker's calls to its own queue on the one host port.
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://{}/runtime/{id}", self.host_addr),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", deployed_name(spec))
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", deployed_name(spec)),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{id}"))
            .env("AWS_REGION", &self.region)
            .env("AWS_DEFAULT_REGION", &self.region)
            .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
            .env("AWS_SESSION_TOKEN", &creds.session_token)
            // Every AWS call goes through the host, which enforces the role's policy.
            .env("AWS_ENDPOINT_URL", format!("http://{}", self.host_addr))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("_HANDLER", "bootstrap")
            .env("TZ", ":UTC")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("starting {}: {e}", path.display()))?;
        let pid = child.id();
        let (events_tx, events_rx) = mpsc::channel(1);
        let (exit_tx, exit_rx) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let tail = Arc::new(Mutex::new(VecDeque::<String>::new()));
        let log_path = self.log_dir.join(format!("{}.log", spec.binary));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tail = tail.clone();
            let log_path = log_path.clone();
            let output = self.output.clone();
            let function = spec.binary.clone();
            tokio::spawn(async move {
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log_path)
                    .await
                    .ok();
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(f) = file.as_mut() {
                        let _ = f.write_all(format!("[{id}] {line}\n").as_bytes()).await;
                    }
                    {
                        let mut out = lock(&output);
                        out.push_back(format!("[{function}] {line}"));
                        if out.len() > OUTPUT_KEPT {
                            out.pop_front();
                        }
                    }
                    let mut t = lock(&tail);
                    t.push_back(line);
                    if t.len() > 8 {
                        t.pop_front();
                    }
                }
            });
        }
        tokio::spawn(async move {
            let status = tokio::select! {
                s = child.wait() => s.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = kill_rx => {
                    let _ = child.kill().await;
                    "signal: 9 (SIGKILL)".to_string()
                }
            };
            // Let the output readers drain the last lines.
            tokio::time::sleep(Duration::from_millis(20)).await;
            let last: Vec<String> = lock(&tail).iter().cloned().collect();
            let _ = exit_tx.send(Some(format!("{status}; last output: {}", last.join(" | "))));
        });
        let worker = Arc::new(Worker {
            id,
            binary: spec.binary.clone(),
            pid,
            events: Mutex::new(Some(events_tx)),
            inbox: tokio::sync::Mutex::new(events_rx),
            pending: Mutex::default(),
            exited: exit_rx,
            kill: Mutex::new(Some(kill_tx)),
            started,
            crash: std::sync::atomic::AtomicBool::new(false),
            warm: std::sync::atomic::AtomicBool::new(false),
        });
        lock(&self.workers).insert(id, worker.clone());
        lock(&self.figures)
            .entry(spec.binary.clone())
            .or_default()
            .cold_starts += 1;
        info!(function = %spec.binary, worker = id, "cold start");
        Ok(worker)
    }

    fn worker(&self, id: u64) -> Option<Arc<Worker>> {
        lock(&self.workers).get(&id).cloned()
    }

    /// Stops every worker.
    pub fn shutdown(&self) {
        for w in lock(&self.workers).drain().map(|(_, w)| w) {
            w.stop();
        }
        lock(&self.idle).clear();
    }

    /// The Runtime API routes, mounted by the host under `/runtime/{worker}`.
    pub fn routes(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/runtime/{worker}/2018-06-01/runtime/invocation/next",
                get(next),
            )
            .route(
                "/runtime/{worker}/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route(
                "/runtime/{worker}/2018-06-01/runtime/invocation/{id}/error",
                post(error),
            )
            .route(
                "/runtime/{worker}/2018-06-01/runtime/init/error",
                post(init_error),
            )
            .with_state(self.clone())
    }
}

impl Worker {
    fn stop(&self) {
        if let Some(k) = lock(&self.kill).take() {
            let _ = k.send(());
        }
        lock(&self.events).take();
    }
}

impl Drop for FunctionRuntime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn runtime_error(error_type: &str, message: &str) -> Outcome {
    Outcome::Error {
        error_type: error_type.to_string(),
        message: message.to_string(),
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn current_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:")
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:")
}

async fn next(State(rt): State<Arc<FunctionRuntime>>, Path(worker): Path<u64>) -> Response {
    let Some(w) = rt.worker(worker) else {
        return (StatusCode::GONE, "unknown worker").into_response();
    };
    let event = w.inbox.lock().await.recv().await;
    let Some(event) = event else {
        // Retired: the process is stopped; a long poll that never answers is what Lambda does
        // to a frozen sandbox.
        std::future::pending::<()>().await;
        return StatusCode::GONE.into_response();
    };
    // The first event a process takes: its cold start (process start → ready for work; the
    // event waited for it, as Lambda's first invocation waits for init).
    if !w.warm.swap(true, Ordering::SeqCst) {
        lock(&rt.figures)
            .entry(w.binary.clone())
            .or_default()
            .init_ms
            .push(w.started.elapsed().as_secs_f64() * 1000.0);
    }
    if w.crash.load(Ordering::SeqCst) {
        w.stop();
        std::future::pending::<()>().await;
    }
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("lambda-runtime-aws-request-id", event.request_id.clone()),
        ("lambda-runtime-deadline-ms", event.deadline_ms.to_string()),
        (
            "lambda-runtime-invoked-function-arn",
            event.function_arn.clone(),
        ),
        (
            "lambda-runtime-trace-id",
            format!("Root=1-{:08x}-local", now_ms() / 1000),
        ),
        ("content-type", "application/json".to_string()),
    ] {
        if let Ok(v) = v.parse() {
            headers.insert(k, v);
        }
    }
    (StatusCode::OK, headers, event.payload).into_response()
}

fn complete(rt: &FunctionRuntime, worker: u64, id: &str, outcome: Outcome) -> Response {
    let Some(w) = rt.worker(worker) else {
        return (StatusCode::GONE, "unknown worker").into_response();
    };
    let sender = lock(&w.pending).remove(id);
    match sender {
        Some(tx) => {
            let _ = tx.send(outcome);
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
        )
            .into_response(),
    }
}

async fn response(
    State(rt): State<Arc<FunctionRuntime>>,
    Path((worker, id)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    // Lambda's synchronous response limit.
    if body.len() > 6 * 1024 * 1024 {
        return complete(
            &rt,
            worker,
            &id,
            runtime_error(
                "Function.ResponseSizeTooLarge",
                "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
            ),
        );
    }
    complete(&rt, worker, &id, Outcome::Response(body))
}

async fn error(
    State(rt): State<Arc<FunctionRuntime>>,
    Path((worker, id)): Path<(u64, String)>,
    body: Bytes,
) -> Response {
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let outcome = Outcome::Error {
        error_type: doc["errorType"].as_str().unwrap_or("Unhandled").to_string(),
        message: doc["errorMessage"].as_str().unwrap_or("").to_string(),
    };
    complete(&rt, worker, &id, outcome)
}

async fn init_error(
    State(rt): State<Arc<FunctionRuntime>>,
    Path(worker): Path<u64>,
    body: Bytes,
) -> Response {
    warn!(worker, error = %String::from_utf8_lossy(&body), "init error");
    if let Some(w) = rt.worker(worker) {
        w.stop();
    }
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

/// The function's name as CloudFormation generates it when the template sets none
/// (`<stack>-<LogicalId>-<suffix>`): code must not expect to find its step in it.
fn deployed_name(spec: &FunctionSpec) -> String {
    format!("{}-{}-LOCAL0000", super::names::STACK_NAME, spec.logical_id)
}

/// The template values of the local stack that do not depend on provisioning, with
/// placeholders for the rest (secrets, zone, buckets): enough to start every function, as the
/// template reader's tests and the cold-start benchmark do.
pub fn placeholder_values() -> LocalValues {
    let mut v = base_values();
    v.set(
        "WorkspaceSecretArns",
        serde_json::json!(["arn:aws:secretsmanager:us-west-2:123456789012:secret:x"]),
    )
    .set(
        "ApprovalSigningSecretArn",
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:k",
    )
    .set(
        "DataBucketArns",
        serde_json::json!(["arn:aws:s3:::b", "arn:aws:s3:::b/*"]),
    )
    .set("HostedZoneId", "Z1")
    .set("ApproverEmails", serde_json::json!(["a@example.com"]));
    v
}

/// The values every local stack shares: pseudo parameters, the ledger, topics, state machines.
pub fn base_values() -> LocalValues {
    use super::names::{
        machine_arn, ACCOUNT, APPROVAL_TOPIC, FAILOVER_MACHINE, LEDGER_BUCKET, PLAN_KEY,
        READINESS_MACHINE, REGION, STACK_ID, STACK_NAME, TOPIC,
    };
    let mut v = LocalValues::default();
    v.set("AWS::Region", REGION)
        .set("AWS::AccountId", ACCOUNT)
        .set("AWS::Partition", "aws")
        .set("AWS::URLSuffix", "amazonaws.com")
        .set("AWS::StackName", STACK_NAME)
        .set("AWS::StackId", STACK_ID)
        .set("LedgerBucket", LEDGER_BUCKET)
        .set("LedgerBucket.Arn", format!("arn:aws:s3:::{LEDGER_BUCKET}"))
        .set("PlanKey", PLAN_KEY)
        // The statically stable switch's pieces, as the local ARC plays them.
        .set("StaticSwitch", "routing_control")
        .set(
            "SwitchControlPanel.ControlPanelArn",
            super::names::ARC_CONTROL_PANEL,
        )
        .set(
            "EventsTopic",
            format!("arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}"),
        )
        .set(
            "ApprovalTopic",
            format!("arn:aws:sns:{REGION}:{ACCOUNT}:{APPROVAL_TOPIC}"),
        )
        .set("FailoverStateMachine", machine_arn(FAILOVER_MACHINE))
        .set("ReadinessStateMachine", machine_arn(READINESS_MACHINE))
        .set(
            "FullDrillStateMachine",
            machine_arn(super::names::FULL_DRILL_MACHINE),
        )
        .set(
            "ReplicationRoleArn",
            format!("arn:aws:iam::{ACCOUNT}:role/s3-replication"),
        )
        // API Gateway is played by the host: the approval links point at it.
        .set("ApprovalApi", "local-approval-api");
    v
}
