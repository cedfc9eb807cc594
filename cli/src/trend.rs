//! `lifeboat report --trend`: RTO and RPO across past drills, from the reports in a folder
//! (one sub-folder per run with `report.json`, as `lifeboat drill` writes them).

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result};

use crate::drill::DrillResult;

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

/// Pure: the trend table (Markdown).
pub fn table(results: &[DrillResult]) -> String {
    let mut t = String::from(
        "| when (UTC) | run | kind | outcome | RTO s (objective) | worst RPO s | never both active |\n|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let rto = r
            .report
            .rto
            .from_declaration_seconds
            .map(|s| format!("{s:.1} ({:.0})", r.report.rto.objective_seconds))
            .unwrap_or_else(|| "n/a".into());
        let rpo = r
            .report
            .rpo
            .as_ref()
            .and_then(|p| p.worst_rpo_seconds)
            .map(|s| format!("{s:.0}"))
            .unwrap_or_else(|| "n/a".into());
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:?} | {rto} | {rpo} | {} |",
            r.report.generated_at.format("%Y-%m-%d %H:%M"),
            r.run_id,
            r.report.kind,
            r.outcome,
            if r.verdict.never_both_active {
                "yes"
            } else {
                "NO"
            }
        );
    }
    t
}

/// Loads and renders.
pub fn trend(dir: &Path) -> Result<String> {
    let results = load(dir)?;
    if results.is_empty() {
        return Ok(format!("no drill reports under {}", dir.display()));
    }
    Ok(table(&results))
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
        let sample = |run: &str, at: &str, rto: f64| {
            serde_json::json!({
                "run_id": run, "execution_status": "SUCCEEDED", "outcome": "succeeded",
                "verdict": {"never_both_active": true, "overlaps": [], "jobs_compared": 3},
                "report_dir": "x",
                "report": {
                    "run_id": run, "kind": "drill", "direction": "failover", "plan": "p", "outcome": "succeeded",
                    "trigger": {"source": "schedule", "summary": "s", "declared_at": at},
                    "approval": null, "steps": [],
                    "rto": {"from_declaration_seconds": rto, "from_approval_seconds": null, "objective_seconds": 1800.0, "met": true},
                    "rpo": {"buckets": [], "worst_rpo_seconds": 61.0, "acceptable": true, "measured_at": at},
                    "fence": null, "activation": null, "validation": null, "dns": null, "error": null,
                    "lessons_learned": [], "generated_at": at
                }
            })
        };
        for (run, at, rto) in [
            ("b", "2026-11-20T06:00:00Z", 9.5),
            ("a", "2026-08-20T06:00:00Z", 12.0),
        ] {
            std::fs::create_dir_all(dir.join(run)).unwrap();
            std::fs::write(
                dir.join(run).join("report.json"),
                sample(run, at, rto).to_string(),
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
    }
}
