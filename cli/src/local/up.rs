//! `lifeboat local up|down|env`: a long-running local stack — moto, two emulated workspaces
//! and the Lambda host, provisioned as the template would — whose endpoints go to a state file,
//! so that every operator command works against it with `--local` exactly as against AWS.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{
    LocalEnv, LocalOptions, FAILBACK_MACHINE, FAILOVER_MACHINE, LEDGER_BUCKET, PLAN_KEY,
    READINESS_MACHINE, REGION,
};
use crate::stack::{LocalState, Outputs};

/// The state of a started local environment, as `up` writes it.
pub fn state_of(env: &LocalEnv) -> LocalState {
    LocalState {
        moto_url: env.moto.url.clone(),
        region: REGION.into(),
        outputs: Outputs {
            ledger_bucket: LEDGER_BUCKET.into(),
            failover_state_machine_arn: super::machine_arn(FAILOVER_MACHINE),
            failback_state_machine_arn: super::machine_arn(FAILBACK_MACHINE),
            readiness_state_machine_arn: super::machine_arn(READINESS_MACHINE),
            plan_key: PLAN_KEY.into(),
        },
        operator_access_key_id: env.operator.access_key_id.clone(),
        operator_secret_access_key: env.operator.secret_access_key.clone(),
        primary_url: env.primary.url().to_string(),
        dr_url: env.dr.url().to_string(),
        host_url: env.host.url.clone(),
        pid: std::process::id(),
    }
}

/// Writes the state file (only the owner may read it: it holds moto credentials).
pub fn write_state(path: &Path, state: &LocalState) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Whether a process runs (a zombie — ended, not yet reaped by its parent — does not).
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state ...`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Starts the local stack and serves until Ctrl-C, SIGTERM or `lifeboat local down`;
/// `binaries`: the functions run as their shipped binaries (built first when `build`).
pub async fn up(plan_path: &Path, state_path: &Path, binaries: bool, build: bool) -> Result<()> {
    if let Ok(text) = std::fs::read_to_string(state_path) {
        if let Ok(old) = serde_json::from_str::<LocalState>(&text) {
            if pid_alive(old.pid) && old.pid != std::process::id() {
                bail!(
                    "a local stack already runs (pid {}, state {}); `lifeboat local down` first",
                    old.pid,
                    state_path.display()
                );
            }
        }
    }
    let mut plan = crate::drill::load_plan(plan_path)?;
    if binaries && build {
        println!("building the function binaries (cargo build; a no-op when fresh)...");
        super::build_functions(&super::moto::repo_root()?)?;
    }
    println!("starting moto, two emulated workspaces and the Lambda host...");
    let env = LocalEnv::start(LocalOptions {
        binaries,
        ..LocalOptions::default()
    })
    .await?;
    env.provision(&mut plan).await?;
    let state = state_of(&env);
    write_state(state_path, &state)?;
    println!(
        "local stack up (plan {}); state in {}\n\n{}\nCommands: lifeboat --local status | preview | failover | approve | ...\nStop with `lifeboat local down` or Ctrl-C.",
        plan.name,
        state_path.display(),
        render_env(&state, state_path)
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    // `lifeboat local down` removes the state file: the stack notices and stops (no signal
    // needed, so no `kill` binary either).
    let removed = async {
        while state_path.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = removed => {}
    }
    println!("stopping the local stack");
    env.stop().await;
    let _ = std::fs::remove_file(state_path);
    Ok(())
}

/// Stops the local stack of a state file (removes the file `up` watches, then waits for it to
/// end).
pub async fn down(state_path: &Path) -> Result<()> {
    let state = LocalState::load(state_path)?;
    // Removing the state file is the stop request `up` watches for.
    std::fs::remove_file(state_path)
        .with_context(|| format!("removing {}", state_path.display()))?;
    for _ in 0..200 {
        if !pid_alive(state.pid) {
            println!("local stack stopped");
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    bail!(
        "the local stack (pid {}) did not stop within 20 s; stop it with Ctrl-C in its terminal",
        state.pid
    )
}

fn render_env(state: &LocalState, state_path: &Path) -> String {
    format!(
        "export AWS_ENDPOINT_URL={moto}\nexport AWS_REGION={region}\nexport AWS_ACCESS_KEY_ID={key}\nexport AWS_SECRET_ACCESS_KEY={secret}\nexport LEDGER_BUCKET={bucket}\nexport LIFEBOAT_STATE={state}\n",
        moto = state.moto_url,
        region = state.region,
        key = state.operator_access_key_id,
        secret = state.operator_secret_access_key,
        bucket = state.outputs.ledger_bucket,
        state = state_path.display(),
    )
}

/// The environment that points the AWS CLI/SDKs and `lifeboat` at the local stack.
pub fn env(state_path: &Path) -> Result<String> {
    Ok(render_env(&LocalState::load(state_path)?, state_path))
}
