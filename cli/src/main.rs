//! `lifeboat`: run a local DR drill, decide approvals, check a plan.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};
use lifeboat::{
    drill::{self, Answer, DrillOptions},
    operate::{self, Refused},
    stack::Stack,
};
use lifeboat_core::{plan::Direction, run::RunId};

#[derive(Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Disaster-recovery orchestration for Databricks workspaces on AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum FixtureArg {
    Demo,
    Large,
    Empty,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Failover,
    Readiness,
    Full,
}

#[derive(Clone, Copy, ValueEnum)]
enum DirectionArg {
    Failover,
    Failback,
}

impl From<DirectionArg> for Direction {
    fn from(d: DirectionArg) -> Self {
        match d {
            DirectionArg::Failover => Direction::Failover,
            DirectionArg::Failback => Direction::Failback,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum StageArg {
    Failover,
    RpoBreach,
}

impl From<StageArg> for lifeboat_core::approval::ApprovalStage {
    fn from(s: StageArg) -> Self {
        match s {
            StageArg::Failover => lifeboat_core::approval::ApprovalStage::Failover,
            StageArg::RpoBreach => lifeboat_core::approval::ApprovalStage::RpoBreach,
        }
    }
}

/// Which stack a command acts on.
#[derive(clap::Args, Clone)]
struct Target {
    /// The local stack of `lifeboat local up` (its state file) instead of a deployed one.
    #[arg(long, global = true)]
    local: bool,
    /// The local stack's state file.
    #[arg(long, global = true, env = "LIFEBOAT_STATE")]
    state: Option<PathBuf>,
    /// The deployed stack's name (its CloudFormation outputs name the ledger and machines).
    #[arg(
        long,
        global = true,
        env = "LIFEBOAT_STACK",
        default_value = "lifeboat"
    )]
    stack: String,
}

impl Target {
    async fn stack(&self) -> anyhow::Result<Stack> {
        Stack::resolve(self.local, self.state.as_deref(), &self.stack).await
    }
}

/// What `failover` and `failback` take.
#[derive(clap::Args)]
struct StartArgs {
    /// Why (recorded in the run's trigger and the report).
    #[arg(long, default_value = "")]
    reason: String,
    /// Start without asking for confirmation.
    #[arg(long)]
    yes: bool,
    /// Return once started instead of following the run.
    #[arg(long)]
    detach: bool,
    /// Accept blocking configuration drift, with the reason (recorded with who and when; the
    /// drift is still listed in the evidence and the report). Objects the plan starts missing
    /// at the target still refuse the run.
    #[arg(long, value_name = "REASON")]
    accept_drift: Option<String>,
    #[command(flatten)]
    target: Target,
}

#[derive(Subcommand)]
enum LocalCommand {
    /// Start moto, two emulated workspaces and the Lambda host, provision them as the template
    /// would, write the state file, and keep running until `lifeboat local down` or Ctrl-C.
    Up {
        /// The DR plan to provision.
        #[arg(long, default_value = "lifeboat.toml")]
        plan: PathBuf,
        /// Run the step handlers inside this process instead of the shipped function binaries.
        #[arg(long)]
        in_process: bool,
        /// Use the function binaries as built (no `cargo build` first; tests that run under
        /// `cargo test`, which holds the build lock, build them beforehand).
        #[arg(long)]
        no_build: bool,
    },
    /// Stop the local stack.
    Down,
    /// Print the environment that points the AWS CLI/SDKs at the local stack.
    Env,
}

#[derive(Subcommand)]
enum Command {
    /// Start a failover of the stack's plan (approval still required), then follow it.
    Failover {
        #[command(flatten)]
        start: StartArgs,
    },
    /// Start a failback (needs a completed failover), then follow it.
    Failback {
        #[command(flatten)]
        start: StartArgs,
    },
    /// Where a run is (default: the one holding the lock, else the latest).
    Status {
        /// Run id.
        run: Option<String>,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Refresh every few seconds until the run ends.
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        target: Target,
    },
    /// What a failover (or failback) would do now, with zero writes.
    Preview {
        /// failover or failback.
        #[arg(long, value_enum, default_value = "failover")]
        kind: DirectionArg,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Release the plan's lock when its holder no longer runs (`--force` with `--reason`
    /// otherwise); audited with your identity.
    Unlock {
        /// Release even though the holder may still run.
        #[arg(long)]
        force: bool,
        /// Why (required with --force).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// A long-running local stack for the other commands (`--local`).
    Local {
        #[command(subcommand)]
        command: LocalCommand,
        /// The state file.
        #[arg(long, global = true, env = "LIFEBOAT_STATE")]
        state: Option<PathBuf>,
    },
    /// Run a local failover drill end to end (emulated workspaces, moto, real state machine and
    /// handlers) and write its report.
    Drill {
        /// The DR plan (default: lifeboat.toml; plans/large.toml with --fixture large).
        #[arg(long)]
        plan: Option<PathBuf>,
        /// Approve without asking.
        #[arg(long)]
        yes: bool,
        /// Where reports are written (one folder per run).
        #[arg(long, default_value = "target/lifeboat-reports")]
        out: PathBuf,
        /// Workspace fixture.
        #[arg(long, value_enum, default_value = "demo")]
        fixture: FixtureArg,
        /// `failover`: an AWS Health event starts a failover; `readiness`: the weekly
        /// non-disruptive drill; `full`: failover then failback on the drill DNS name.
        #[arg(long, value_enum, default_value = "failover")]
        kind: KindArg,
        /// Start the drill in the deployed stack instead (AWS credentials and
        /// READINESS_STATE_MACHINE_ARN / FULL_DRILL_STATE_MACHINE_ARN from the stack outputs).
        #[arg(long)]
        aws: bool,
        /// Run the step handlers inside this process instead of the shipped function binaries
        /// (faster to start; skips the template's environment and IAM enforcement).
        #[arg(long)]
        in_process: bool,
    },
    /// RTO per phase, RPO per bucket and the safety verdicts across runs (`--trend`), with
    /// slower phases flagged: from the stack's ledger, or the folders of `lifeboat drill`.
    Report {
        /// Show the trend (the only view for now).
        #[arg(long)]
        trend: bool,
        /// Read the folders `lifeboat drill` wrote (e.g. target/lifeboat-reports) instead of
        /// the stack's ledger.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Also write the trend as a self-contained HTML page with a chart per phase.
        #[arg(long)]
        html: Option<PathBuf>,
        /// Flag a phase over this many times its earlier median (default: the plan's
        /// `objectives.regression_factor`, 1.5 for folders).
        #[arg(long)]
        regression_factor: Option<f64>,
        #[command(flatten)]
        target: Target,
    },
    /// Approve a waiting run (uses LEDGER_BUCKET and the AWS environment).
    Approve {
        /// Run id (the execution name).
        #[arg(long)]
        run: String,
        /// Which decision: the failover itself, or continuing despite an RPO breach.
        #[arg(long, value_enum, default_value = "failover")]
        stage: StageArg,
        /// Comment for the audit.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Reject a waiting run: nothing is touched at either site.
    Reject {
        /// Run id.
        #[arg(long)]
        run: String,
        /// Which decision.
        #[arg(long, value_enum, default_value = "failover")]
        stage: StageArg,
        /// Comment for the audit.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Open the activation gate of a run whose primary cannot be fenced through its API (an
    /// outage): accepted only when the run's data fence is confirmed; audited with who and why.
    Override {
        /// Run id.
        #[arg(long)]
        run: String,
        /// Why (required; recorded in the audit and the report).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        target: Target,
    },
    /// Decide a run paused after a failed step: retry it, continue past it, or abort (fence DR
    /// again and restore the primary).
    Intervene {
        /// Run id.
        #[arg(long)]
        run: String,
        /// retry, continue or abort.
        #[arg(long)]
        action: String,
        /// Comment for the audit.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Validate a plan file and exit (0 valid, 2 invalid).
    CheckPlan {
        /// The plan.
        #[arg(default_value = "lifeboat.toml")]
        plan: PathBuf,
    },
}

async fn decide(
    target: Target,
    run: String,
    stage: StageArg,
    decision: lifeboat_core::approval::Decision,
    comment: Option<String>,
) -> anyhow::Result<()> {
    let run_id = RunId::parse(&run).map_err(|e| Refused(format!("run id `{run}`: {e}")))?;
    let stack = target.stack().await?;
    let who = stack.caller().await?;
    let vote = match lifeboat_core::approval::decide::decide(
        &stack.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id: &run_id,
            stage: stage.into(),
            decision,
            who: &who,
            channel: "cli",
            comment,
        },
    )
    .await
    {
        Ok(v) => v,
        Err(e @ lifeboat_core::approval::decide::DecideError::Step(_)) => return Err(e.into()),
        Err(e) => return Err(Refused(e.to_string()).into()),
    };
    println!(
        "{} recorded for run {run_id} by {} at {}{}",
        vote.record.decision.as_str(),
        vote.record.approver,
        vote.record.decided_at,
        if vote.settled {
            String::new()
        } else {
            format!(
                " ({} of {} approvals; waiting for another approver)",
                vote.approvals, vote.required
            )
        }
    );
    Ok(())
}

async fn override_gate(target: Target, run: String, reason: String) -> anyhow::Result<()> {
    let run_id = RunId::parse(&run).map_err(|e| Refused(format!("run id `{run}`: {e}")))?;
    let stack = target.stack().await?;
    let who = stack.caller().await?;
    let o = lifeboat_core::fence::gate::open_gate(&stack.deps, &run_id, &reason, &who, "cli")
        .await
        .map_err(|e| Refused(e.to_string()))?;
    println!(
        "activation gate of run {run_id} opened by {} at {} (data fence confirmed {})",
        o.who, o.at, o.data_fence_confirmed_at
    );
    Ok(())
}

async fn intervene(
    target: Target,
    run: String,
    action: String,
    comment: Option<String>,
) -> anyhow::Result<()> {
    use lifeboat_core::intervention::{self, InterventionAction};
    let run_id = RunId::parse(&run).map_err(|e| Refused(format!("run id `{run}`: {e}")))?;
    let action = InterventionAction::parse(&action).map_err(Refused)?;
    let stack = target.stack().await?;
    let who = stack.caller().await?;
    let d = intervention::decide(&stack.deps, &run_id, action, &who, "cli", comment)
        .await
        .map_err(|e| Refused(e.to_string()))?;
    println!(
        "{} chosen for run {run_id} (step {}) by {} at {}",
        d.action.as_str(),
        d.failed_state,
        d.who,
        d.decided_at
    );
    Ok(())
}

/// Starts a failover/failback (after a confirmation unless `--yes`) and follows it.
async fn start_and_follow(args: StartArgs, direction: Direction) -> anyhow::Result<()> {
    let StartArgs {
        reason,
        yes,
        detach,
        accept_drift,
        target,
    } = args;
    let stack = target.stack().await?;
    let plan = stack.plan().await?;
    if !yes {
        print!(
            "Start a {} of plan {} (an approval will still be asked)? [y/N] ",
            format!("{direction:?}").to_lowercase(),
            plan.name
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Err(Refused("not started (answer y, or pass --yes)".into()).into());
        }
    }
    let started = operate::start(&stack, direction, &reason, accept_drift.as_deref()).await?;
    println!(
        "{} {}
  execution: {}
  status: lifeboat status {}",
        if started.already {
            "already started:"
        } else {
            "started"
        },
        started.run_id,
        started.execution_arn,
        started.run_id
    );
    if detach {
        return Ok(());
    }
    operate::follow(&stack, &started, std::io::stdout()).await?;
    Ok(())
}

async fn show_status(
    target: Target,
    run: Option<String>,
    json: bool,
    watch: bool,
) -> anyhow::Result<()> {
    let stack = target.stack().await?;
    loop {
        let s = match operate::status(&stack, run.as_deref()).await {
            Ok(s) => s,
            // No run yet: the readiness evaluation is still worth showing (on stdout); the
            // refusal stays a refusal (stderr, exit code 2).
            Err(e) if run.is_none() => {
                if let Ok(r) = operate::readiness(&stack).await {
                    if json {
                        println!("{}", serde_json::json!({ "readiness": r }));
                    } else {
                        print!(
                            "{}",
                            lifeboat_core::readiness::render(&r, chrono::Utc::now())
                        );
                    }
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if json {
            println!("{}", serde_json::to_string_pretty(&s)?);
        } else {
            print!("{}", operate::render_status(&s));
        }
        if !watch || s.execution_status != "RUNNING" {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        println!();
    }
}

/// Starts a drill in the deployed stack and says how to follow it.
async fn drill_in_aws(plan_path: PathBuf, kind: KindArg) -> anyhow::Result<()> {
    use lifeboat_core::incident::{start_drill, IngestOutput, ScheduledDrill};
    let plan = drill::load_plan(&plan_path)?;
    let drill = match kind {
        KindArg::Readiness => ScheduledDrill::Readiness,
        KindArg::Full => ScheduledDrill::Full,
        KindArg::Failover => anyhow::bail!(
            "in AWS a failover starts from an AWS Health event or the console; drills are --kind readiness or full"
        ),
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let config = lifeboat_core::kernel::DeployConfig {
        readiness_state_machine_arn: env("READINESS_STATE_MACHINE_ARN"),
        full_drill_state_machine_arn: env("FULL_DRILL_STATE_MACHINE_ARN"),
        ..Default::default()
    };
    let aws = lifeboat_core::aws::AwsClients::from_env().await;
    match start_drill(
        &aws.sfn,
        &config,
        &plan,
        drill,
        lifeboat_core::run::TriggerSource::Operator,
    )
    .await?
    {
        IngestOutput::Started {
            execution_arn,
            run_id,
        } => {
            println!("started {run_id}\n  execution: {execution_arn}");
            println!("  approve (if asked): lifeboat approve --run {run_id}");
            Ok(())
        }
        other => anyhow::bail!("not started: {other:?}"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LIFEBOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckPlan { plan } => match drill::load_plan(&plan) {
            Ok(p) => {
                println!(
                    "plan {} is valid ({} → {})",
                    p.name, p.sites.primary.region, p.sites.dr.region
                );
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Approve {
            run,
            stage,
            comment,
            target,
        } => {
            decide(
                target,
                run,
                stage,
                lifeboat_core::approval::Decision::Approve,
                comment,
            )
            .await
        }
        Command::Reject {
            run,
            stage,
            comment,
            target,
        } => {
            decide(
                target,
                run,
                stage,
                lifeboat_core::approval::Decision::Reject,
                comment,
            )
            .await
        }
        Command::Override {
            run,
            reason,
            target,
        } => override_gate(target, run, reason).await,
        Command::Intervene {
            run,
            action,
            comment,
            target,
        } => intervene(target, run, action, comment).await,
        Command::Failover { start } => start_and_follow(start, Direction::Failover).await,
        Command::Failback { start } => start_and_follow(start, Direction::Failback).await,
        Command::Status {
            run,
            json,
            watch,
            target,
        } => show_status(target, run, json, watch).await,
        Command::Preview { kind, json, target } => match target.stack().await {
            Ok(stack) => match operate::preview(&stack, kind.into()).await {
                Ok(p) if json => serde_json::to_string_pretty(&p)
                    .map(|t| println!("{t}"))
                    .map_err(Into::into),
                Ok(p) => {
                    print!("{}", operate::render_preview(&p));
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Command::Unlock {
            force,
            reason,
            target,
        } => match target.stack().await {
            Ok(stack) => operate::unlock(&stack, force, reason.as_deref())
                .await
                .map(|m| println!("{m}")),
            Err(e) => Err(e),
        },
        Command::Local { command, state } => {
            let state = state.unwrap_or_else(lifeboat::stack::default_state_path);
            match command {
                LocalCommand::Up {
                    plan,
                    in_process,
                    no_build,
                } => lifeboat::local::up::up(&plan, &state, !in_process, !no_build).await,
                LocalCommand::Down => lifeboat::local::up::down(&state).await,
                LocalCommand::Env => lifeboat::local::up::env(&state).map(|e| print!("{e}")),
            }
        }
        Command::Report {
            dir,
            html,
            regression_factor,
            target,
            ..
        } => {
            let loaded = match dir {
                Some(dir) => lifeboat::trend::from_dir(&dir, regression_factor),
                None => match target.stack().await {
                    Ok(stack) => lifeboat::trend::from_stack(&stack, regression_factor).await,
                    Err(e) => Err(lifeboat::trend::no_stack(e)),
                },
            };
            loaded
                .and_then(|l| lifeboat::trend::output(&l, html.as_deref()))
                .map(|text| println!("{text}"))
        }
        Command::Drill {
            plan,
            kind,
            aws: true,
            ..
        } => drill_in_aws(plan.unwrap_or_else(|| "lifeboat.toml".into()), kind).await,
        Command::Drill {
            plan,
            yes,
            out,
            fixture,
            kind,
            aws: false,
            in_process,
        } => {
            // The large fixture has its own plan: the demo plan names objects it does not have.
            let plan = plan.unwrap_or_else(|| match fixture {
                FixtureArg::Large => "plans/large.toml".into(),
                _ => "lifeboat.toml".into(),
            });
            let options = DrillOptions {
                plan_path: plan,
                answer: if yes { Answer::Approve } else { Answer::Prompt },
                out_dir: out,
                fixture: match fixture {
                    FixtureArg::Demo => databricks_emulator::Fixture::Demo,
                    FixtureArg::Large => databricks_emulator::Fixture::Large,
                    FixtureArg::Empty => databricks_emulator::Fixture::Empty,
                },
                verbose: true,
                kind: match kind {
                    KindArg::Failover => drill::DrillKind::Failover,
                    KindArg::Readiness => drill::DrillKind::Readiness,
                    KindArg::Full => drill::DrillKind::Full,
                },
                binaries: !in_process,
            };
            match drill::run(options).await {
                Ok(results) => {
                    for r in &results {
                        println!(
                            "\n{} {}: outcome {:?}; never both active: {}",
                            r.report.kind, r.run_id, r.outcome, r.verdict.never_both_active
                        );
                        if let Some(s) = r.report.rto.from_declaration_seconds {
                            println!(
                                "RTO {s:.1} s from declaration (objective {:.0} s)",
                                r.report.rto.objective_seconds
                            );
                        }
                        println!("report: {}", r.report_dir.join("report.md").display());
                    }
                    return if !results.is_empty() && results.iter().all(|r| r.passed()) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    };
                }
                Err(e) => Err(e),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // Something the operator must change (bad input, a held lock, a refused decision):
        // one line, exit code 2, nothing changed.
        Err(e) if e.downcast_ref::<Refused>().is_some() => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
