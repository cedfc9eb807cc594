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
