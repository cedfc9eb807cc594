//! moto, the local AWS: a Python venv in the repository (`.venv`, created on first use), and a
//! `moto_server` process on loopback with Step Functions execution switched on. Its Lambda
//! invocations go to `MOTO_PORT`, where our Lambda host listens.

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

/// Path of `moto_server`, creating the venv and installing moto if needed.
pub async fn ensure_moto(root: &Path) -> Result<PathBuf> {
    if let Ok(explicit) = std::env::var("LIFEBOAT_MOTO_SERVER") {
        return Ok(PathBuf::from(explicit));
    }
    let venv = root.join(".venv");
    let server = venv.join("bin").join("moto_server");
    if server.is_file() {
        return Ok(server);
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
    Ok(server)
}

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Moto {
    /// Starts moto on `port` with Lambda invocations routed to `lambda_port`.
    pub async fn start(server: &Path, port: u16, lambda_port: u16) -> Result<Moto> {
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_PORT", lambda_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
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

/// A free loopback port (bound and released; the small race is acceptable locally).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}
