//! `databricks-emulator --port <P> --fixture <demo|large|empty> --token <PAT> [--role primary|dr]
//! [--seed N] [--lifecycle-delay-ms MS] [--lifecycle-profile uniform|realistic] [--clock-speed X]
//! [--no-drift] [--client-id ID --client-secret S]`, or for the account-level Managed DR API
//! `databricks-emulator --port <P> --account-id <ID> --client-id ID --client-secret S
//! [--account-workspace ID:REGION]... [--failover-ms MS]`
//!
//! Listens on 127.0.0.1 only and prints `listening on http://127.0.0.1:<port>` as its first
//! stdout line. Ctrl-C / SIGTERM → exit 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use databricks_emulator::{
    serve, serve_account, AccountConfig, EmulatorConfig, Fixture, LifecycleProfile, Role,
};

#[derive(Parser, Debug)]
#[command(
    name = "databricks-emulator",
    about = "Databricks workspace REST API emulator"
)]
struct Args {
    /// Port on 127.0.0.1 (0 = pick a free one).
    #[arg(long)]
    port: u16,
    /// The workspace's fixture (workspace mode).
    #[arg(long, value_enum, required_unless_present = "account_id")]
    fixture: Option<Fixture>,
    /// The accepted personal access token (workspace mode).
    #[arg(long, required_unless_present = "account_id")]
    token: Option<String>,
    /// Serve the account-level Managed DR API for this account id instead of a workspace
    /// (OAuth M2M with --client-id/--client-secret).
    #[arg(long, conflicts_with_all = ["fixture", "token"], requires_all = ["client_id", "client_secret"])]
    account_id: Option<String>,
    /// A workspace the account knows, `ID:REGION` (account mode; repeatable).
    #[arg(long = "account-workspace")]
    account_workspaces: Vec<String>,
    /// Real time a failover takes (account mode).
    #[arg(long, default_value_t = 2000)]
    failover_ms: u64,
    #[arg(long, value_enum, default_value = "primary")]
    role: Role,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Real time of every transitional state under the uniform lifecycle profile.
    #[arg(long, default_value_t = 1000)]
    lifecycle_delay_ms: u64,
    /// `uniform`: every transition takes --lifecycle-delay-ms; `realistic`: per-transition
    /// emulated durations (e.g. cluster start 180–300 s) divided by --clock-speed.
    #[arg(long, value_enum, default_value = "uniform")]
    lifecycle_profile: LifecycleProfile,
    /// `--fixture large --role dr`: mirror the primary exactly, without the documented drift.
    #[arg(long)]
    no_drift: bool,
    #[arg(long, default_value_t = 1.0)]
    clock_speed: f64,
    /// Emulated seconds a non-continuous run lasts.
    #[arg(long, default_value_t = 30)]
    run_duration_secs: u64,
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long)]
    client_secret: Option<String>,
    #[arg(long)]
    workspace_id: Option<u64>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    if let Some(account_id) = args.account_id.clone() {
        return serve_account_api(args, account_id).await;
    }
    let (Some(fixture), Some(token)) = (args.fixture, args.token.clone()) else {
        eprintln!("--fixture and --token are required for a workspace");
        return ExitCode::from(2);
    };
    let mut cfg = EmulatorConfig::new(fixture, token)
        .role(args.role)
        .seed(args.seed)
        .lifecycle_delay(Duration::from_millis(args.lifecycle_delay_ms))
        .lifecycle_profile(args.lifecycle_profile)
        .dr_drift(!args.no_drift)
        .clock_speed(args.clock_speed)
        .run_duration(Duration::from_secs(args.run_duration_secs));
    if let Some(id) = args.client_id {
        cfg.oauth_client_id = id;
    }
    if let Some(s) = args.client_secret {
        cfg.oauth_client_secret = s;
    }
    if let Some(w) = args.workspace_id {
        cfg.workspace_id = w;
    }
    let running = match serve(cfg, args.port).await {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            eprintln!("port {} is busy: {e}", args.port);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cannot start the emulator on port {}: {e}", args.port);
            return ExitCode::from(1);
        }
    };
    announce_and_wait(running.url()).await;
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// Prints the first stdout line callers wait for, then waits for Ctrl-C / SIGTERM.
async fn announce_and_wait(url: &str) {
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {url}");
        let _ = out.flush();
    }
    wait_for_signal().await;
}

async fn serve_account_api(args: Args, account_id: String) -> ExitCode {
    let mut cfg = AccountConfig::new(
        account_id,
        args.client_id.unwrap_or_default(),
        args.client_secret.unwrap_or_default(),
    )
    .failover_duration(Duration::from_millis(args.failover_ms));
    for w in &args.account_workspaces {
        let Some((id, region)) = w.split_once(':') else {
            eprintln!("--account-workspace {w:?}: expected ID:REGION");
            return ExitCode::from(2);
        };
        cfg = cfg.workspace(id, region);
    }
    let running = match serve_account(cfg, args.port).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the account API on port {}: {e}", args.port);
            return ExitCode::from(1);
        }
    };
    announce_and_wait(running.url()).await;
    running.shutdown().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
