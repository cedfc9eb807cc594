//! `lifeboat report --trend`: RTO per phase, RPO per bucket and both safety verdicts across
//! runs, with the phases that got slower flagged — so a drill that passed but took three times
//! as long to fence is noticed before the real incident. Reads every run's report from the
//! stack's ledger (`runs/<id>/report.json`), or, with `--dir`, the folders `lifeboat drill`
//! writes locally.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use lifeboat_core::{
    ledger::{Ledger, LedgerError},
    report::{Outcome, Report},
    trend_html::{self, TrendPoint},
    verdict::Verdicts,
};

use crate::{
    drill::DrillResult,
    stack::{Refused, Stack},
};

/// The plan's default `objectives.regression_factor`, for folders that carry no plan.
pub const DEFAULT_FACTOR: f64 = 1.5;

/// Earlier runs a phase needs before a median means anything.
pub const MIN_EARLIER: usize = 2;

/// Reads every drill result under `dir`, oldest first.
pub fn load(dir: &Path) -> Result<Vec<DrillResult>> {
    let mut results = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path().join("report.json");
        if let Ok(text) = std::fs::read_to_string(&path) {
            let r: DrillResult = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            results.push(r);
        }
    }
    results.sort_by_key(|r| r.report.generated_at);
    Ok(results)
}

/// The reports of drill results; reports written before verdicts were recorded take the
/// drill's own.
fn reports_of(results: &[DrillResult]) -> Vec<Report> {
    results
        .iter()
        .map(|r| {
            let mut report = r.report.clone();
            if report.verdict == Verdicts::default() {
                report.verdict.never_both_active = r.verdict.never_both_active;
                report.verdict.none_left_behind = r.verdict.none_left_behind;
                report.verdict.compared = r.verdict.jobs_compared;
            }
            report
        })
        .collect()
}

/// Whether a ledger key is a run's report (and not a step record or anything deeper).
pub fn is_report_key(key: &str) -> bool {
    key.strip_prefix("runs/")
        .and_then(|rest| rest.strip_suffix("/report.json"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// Every run's report in the ledger, oldest first. A report that no longer parses is skipped
/// with a warning: one odd run must not hide the others' trend.
pub async fn load_from_ledger(ledger: &Ledger) -> Result<Vec<Report>> {
    let runs = ledger
        .list_prefixes("runs/")
        .await
        .context("listing the runs in the ledger")?;
    let mut reports = Vec::new();
    for key in runs
        .iter()
        .map(|run| format!("{run}report.json"))
        .filter(|k| is_report_key(k))
    {
        match ledger.get::<Report>(&key).await {
            Ok(Some(v)) => reports.push(v.value),
            Ok(None) => {}
            Err(e @ LedgerError::Corrupt { .. }) => eprintln!("warning: skipped: {e}"),
            Err(e) => return Err(e).context("reading a run report"),
        }
    }
    reports.sort_by_key(|r| r.generated_at);
    Ok(reports)
}

/// A phase that took more than the factor times its median over the earlier runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Regression {
    pub phase: String,
    pub seconds: f64,
    pub median: f64,
}

impl Regression {
    /// Times the median.
    pub fn factor(&self) -> f64 {
        self.seconds / self.median
    }

    fn describe(&self) -> String {
        format!(
            "{} {:.1} s ({:.1}x median) SLOWER",
            self.phase,
            self.seconds,
            self.factor()
        )
    }
}

/// Pure, the regression rule: `Some(median)` when `seconds` exceeds `factor` × the median of
/// `earlier` (the same phase in the earlier runs that have it). Fewer than [`MIN_EARLIER`]
/// earlier values, or a zero median (no multiple of nothing), flag nothing.
pub fn regression(earlier: &[f64], seconds: f64, factor: f64) -> Option<f64> {
    if earlier.len() < MIN_EARLIER {
        return None;
    }
    let median = trend_html::median(earlier)?;
    (median > 0.0 && seconds > factor * median).then_some(median)
}

/// One run in the trend.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRow {
    pub when: DateTime<Utc>,
    pub run_id: String,
    /// `kind direction`, e.g. `drill failover` (once when the same).
    pub kind: String,
    pub outcome: Outcome,
    pub rto_from_incident: Option<f64>,
    pub rto_from_declaration: Option<f64>,
    pub rto_from_approval: Option<f64>,
    pub rto_objective: f64,
    /// Seconds per phase the run reached.
    pub phases: BTreeMap<String, f64>,
    pub worst_rpo: Option<f64>,
    /// RPO per bucket (`None`: its canary was missing).
    pub rpo: BTreeMap<String, Option<f64>>,
    /// `None`: the report carries no verdict.
    pub never_both_active: Option<bool>,
    pub none_left_behind: Option<bool>,
    pub regressions: Vec<Regression>,
}

impl TrendRow {
    /// The RTO users felt when known, else from the declaration.
    pub fn headline_rto(&self) -> Option<f64> {
        self.rto_from_incident.or(self.rto_from_declaration)
    }
}

/// Runs oldest first, with the factor their regressions were judged by.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub factor: f64,
    pub rows: Vec<TrendRow>,
}

/// Pure: the trend of reports given oldest first.
pub fn compute(reports: &[Report], factor: f64) -> Trend {
    let mut history: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut rows = Vec::with_capacity(reports.len());
    for r in reports {
        let phases: BTreeMap<String, f64> = r
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.seconds))
            .collect();
        let regressions = phases
            .iter()
            .filter_map(|(name, &seconds)| {
                let earlier = history.get(name).map(Vec::as_slice).unwrap_or_default();
                regression(earlier, seconds, factor).map(|median| Regression {
                    phase: name.clone(),
                    seconds,
                    median,
                })
            })
            .collect();
        for (name, &seconds) in &phases {
            history.entry(name.clone()).or_default().push(seconds);
        }
        // A verdict over nothing compared is unknown in the trend, never "held".
        let known = (r.verdict != Verdicts::default() && r.verdict.compared_anything())
            .then_some(&r.verdict);
        rows.push(TrendRow {
            when: r.generated_at,
            run_id: r.run_id.clone(),
            kind: if r.kind == r.direction {
                r.kind.clone()
            } else {
                format!("{} {}", r.kind, r.direction)
            },
            outcome: r.outcome,
            rto_from_incident: r.rto.from_incident_seconds,
            rto_from_declaration: r.rto.from_declaration_seconds,
            rto_from_approval: r.rto.from_approval_seconds,
            rto_objective: r.rto.objective_seconds,
            phases,
            worst_rpo: r.rpo.as_ref().and_then(|p| p.worst_rpo_seconds),
            rpo: r
                .rpo
                .iter()
                .flat_map(|p| {
                    p.buckets
                        .iter()
                        .map(|b| (b.name.clone(), b.rpo_seconds))
                        .chain(
                            p.tables
                                .iter()
                                .map(|t| (format!("table {}", t.name), t.rpo_seconds)),
                        )
                })
                .collect(),
            never_both_active: known.map(|v| v.never_both_active),
            none_left_behind: known.map(|v| v.none_left_behind),
            regressions,
        });
    }
    Trend { factor, rows }
}

impl Trend {
    /// What the HTML page draws.
    pub fn points(&self) -> Vec<TrendPoint> {
        self.rows
            .iter()
            .map(|r| TrendPoint {
                run_id: r.run_id.clone(),
                when: r.when,
                kind: r.kind.clone(),
                outcome: outcome_name(r.outcome),
                phases: r.phases.clone(),
                rto_seconds: r.headline_rto(),
                rpo_seconds: r.worst_rpo,
                regressed: r.regressions.iter().map(|g| g.phase.clone()).collect(),
                never_both_active: r.never_both_active,
                none_left_behind: r.none_left_behind,
            })
            .collect()
    }

    /// Buckets measured in any run, sorted.
    pub fn buckets(&self) -> Vec<String> {
        let all: BTreeSet<&String> = self.rows.iter().flat_map(|r| r.rpo.keys()).collect();
        all.into_iter().cloned().collect()
    }
}

fn outcome_name(o: Outcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{o:?}"))
}

/// A Markdown cell: no pipes or line breaks from the data.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.1}")).unwrap_or_else(|| "n/a".into())
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "n/a",
    }
}

/// Pure: the trend table (Markdown), regressions marked in their phase's cell and listed.
pub fn markdown(trend: &Trend) -> String {
    let phases = trend_html::phase_names(&trend.points());
    let buckets = trend.buckets();
    let mut head = vec![
        "when (UTC)".to_string(),
        "run".into(),
        "kind".into(),
        "outcome".into(),
        "RTO from incident s".into(),
        "RTO from declaration s (objective)".into(),
        "RTO from approval s".into(),
    ];
    head.extend(phases.iter().map(|p| format!("{} s", cell(p))));
    head.push("worst RPO s".into());
    head.extend(buckets.iter().map(|b| format!("RPO {} s", cell(b))));
    head.extend([
        "never both active".into(),
        "none left behind".into(),
        "regressions".into(),
    ]);
    let mut t = format!(
        "{} runs, oldest first; SLOWER: a phase over {}x its median over the earlier runs that have it (at least {MIN_EARLIER}).\n\n| {} |\n|{}\n",
        trend.rows.len(),
        trend.factor,
        head.join(" | "),
        "---|".repeat(head.len())
    );
    for r in &trend.rows {
        let mut cells = vec![
            r.when.format("%Y-%m-%d %H:%M").to_string(),
            cell(&r.run_id),
            cell(&r.kind),
            outcome_name(r.outcome),
            secs(r.rto_from_incident),
            format!("{} ({:.0})", secs(r.rto_from_declaration), r.rto_objective),
            secs(r.rto_from_approval),
        ];
        for p in &phases {
            cells.push(match r.phases.get(p) {
                None => "-".into(),
                Some(s) => match r.regressions.iter().find(|g| &g.phase == p) {
                    Some(g) => format!("{s:.1} ({:.1}x median) SLOWER", g.factor()),
                    None => format!("{s:.1}"),
                },
            });
        }
        cells.push(
            r.worst_rpo
                .map(|s| format!("{s:.0}"))
                .unwrap_or_else(|| "n/a".into()),
        );
        for b in &buckets {
            cells.push(match r.rpo.get(b) {
                None => "-".into(),
                Some(None) => "missing".into(),
                Some(Some(s)) => format!("{s:.0}"),
            });
        }
        cells.push(yes_no(r.never_both_active).into());
        cells.push(yes_no(r.none_left_behind).into());
        cells.push(cell(
            &r.regressions
                .iter()
                .map(Regression::describe)
                .collect::<Vec<_>>()
                .join("; "),
        ));
        let _ = writeln!(t, "| {} |", cells.join(" | "));
    }
    t
}

/// Pure: the trend table of drill results (the `--dir` folders), by the default factor.
pub fn table(results: &[DrillResult]) -> String {
    markdown(&compute(&reports_of(results), DEFAULT_FACTOR))
}

/// Loads and renders the folder case.
pub fn trend(dir: &Path) -> Result<String> {
    let results = load(dir)?;
    if results.is_empty() {
        return Ok(format!("no drill reports under {}", dir.display()));
    }
    Ok(table(&results))
}

/// A trend and where its runs came from (the page's title).
pub struct Loaded {
    pub source: String,
    pub trend: Trend,
    /// The readiness evaluations of the last days (a stack's ledger only).
    pub readiness: Option<lifeboat_core::readiness::ReadinessTrend>,
}

fn checked(factor: f64) -> Result<f64> {
    if (1.0..=100.0).contains(&factor) {
        Ok(factor)
    } else {
        Err(Refused(format!(
            "--regression-factor {factor}: must be 1.0–100.0 (times the phase's median)"
        ))
        .into())
    }
}

/// The runs of `lifeboat drill` folders under `dir`.
pub fn from_dir(dir: &Path, factor: Option<f64>) -> Result<Loaded> {
    let factor = checked(factor.unwrap_or(DEFAULT_FACTOR))?;
    let results = load(dir).map_err(|e| Refused(format!("{e:#}")))?;
    Ok(Loaded {
        source: dir.display().to_string(),
        trend: compute(&reports_of(&results), factor),
        readiness: None,
    })
}

/// The runs in a stack's ledger, judged by its plan's factor unless one is given.
pub async fn from_stack(stack: &Stack, factor: Option<f64>) -> Result<Loaded> {
    let factor = match factor {
        Some(f) => f,
        None => match stack.plan().await {
            Ok(plan) => plan.objectives.regression_factor,
            Err(e) => {
                eprintln!("warning: {e:#}; judging regressions by {DEFAULT_FACTOR}x");
                DEFAULT_FACTOR
            }
        },
    };
    let factor = checked(factor)?;
    let reports = load_from_ledger(&stack.deps.ledger).await?;
    let readiness = crate::operate::readiness(stack).await.ok();
    Ok(Loaded {
        source: format!("s3://{}", stack.outputs.ledger_bucket),
        trend: compute(&reports, factor),
        readiness,
    })
}

/// The refusal when no stack answers: says what else would work.
pub fn no_stack(e: anyhow::Error) -> anyhow::Error {
    Refused(format!(
        "no runs to read: {e:#}\nname the runs with --local (the stack of `lifeboat local up`), --stack NAME (a deployed stack) or --dir FOLDER (the reports of `lifeboat drill`)"
    ))
    .into()
}

/// Prints nothing itself: the table to show, after writing the HTML page if asked.
pub fn output(loaded: &Loaded, html: Option<&Path>) -> Result<String> {
    let mut text = if loaded.trend.rows.is_empty() {
        format!("no run reports in {}", loaded.source)
    } else {
        markdown(&loaded.trend)
    };
    let readiness = loaded
        .readiness
        .as_ref()
        .map(|r| lifeboat_core::readiness::render(r, chrono::Utc::now()));
    if let Some(r) = &readiness {
        let _ = write!(text, "\n\n{r}");
    }
    if let Some(path) = html {
        let mut page =
            trend_html::render(&loaded.source, loaded.trend.factor, &loaded.trend.points());
        if let Some(r) = &readiness {
            let section = format!(
                "<section id=\"readiness\"><h2>Readiness evaluations</h2><pre>{}</pre></section>",
                lifeboat_core::html::escape(r)
            );
            page = match page.rfind("</body>") {
                Some(i) => format!("{}{section}{}", &page[..i], &page[i..]),
                None => page + &section,
            };
        }
        std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
        let _ = write!(text, "\ntrend page: {}", PathBuf::from(path).display());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trend_reads_reports_oldest_first() {
        let dir =
            std::env::temp_dir().join(format!("lifeboat-trend-{}", uuid::Uuid::new_v4().simple()));
        assert!(
            trend(&dir).is_err(),
            "a missing folder is an error, not an empty trend"
        );
        std::fs::create_dir_all(&dir).unwrap();
        assert!(trend(&dir).unwrap().starts_with("no drill reports"));
        for (run, at, rto) in [
            ("b", "2026-11-20T06:00:00Z", 9.5),
            ("a", "2026-08-20T06:00:00Z", 12.0),
        ] {
            std::fs::create_dir_all(dir.join(run)).unwrap();
            std::fs::write(
                dir.join(run).join("report.json"),
                sample(run, at, rto, &[]).to_string(),
            )
            .unwrap();
        }
        let table = trend(&dir).unwrap();
        let a = table.find("| a |").unwrap();
        let b = table.find("| b |").unwrap();
        assert!(a < b, "oldest first:\n{table}");
        assert!(
            table.contains("12.0 (1800)")
                && table.contains("9.5 (1800)")
                && table.contains("| 61 |")
        );
        // The drill's own verdict stands in for a report written without one.
        assert!(table.contains("| yes | yes |"), "{table}");
    }

    /// A drill result as `lifeboat drill` writes it, with phases.
    fn sample(run: &str, at: &str, rto: f64, phases: &[(&str, f64)]) -> serde_json::Value {
        let phases: Vec<_> = phases
            .iter()
            .map(|(name, s)| {
                serde_json::json!({"name": name, "start": at, "end": at, "seconds": s, "share": 0.1})
            })
            .collect();
        serde_json::json!({
            "run_id": run, "execution_status": "SUCCEEDED", "outcome": "succeeded",
            "verdict": {"never_both_active": true, "overlaps": [], "jobs_compared": 3},
            "report_dir": "x",
            "report": {
                "run_id": run, "kind": "drill", "direction": "failover", "plan": "p", "outcome": "succeeded",
                "trigger": {"source": "schedule", "summary": "s", "declared_at": at},
                "approval": null, "steps": [],
                "rto": {"from_declaration_seconds": rto, "from_approval_seconds": null, "objective_seconds": 1800.0, "met": true},
                "rpo": {"buckets": [{"name": "raw | landing", "rpo_seconds": null, "objective_seconds": 900, "ok": false, "replica_written_at": null, "replication_status": "Enabled"}], "worst_rpo_seconds": 61.0, "acceptable": true, "measured_at": at},
                "fence": null, "activation": null, "validation": null, "dns": null, "error": null,
                "lessons_learned": [], "generated_at": at, "phases": phases
            }
        })
    }

    fn reports(fences: &[Option<f64>]) -> Vec<Report> {
        fences
            .iter()
            .enumerate()
            .map(|(i, fence)| {
                let mut phases = vec![("start-up", 20.0)];
                if let Some(f) = fence {
                    phases.push(("fence", *f));
                }
                let at = format!("2026-01-{:02}T00:00:00Z", i + 1);
                let r: DrillResult =
                    serde_json::from_value(sample(&format!("r{i}"), &at, 100.0, &phases)).unwrap();
                r.report
            })
            .collect()
    }

    #[test]
    fn regression_rule() {
        // (earlier, seconds, factor) → flagged median
        let cases: &[(&[f64], f64, f64, Option<f64>)] = &[
            (&[], 100.0, 1.5, None),
            (&[10.0], 100.0, 1.5, None),
            (&[10.0, 10.0], 15.0, 1.5, None),
            (&[10.0, 10.0], 15.01, 1.5, Some(10.0)),
            (&[10.0, 30.0, 20.0], 31.0, 1.5, Some(20.0)),
            (&[10.0, 30.0, 20.0], 30.0, 1.5, None),
            (&[10.0, 20.0], 40.0, 3.0, None),
            (&[10.0, 20.0, 30.0, 40.0], 37.5, 1.5, None),
            (&[10.0, 20.0, 30.0, 40.0], 37.6, 1.5, Some(25.0)),
            (&[0.0, 0.0], 5.0, 1.5, None),
        ];
        for (earlier, seconds, factor, want) in cases {
            assert_eq!(
                regression(earlier, *seconds, *factor),
                *want,
                "{earlier:?} {seconds} x{factor}"
            );
        }
    }

    #[test]
    fn trend_flags_by_earlier_runs_that_have_the_phase() {
        let flagged = |fences: &[Option<f64>]| -> Vec<Vec<String>> {
            compute(&reports(fences), 1.5)
                .rows
                .iter()
                .map(|r| r.regressions.iter().map(|g| g.phase.clone()).collect())
                .collect()
        };
        let none: Vec<String> = Vec::new();
        let fence = vec!["fence".to_string()];
        // Fewer than two earlier runs: nothing, however slow.
        assert_eq!(flagged(&[Some(10.0), Some(90.0)]), vec![none.clone(); 2]);
        // Exactly at the factor: not flagged; above: flagged.
        assert_eq!(
            flagged(&[Some(10.0), Some(10.0), Some(15.0)]),
            vec![none.clone(); 3]
        );
        assert_eq!(
            flagged(&[Some(10.0), Some(10.0), Some(16.0)]),
            vec![none.clone(), none.clone(), fence.clone()]
        );
        // Runs without the phase neither count as earlier runs nor get flagged.
        assert_eq!(
            flagged(&[Some(10.0), None, None, Some(40.0), None]),
            vec![none.clone(); 5]
        );
        assert_eq!(
            flagged(&[Some(10.0), None, Some(10.0), None, Some(40.0)]),
            vec![
                none.clone(),
                none.clone(),
                none.clone(),
                none.clone(),
                fence
            ]
        );
    }

    #[test]
    fn table_marks_regressions_and_buckets() {
        let trend = compute(&reports(&[Some(10.0), Some(12.0), Some(44.0)]), 1.5);
        let g = &trend.rows[2].regressions[0];
        assert_eq!((g.phase.as_str(), g.median), ("fence", 11.0));
        let t = markdown(&trend);
        assert!(t.contains("fence 44.0 s (4.0x median) SLOWER"), "{t}");
        assert!(t.contains("| 44.0 (4.0x median) SLOWER |"), "{t}");
        assert!(
            t.contains("RPO raw \\| landing s") && t.contains("| missing |"),
            "{t}"
        );
        // Known phases in recovery order.
        assert!(t.find("| fence s |").unwrap() < t.find("| start-up s |").unwrap());
        let points = trend.points();
        assert!(points[2].regressed.contains("fence") && points[1].regressed.is_empty());
    }

    #[test]
    fn report_keys_only() {
        assert!(is_report_key("runs/failover-1/report.json"));
        for k in [
            "runs/report.json",
            "runs//report.json",
            "runs/a/b/report.json",
            "runs/a/report.md",
            "runs/a/steps/x.json",
            "plan/report.json",
        ] {
            assert!(!is_report_key(k), "{k}");
        }
    }
}
