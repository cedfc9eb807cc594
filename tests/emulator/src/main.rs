//! `databricks-emulator --port <P> --fixture <demo|large|empty> --token <PAT> [--role primary|dr]
//! [--seed N] [--lifecycle-delay-ms MS] [--lifecycle-profile uniform|realistic] [--clock-speed X]
//! [--no-drift] [--client-id ID --client-secret S]`
//!
//! Listens on 127.0.0.1 only and prints `listening on http://127.0.0.1:<port>` as its first
//! stdout line. Ctrl-C / SIGTERM → exit 0.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use databricks_emulator::{serve, EmulatorConfig, Fixture, LifecycleProfile, Role};

#[derive(Parser, Debug)]
#[command(
    name = "databricks-emulator",
    about = "Databricks workspace REST API emulator"
)]
struct Args {
    /// Port on 127.0.0.1 (0 = pick a free one).
    #[arg(long)]
    port: u16,
    #[arg(long, value_enum)]
    fixture: Fixture,
    /// The accepted personal access token.
    #[arg(long)]
    token: String,
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
    let mut cfg = EmulatorConfig::new(args.fixture, args.token)
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
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", running.url());
        let _ = out.flush();
    }
    wait_for_signal().await;
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
