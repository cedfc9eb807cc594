//! moto, the local AWS: a Python venv in the repository (`.venv`, created on first use), and a
//! moto server on loopback with Step Functions execution switched on. Its Lambda invocations go
//! to `MOTO_PORT`, where our Lambda host listens. The server is started through
//! `tests/moto/lifeboat_moto.py`, which gives moto the Step Functions semantics a DR
//! orchestrator depends on and moto lacks (child executions started by a task, the history and
//! payload quotas, refusal of an answer to a task no longer waiting).

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// The moto version the project is tested with.
pub const MOTO_REQUIREMENT: &str = "moto[server]==5.2.5";

/// The repository root: the nearest ancestor of the current directory (or of this crate)
/// holding `statemachine/`.
pub fn repo_root() -> Result<PathBuf> {
    let candidates = [
        std::env::current_dir().ok(),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    ];
    for start in candidates.into_iter().flatten() {
        for dir in start.ancestors() {
            if dir.join("statemachine").is_dir() && dir.join("Cargo.toml").is_file() {
                return Ok(dir.to_path_buf());
            }
        }
    }
    bail!("cannot find the repository root (a folder with statemachine/ and Cargo.toml) above the current directory")
}

/// How to start the local AWS: the venv's Python running the launcher, or (with
/// `LIFEBOAT_MOTO_SERVER`) a `moto_server` of your own, started as it is.
#[derive(Debug, Clone)]
pub enum MotoServer {
    /// `python tests/moto/lifeboat_moto.py`.
    Launcher {
        /// The venv's Python.
        python: PathBuf,
        /// `tests/moto/lifeboat_moto.py`.
        launcher: PathBuf,
    },
    /// A `moto_server` executable.
    Plain(PathBuf),
}

/// The moto server to start, creating the venv and installing moto if needed.
pub async fn ensure_moto(root: &Path) -> Result<MotoServer> {
    if let Ok(explicit) = std::env::var("LIFEBOAT_MOTO_SERVER") {
        return Ok(MotoServer::Plain(PathBuf::from(explicit)));
    }
    let venv = root.join(".venv");
    let server = venv.join("bin").join("moto_server");
    let launcher = MotoServer::Launcher {
        python: venv.join("bin").join("python"),
        launcher: root.join("tests").join("moto").join("lifeboat_moto.py"),
    };
    if server.is_file() {
        return Ok(launcher);
    }
    eprintln!(
        "setting up the local AWS emulator (python venv with {MOTO_REQUIREMENT}) in {} ...",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await
        .context("running python3 -m venv (is python3 installed?)")?;
    if !status.success() {
        bail!("python3 -m venv {} failed", venv.display());
    }
    let status = Command::new(venv.join("bin").join("pip"))
        .args(["install", "-q", MOTO_REQUIREMENT])
        .status()
        .await
        .context("running pip install")?;
    if !status.success() || !server.is_file() {
        bail!("pip install {MOTO_REQUIREMENT} failed");
    }
    Ok(launcher)
}

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Moto {
    /// Starts moto on `port` with Lambda invocations routed to `lambda_port`.
    pub async fn start(server: &MotoServer, port: u16, lambda_port: u16) -> Result<Moto> {
        let (program, mut command) = match server {
            MotoServer::Launcher { python, launcher } => {
                let mut c = Command::new(python);
                c.arg(launcher);
                (python, c)
            }
            MotoServer::Plain(server) => (server, Command::new(server)),
        };
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", lambda_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let http = lifeboat_core::http::client();
        let mut ready = false;
        for _ in 0..150 {
            if http.get(format!("{url}/moto-api/")).send().await.is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            bail!("moto did not answer on {url} within 15 s");
        }
        // Another process's moto may have answered on that port while ours failed to bind it.
        let mut child = child;
        if let Some(status) = child.try_wait().context("checking moto")? {
            bail!("moto exited ({status}) instead of serving {url}: was the port taken?");
        }
        http.post(format!("{url}/moto-api/config"))
            .body(
                r#"{"stepfunctions":{"execute_state_machine":true},"lambda":{"use_docker":false}}"#,
            )
            .send()
            .await
            .context("configuring moto")?
            .error_for_status()
            .context("configuring moto")?;
        Ok(Moto { child, url })
    }

    /// Stops moto.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A free loopback port, never the same twice in this process: a port is bound and released
/// to learn it, and Linux may hand the same number to the next caller, so two environments
/// started at once (the fault matrix's concurrent rows) could both start moto on it — one moto
/// would serve both, and the second provisioning would find the first's resources.
pub fn free_port() -> Result<u16> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..100 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        let port = l.local_addr()?.port();
        let mut handed = HANDED_OUT
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if handed.insert(port) {
            return Ok(port);
        }
    }
    bail!("no loopback port that was not handed out before")
}
