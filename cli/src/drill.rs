//! `lifeboat drill`: the main job, end to end on this machine. It starts the local
//! environment, raises an AWS Health event for the primary region, follows the real state
//! machine in moto state by state, asks for approval (or takes `--yes`), and writes the
//! report — Markdown and JSON — with the "never both active" verdict from the two workspaces'
//! timelines.

use std::{
    collections::{BTreeSet, HashMap},
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use aws_sdk_sfn::types::{ExecutionStatus, HistoryEventType};
use databricks_emulator::Fixture;
use lifeboat_core::{
    approval::{approval_key, ApprovalRecord, ApprovalStage, Decision},
    incident::IngestOutput,
    intervention::{self, InterventionAction, InterventionRecord},
    plan::{Direction, Plan, SiteRole},
    report::{Outcome, Report},
    run::{RunId, RunKind, Trigger, TriggerSource},
};
use serde::{Deserialize, Serialize};

use crate::{
    local::{LocalEnv, LocalOptions},
    verdict::{left_behind, live_activations, never_both_active, TimelineEvent, Verdict},
};
use lifeboat_core::ledger::keys::{self, ReportFormat};

/// How the approval question is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Ask on the terminal.
    Prompt,
    /// Approve without asking (`--yes`).
    Approve,
    /// Reject (tests).
    Reject,
    /// Never answer (tests of the timeout path).
    Ignore,
}

/// Which drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrillKind {
    /// An AWS Health event starts a real failover execution (the default local drill).
    Failover,
    /// The non-disruptive readiness drill.
    Readiness,
    /// Failover then failback, with the same code paths, on the drill DNS name.
    Full,
}

/// Options of a drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The plan file.
    pub plan_path: PathBuf,
    /// How to answer the approval.
    pub answer: Answer,
    /// Where reports go (a folder per run is created in it).
    pub out_dir: PathBuf,
    /// Fixture of the emulated workspaces.
    pub fixture: Fixture,
    /// Print progress.
    pub verbose: bool,
    /// Which drill.
    pub kind: DrillKind,
    /// Run the shipped artifacts (each function's binary under the Lambda Runtime API, the
    /// template's environment, its role's policy enforced); false: handlers in-process.
    pub binaries: bool,
}

/// What the shipped artifacts did in a binaries-mode drill: per-function cold starts and
/// memory, and every IAM decision on their AWS calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Artifacts {
    /// Per function (binary name).
    pub functions: std::collections::BTreeMap<String, serde_json::Value>,
    /// Distinct (function, action, resource) calls the policies allowed.
    pub allowed: usize,
    /// Calls a policy denied, `function: action on resource` — each fails the drill.
    pub denied: Vec<String>,
    /// Every distinct call the policies allowed, `function: action on resource`: the grants
    /// this drill exercised.
    #[serde(default)]
    pub calls: Vec<String>,
}

/// What a drill produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillResult {
    /// Run id.
    pub run_id: String,
    /// Execution status in Step Functions.
    pub execution_status: String,
    /// The run's outcome.
    pub outcome: Outcome,
    /// Never both active.
    pub verdict: Verdict,
    /// Folder with report.md and report.json.
    pub report_dir: PathBuf,
    /// The report (as stored in the ledger).
    pub report: Report,
    /// Binaries mode: what the function binaries did (None in-process).
    #[serde(default)]
    pub artifacts: Option<Artifacts>,
}

impl DrillResult {
    /// Whether the drill passed: production moved and both sites were never active together.
    pub fn passed(&self) -> bool {
        self.outcome.is_success()
            && self.verdict.never_both_active
            && self.verdict.none_left_behind
            && self.artifacts.as_ref().is_none_or(|a| a.denied.is_empty())
    }
}

/// An AWS Health event as EventBridge delivers it: an EC2 operational issue in `region`.
pub fn health_event(region: &str, id: &str) -> serde_json::Value {
    let now = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    serde_json::json!({
        "version": "0",
        "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": crate::local::ACCOUNT,
        "time": chrono::Utc::now().to_rfc3339(),
        "region": region,
        "resources": [],
        "detail": {
            "eventArn": format!("arn:aws:health:{region}::event/EC2/AWS_EC2_OPERATIONAL_ISSUE/AWS_EC2_OPERATIONAL_ISSUE_{id}"),
            "service": "EC2",
            "eventTypeCode": "AWS_EC2_OPERATIONAL_ISSUE",
            "eventTypeCategory": "issue",
            "eventScopeCode": "PUBLIC",
            "communicationId": format!("{id}-1"),
            "startTime": now,
            "lastUpdatedTime": now,
            "statusCode": "open",
            "eventRegion": region,
            "eventDescription": [{"language": "en_US", "latestDescription": "[DRILL] Increased API error rates and instance launch failures in the region."}]
        }
    })
}

/// Reads and validates a plan file: nothing starts if this fails.
pub fn load_plan(path: &Path) -> Result<Plan> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading plan {}", path.display()))?;
    Ok(Plan::from_toml(&text, &path.display().to_string())?)
}

/// Runs a local drill of the chosen kind; one result per execution.
pub async fn run(options: DrillOptions) -> Result<Vec<DrillResult>> {
    let mut plan = load_plan(&options.plan_path)?;
    let say = |s: String| {
        if options.verbose {
            println!("{s}");
        }
    };
    say(
        "starting the local environment: two emulated workspaces, moto, the Lambda host ...".into(),
    );
    if options.binaries {
        say(format!(
            "building the {} function binaries (cargo build -p health-ingest -p ... ; a no-op when fresh) ...",
            lifeboat_core::dispatch::Step::ALL.len()
        ));
        crate::local::build_functions(&crate::local::moto::repo_root()?)?;
    }
    let env = LocalEnv::start(LocalOptions {
        fixture: options.fixture,
        binaries: options.binaries,
        ..LocalOptions::default()
    })
    .await?;
    env.provision(&mut plan).await?;
    say(format!(
        "  primary workspace {}  |  DR workspace {}  |  moto {}",
        env.primary.url(),
        env.dr.url(),
        env.moto.url
    ));
    let result = match options.kind {
        DrillKind::Failover => drive(&env, &plan, &options).await.map(|r| vec![r]),
        DrillKind::Readiness => drive_readiness(&env, &plan, &options)
            .await
            .map(|r| vec![r]),
        DrillKind::Full => drive_full(&env, &plan, &options).await,
    };
    let result = match result {
        Ok(mut results) if options.binaries => {
            let artifacts = artifacts(&env);
            for r in &mut results {
                r.artifacts = Some(artifacts.clone());
                append_artifacts(r)?;
            }
            if options.verbose {
                println!(
                    "shipped artifacts: {} function binaries ran; {} distinct AWS calls allowed by their template policies; {} denied",
                    artifacts.functions.len(),
                    artifacts.allowed,
                    artifacts.denied.len()
                );
                for d in &artifacts.denied {
                    println!("  IAM DENIED {d}");
                }
            }
            Ok(results)
        }
        other => other,
    };
    env.stop().await;
    result
}

/// The binaries' figures and IAM decisions so far.
pub fn artifacts(env: &LocalEnv) -> Artifacts {
    let decisions = env.host.gate.decisions();
    Artifacts {
        functions: env
            .host
            .runtime
            .figures()
            .into_iter()
            .map(|(k, v)| (k, serde_json::to_value(v).unwrap_or_default()))
            .collect(),
        allowed: decisions.iter().filter(|d| d.allowed).count(),
        denied: env.host.gate.denials(),
        calls: decisions
            .iter()
            .filter(|d| d.allowed)
            .map(|d| format!("{}: {} on {}", d.function, d.action, d.resource))
            .collect(),
    }
}

fn append_artifacts(r: &DrillResult) -> Result<()> {
    let Some(a) = &r.artifacts else {
        return Ok(());
    };
    let path = r.report_dir.join("report.md");
    let mut md = std::fs::read_to_string(&path).unwrap_or_default();
    md.push_str("\n## Shipped artifacts\n\nEach step ran as its function's real binary under the Lambda Runtime API, with the environment and the IAM policy `infra/template.yaml` gives it (every AWS call checked against that policy).\n\n| function | cold starts | init (ms) | invocations | peak memory (MiB) |\n| --- | --- | --- | --- | --- |\n");
    for (name, f) in &a.functions {
        let init: Vec<String> = f["init_ms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_f64)
            .map(|ms| format!("{ms:.1}"))
            .collect();
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {:.1} |\n",
            f["cold_starts"],
            init.join(", "),
            f["invocations"],
            f["peak_rss_kib"].as_f64().unwrap_or(0.0) / 1024.0
        ));
    }
    md.push_str(&format!(
        "\nIAM: {} distinct calls allowed; {}.\n",
        a.allowed,
        if a.denied.is_empty() {
            "none denied".to_string()
        } else {
            format!("DENIED: {}", a.denied.join("; "))
        }
    ));
    std::fs::write(&path, md)?;
    std::fs::write(
        r.report_dir.join("report.json"),
        serde_json::to_vec_pretty(r)?,
    )?;
    Ok(())
}

/// Starts an execution directly (operator or schedule trigger), as `lifeboat drill --aws` does.
pub async fn start_run(
    env: &LocalEnv,
    plan: &Plan,
    machine: &str,
    kind: RunKind,
    direction: Direction,
    restore_from: Option<RunId>,
) -> Result<(String, String)> {
    let trigger = Trigger {
        source: TriggerSource::Operator,
        summary: format!("{} started by an operator", kind.as_str()),
        declared_at: chrono::Utc::now(),
        event_arn: None,
        incident_started_at: None,
    };
    let run = lifeboat_core::incident::run_context(plan, kind, direction, trigger, restore_from);
    let out = env
        .aws
        .sfn
        .start_execution()
        .state_machine_arn(crate::local::machine_arn(machine))
        .name(&run.run_id.0)
        .input(serde_json::json!({ "run": run }).to_string())
        .send()
        .await
        .with_context(|| format!("starting {machine}"))?;
    Ok((out.execution_arn().to_string(), run.run_id.0))
}

/// The readiness drill: RPO, drift, one DR warehouse, validation, nothing at the primary.
pub async fn drive_readiness(
    env: &LocalEnv,
    plan: &Plan,
    options: &DrillOptions,
) -> Result<DrillResult> {
    let (arn, run_id) = start_run(
        env,
        plan,
        crate::local::READINESS_MACHINE,
        RunKind::Readiness,
        Direction::Failover,
        None,
    )
    .await?;
    if options.verbose {
        println!("readiness drill started: {run_id}");
    }
    follow_and_collect(env, &arn, run_id, options).await
}

/// The full drill as the shipped `drill-full.asl.json` runs it: started as a deployment starts
/// it (`health-ingest`'s drill start), its tasks start the failover (kind drill) and, if that
/// moved the workload, the failback that restores the primary and resets DR — as child
/// executions, each followed here like any run.
pub async fn drive_full(
    env: &LocalEnv,
    plan: &Plan,
    options: &DrillOptions,
) -> Result<Vec<DrillResult>> {
    use lifeboat_core::incident::{start_drill, IngestOutput, ScheduledDrill};
    let started = start_drill(
        &env.aws.sfn,
        &env.deps.config,
        plan,
        ScheduledDrill::Full,
        TriggerSource::Operator,
    )
    .await?;
    let IngestOutput::Started {
        execution_arn: parent,
        run_id,
    } = started
    else {
        bail!("the full drill did not start: {started:?}");
    };
    if options.verbose {
        println!("full drill started: {parent}");
    }
    let child = |name: &str| {
        crate::local::machine_arn(crate::local::FAILOVER_MACHINE)
            .replace(":stateMachine:", ":execution:")
            + ":"
            + name
    };
    let failover_arn = child(&run_id);
    wait_started(env, &failover_arn).await?;
    let failover = follow_and_collect(env, &failover_arn, run_id.clone(), options).await?;
    let mut results = vec![failover];
    if results[0].outcome.moved_production() {
        let back_id = format!("{run_id}-back");
        let failback_arn = crate::local::machine_arn(crate::local::FAILBACK_MACHINE)
            .replace(":stateMachine:", ":execution:")
            + ":"
            + &back_id;
        wait_started(env, &failback_arn).await?;
        if options.verbose {
            println!("full drill, failback part started: {back_id}");
        }
        results.push(follow_and_collect(env, &failback_arn, back_id, options).await?);
    }
    // The parent ends once its children have: it succeeds only when both parts completed.
    let status = wait_ended(env, &parent).await?;
    let completed = results.len() == 2 && results.iter().all(|r| r.outcome.is_success());
    if completed != (status == ExecutionStatus::Succeeded) {
        bail!(
            "the full drill's execution ended {} while its parts ended {:?}",
            status.as_str(),
            results.iter().map(|r| r.outcome).collect::<Vec<_>>()
        );
    }
    Ok(results)
}

/// Waits for a child execution the full drill's machine starts.
async fn wait_started(env: &LocalEnv, arn: &str) -> Result<()> {
    for _ in 0..300 {
        if env
            .aws
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    bail!("the full drill never started {arn}")
}

/// Waits for an execution to end; its status.
async fn wait_ended(env: &LocalEnv, arn: &str) -> Result<ExecutionStatus> {
    for _ in 0..600 {
        let d = env
            .aws
            .sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .with_context(|| format!("describing {arn}"))?;
        if d.status() != &ExecutionStatus::Running {
            return Ok(d.status().clone());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    bail!("{arn} still running after 2 minutes")
}

/// Raises the event, follows the execution, answers the approval, collects the report.
pub async fn drive(env: &LocalEnv, plan: &Plan, options: &DrillOptions) -> Result<DrillResult> {
    let say = |s: String| {
        if options.verbose {
            println!("{s}");
        }
    };
    let event_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_uppercase();
    say(format!(
        "raising an AWS Health event: EC2 operational issue in {}",
        plan.sites.primary.region
    ));
    let ingest: IngestOutput = serde_json::from_value(
        env.invoke(
            "health-ingest",
            &health_event(&plan.sites.primary.region, &event_id),
        )
        .await?,
    )?;
    let (execution_arn, run_id) = match ingest {
        IngestOutput::Started {
            execution_arn,
            run_id,
        } => (execution_arn, run_id),
        other => bail!("health-ingest did not start a failover: {other:?}"),
    };
    say(format!("failover execution started: {run_id}"));
    follow_and_collect(env, &execution_arn, run_id, options).await
}

/// None left behind, now: what was live at the primary at `since_ms` (its timeline) and is live
/// at neither site in the two inventories; with the two live sets.
pub async fn left_behind_now(
    env: &LocalEnv,
    primary_events: &[TimelineEvent],
    since_ms: i64,
) -> Result<(
    Vec<String>,
    BTreeSet<(String, String)>,
    BTreeSet<(String, String)>,
)> {
    let primary_now = live_activations(&env.admin_get(SiteRole::Primary, "state").await?);
    let dr_now = live_activations(&env.admin_get(SiteRole::Dr, "state").await?);
    let left = left_behind(primary_events, since_ms, &primary_now, &dr_now);
    Ok((left, primary_now, dr_now))
}

/// Follows an execution to its end and collects its report and the never-both-active verdict.
pub async fn follow_and_collect(
    env: &LocalEnv,
    execution_arn: &str,
    run_id: String,
    options: &DrillOptions,
) -> Result<DrillResult> {
    let id = RunId(run_id.clone());
    let status = follow(env, execution_arn, &id, options).await?;
    let report: Report = env
        .deps
        .ledger
        .get(&keys::report(&id, ReportFormat::Json))
        .await?
        .map(|v| v.value)
        .context("the run wrote no report")?;
    let markdown = env
        .deps
        .ledger
        .get_raw(&keys::report(&id, ReportFormat::Markdown))
        .await?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let timeline = |site| async move {
        let v = env.admin_get(site, "timeline").await?;
        let events: Vec<TimelineEvent> = serde_json::from_value(v["events"].clone())?;
        anyhow::Ok(events)
    };
    let primary_events = timeline(SiteRole::Primary).await?;
    let mut verdict = never_both_active(&primary_events, &timeline(SiteRole::Dr).await?);
    // None left behind, from both sites' inventories now (a failback's reference is what was
    // live at the primary before its failover: the same before/after check holds for the pair).
    if report.direction == "failover" {
        verdict.left_behind = left_behind_now(
            env,
            &primary_events,
            report.trigger.declared_at.timestamp_millis(),
        )
        .await?
        .0;
        verdict.none_left_behind = verdict.left_behind.is_empty();
    }
    let report_dir = options.out_dir.join(&run_id);
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("creating {}", report_dir.display()))?;
    let result = DrillResult {
        run_id: run_id.clone(),
        execution_status: status,
        outcome: report.outcome,
        verdict,
        report_dir: report_dir.clone(),
        report,
        artifacts: None,
    };
    let mut md = markdown;
    md.push_str(&format!(
        "\n## Never both active\n\n{} ({} jobs compared across both workspaces' activity timelines).\n",
        if result.verdict.never_both_active { "Verified: no job was active at both sites at once" } else { "VIOLATED" },
        result.verdict.jobs_compared
    ));
    md.push_str(&format!(
        "\n## None left behind (both inventories)\n\n{}\n",
        if result.verdict.none_left_behind {
            "Verified: every activation live at the primary before the run is live at exactly one site".to_string()
        } else {
            format!("VIOLATED: {}", result.verdict.left_behind.join("; "))
        }
    ));
    for o in &result.verdict.overlaps {
        md.push_str(&format!(
            "- {} {} overlapped from {} to {}\n",
            o.job, o.what, o.from_ms, o.to_ms
        ));
    }
    md.push_str(&format!(
        "\nStep Functions execution status: {}.\n",
        result.execution_status
    ));
    std::fs::write(report_dir.join("report.md"), md)?;
    std::fs::write(
        report_dir.join("report.html"),
        lifeboat_core::report::html::render_html(&result.report),
    )?;
    std::fs::write(
        report_dir.join("report.json"),
        serde_json::to_vec_pretty(&result)?,
    )?;
    Ok(result)
}

async fn answer_approval(
    env: &LocalEnv,
    run_id: &RunId,
    stage: ApprovalStage,
    record: &ApprovalRecord,
    answer: Answer,
    verbose: bool,
) -> Result<bool> {
    if verbose {
        match stage {
            ApprovalStage::Failover => println!("\n=== APPROVAL REQUESTED (run {run_id}) ==="),
            ApprovalStage::RpoBreach => println!(
                "\n=== SECOND APPROVAL: RPO OVER OBJECTIVE (run {run_id}); approving accepts the data loss ==="
            ),
            ApprovalStage::Intervention => {}
        }
        for (label, value) in record.evidence.rows() {
            println!("  {label}: {value}");
        }
        println!("  expires: {}", record.expires_at);
    }
    let decision = match answer {
        Answer::Ignore => return Ok(false),
        Answer::Approve => Decision::Approve,
        Answer::Reject => Decision::Reject,
        Answer::Prompt => {
            print!("Approve the failover? [y/N] ");
            let _ = std::io::stdout().flush();
            let line = tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                std::io::stdin().read_line(&mut s).map(|_| s)
            })
            .await??;
            if line.trim().eq_ignore_ascii_case("y") || line.trim().eq_ignore_ascii_case("yes") {
                Decision::Approve
            } else {
                Decision::Reject
            }
        }
    };
    // The local operator's verified identity (STS in moto), as `lifeboat approve` records.
    let who = crate::identity::caller_arn(&env.operator.sts).await?;
    lifeboat_core::approval::decide::decide(
        &env.deps,
        lifeboat_core::approval::decide::Ballot {
            run_id,
            stage,
            decision,
            who: &who,
            channel: "cli",
            comment: Some("local drill".into()),
        },
    )
    .await?;
    if verbose {
        println!("  decision: {} by {who}\n", decision.as_str());
    }
    Ok(true)
}

/// A run paused after a failed step: shows both sites and decides. Interactive: asks; `--yes`
/// (an unattended drill): aborts, which fences DR again and restores the primary — a drill
/// never leaves a half-done failover behind; tests (`Answer::Ignore`) decide themselves.
async fn answer_intervention(
    env: &LocalEnv,
    run_id: &RunId,
    record: &InterventionRecord,
    answer: Answer,
    verbose: bool,
) -> Result<()> {
    if verbose {
        println!(
            "\n=== PAUSED FOR INTERVENTION (run {run_id}): step {} failed ===\n  error: {}",
            record.failed_state, record.error
        );
        for s in &record.sites {
            println!("  {}: {}", s.site, s.summary);
        }
    }
    let action = match answer {
        Answer::Ignore => return Ok(()),
        Answer::Approve | Answer::Reject => InterventionAction::Abort,
        Answer::Prompt => {
            print!("retry, continue or abort? [abort] ");
            let _ = std::io::stdout().flush();
            let line = tokio::task::spawn_blocking(|| {
                let mut s = String::new();
                std::io::stdin().read_line(&mut s).map(|_| s)
            })
            .await??;
            if line.trim().is_empty() {
                InterventionAction::Abort
            } else {
                InterventionAction::parse(&line).unwrap_or(InterventionAction::Abort)
            }
        }
    };
    // The local operator's verified identity (STS in moto), as `lifeboat approve` records.
    let who = crate::identity::caller_arn(&env.operator.sts).await?;
    intervention::decide(
        &env.deps,
        run_id,
        action,
        &who,
        "cli",
        Some("local drill".into()),
    )
    .await?;
    if verbose {
        println!("  chosen: {} by {who}\n", action.as_str());
    }
    Ok(())
}

/// Follows an execution until it ends, printing each state and answering the approval.
async fn follow(
    env: &LocalEnv,
    execution_arn: &str,
    run_id: &RunId,
    options: &DrillOptions,
) -> Result<String> {
    let sfn = &env.aws.sfn;
    let started = Instant::now();
    let mut seen = 0usize;
    let mut entered: HashMap<String, f64> = HashMap::new();
    let mut answered: Vec<ApprovalStage> = Vec::new();
    let mut interventions = Vec::new();
    loop {
        let history = sfn
            .get_execution_history()
            .execution_arn(execution_arn)
            .send()
            .await
            .context("reading the execution history")?;
        let events = history.events();
        for e in events.iter().skip(seen) {
            let t = started.elapsed().as_secs_f64();
            let ty = e.r#type();
            if let Some(d) = e.state_entered_event_details() {
                entered.insert(d.name().to_string(), t);
                if options.verbose
                    && !matches!(
                        ty,
                        HistoryEventType::ChoiceStateEntered | HistoryEventType::PassStateEntered
                    )
                {
                    println!("  [{t:6.1}s] > {}", d.name());
                }
            }
            if let Some(d) = e.state_exited_event_details() {
                if options.verbose
                    && matches!(
                        ty,
                        HistoryEventType::TaskStateExited | HistoryEventType::ParallelStateExited
                    )
                {
                    let took = entered.get(d.name()).map(|s| t - s).unwrap_or(0.0);
                    println!("  [{t:6.1}s] < {} ({took:.1}s)", d.name());
                }
            }
        }
        seen = events.len();
        if let Some(record) = env
            .deps
            .ledger
            .get::<InterventionRecord>(&keys::intervention(run_id))
            .await?
        {
            let r = record.value;
            if r.task_token.is_some() && !interventions.contains(&r.requested_at) {
                interventions.push(r.requested_at);
                answer_intervention(env, run_id, &r, options.answer, options.verbose).await?;
            }
        }
        for stage in [ApprovalStage::Failover, ApprovalStage::RpoBreach] {
            if answered.contains(&stage) {
                continue;
            }
            let key = approval_key(run_id, stage);
            if let Some(record) = env.deps.ledger.get::<ApprovalRecord>(&key).await? {
                if record.value.decision.is_none() {
                    answer_approval(
                        env,
                        run_id,
                        stage,
                        &record.value,
                        options.answer,
                        options.verbose,
                    )
                    .await?;
                }
                answered.push(stage);
            }
        }
        let d = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await?;
        if d.status() != &ExecutionStatus::Running {
            if options.verbose {
                println!(
                    "execution {}: {}",
                    d.status().as_str(),
                    d.error().unwrap_or("")
                );
            }
            return Ok(d.status().as_str().to_string());
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the execution did not finish within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
