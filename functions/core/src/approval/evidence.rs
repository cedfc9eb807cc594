//! What the approver is shown: the measured RPO, whether the site to fence answers, what will be
//! fenced and started, drift and what would be left behind — gathered from the checks that ran
//! before approval (decide before you act), and rendered into the request with every piece of
//! text Lifeboat did not write quoted and defanged.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{identity, kernel::Deps, run::RunContext};

/// The evidence shown to the approver.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evidence {
    /// Worst measured RPO, seconds, and whether every bucket is within objective.
    pub worst_rpo_seconds: Option<f64>,
    /// Whether all RPOs are within objective.
    pub rpo_acceptable: bool,
    /// Whether the site to fence answered.
    pub source_reachable: bool,
    /// Active resources at the site to fence, by kind (when reachable).
    pub to_fence: Vec<(String, usize)>,
    /// What the plan starts at the target.
    pub to_start: Vec<String>,
    /// Configuration drift found by the check before approval (a summary line per kind).
    #[serde(default)]
    pub drift: Vec<String>,
    /// Activations live at the source that the target cannot take over: left behind if
    /// approved, each counted against the run's verdict.
    #[serde(default)]
    pub left_behind: Vec<String>,
    /// Data sources that did not answer (non-critical: a critical one refuses the run).
    #[serde(default)]
    pub data_sources_down: Vec<String>,
    /// RPO per bucket and per Delta table, worst first (one line each).
    #[serde(default)]
    pub rpo: Vec<String>,
}

impl Evidence {
    /// The evidence as (label, value) rows — one rendering for the CLI prompt, the
    /// confirmation page and anything else that shows it.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows = vec![
            (
                "RPO (worst)".to_string(),
                format!(
                    "{} — {}",
                    self.worst_rpo_seconds
                        .map(|s| format!("{s:.0} s"))
                        .unwrap_or_else(|| "unknown".into()),
                    if self.rpo_acceptable {
                        "within objective"
                    } else {
                        "NOT within objective"
                    }
                ),
            ),
            (
                "Site to fence reachable".to_string(),
                if self.source_reachable { "yes" } else { "NO" }.to_string(),
            ),
        ];
        rows.extend(
            self.to_fence
                .iter()
                .map(|(k, n)| ("To fence".to_string(), format!("{n} {k}"))),
        );
        rows.extend(
            self.to_start
                .iter()
                .map(|s| ("To start".to_string(), s.clone())),
        );
        rows.extend(self.drift.iter().map(|d| ("Drift".to_string(), d.clone())));
        let shown = 20;
        rows.extend(
            self.left_behind
                .iter()
                .take(shown)
                .map(|d| ("LEFT BEHIND".to_string(), d.clone())),
        );
        if self.left_behind.len() > shown {
            rows.push((
                "LEFT BEHIND".to_string(),
                format!(
                    "... and {} more (see the dr-config-check record)",
                    self.left_behind.len() - shown
                ),
            ));
        }
        rows.extend(
            self.rpo
                .iter()
                .take(RPO_LINES_SHOWN)
                .map(|l| ("RPO".to_string(), l.clone())),
        );
        if self.rpo.len() > RPO_LINES_SHOWN {
            rows.push((
                "RPO".to_string(),
                format!(
                    "... and {} more within the report",
                    self.rpo.len() - RPO_LINES_SHOWN
                ),
            ));
        }
        rows.extend(
            self.data_sources_down
                .iter()
                .map(|d| ("Data source down".to_string(), d.clone())),
        );
        rows
    }
}

/// Most RPO lines shown to the approver (the report has them all).
const RPO_LINES_SHOWN: usize = 10;

/// Gathers the evidence of a run from the checks that ran before approval (`$.results`),
/// measuring again only what they did not: RPO, and what the site to fence runs now.
pub async fn gather_evidence(
    deps: &Deps,
    run: &RunContext,
    results: Option<&serde_json::Value>,
) -> Evidence {
    let (source_role, _) = run.direction.roles();
    let source = run.plan.site(source_role);
    let measured: Option<crate::replication::ReplicationOutput> = results
        .and_then(|r| r.get("replication"))
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let replication = match measured {
        Some(r) => Some(r),
        None => crate::replication::measure(deps, run).await.ok(),
    };
    let mut to_fence = Vec::new();
    let mut source_reachable = false;
    if let Ok(client) = deps.workspaces.client(source).await {
        let client = client.with_deadline(Instant::now() + Duration::from_secs(10));
        if let Ok(inventory) = crate::fence::inventory(&client, &run.plan).await {
            source_reachable = true;
            to_fence = inventory.counts();
        }
    }
    let s = &run.plan.startup;
    let mut to_start: Vec<String> = s
        .pools
        .iter()
        .map(|p| format!("pool {} (min_idle {})", p.name, p.min_idle))
        .collect();
    to_start.extend(s.clusters.iter().map(|c| format!("cluster {c}")));
    to_start.extend(s.warehouses.iter().map(|w| format!("warehouse {w}")));
    to_start.extend(s.run_once.iter().map(|j| format!("run once: job {j}")));
    let config: Option<crate::drift::check::ConfigCheckOutput> = results
        .and_then(|r| r.get("config"))
        .and_then(|r| serde_json::from_value(r.clone()).ok());
    let mut drift = Vec::new();
    let mut left_behind = Vec::new();
    if let Some(c) = config {
        let sum = &c.summary;
        let missing = sum.missing.max(c.missing_at_target.len());
        let differing = sum.differing.max(c.differing.len());
        drift.push(format!(
            "compared with the source's {} configuration{}: {missing} missing at the target, {differing} differing fields{}",
            c.compared_with,
            c.source_age_seconds
                .filter(|s| *s > 0)
                .map(|s| format!(" ({s} s old)"))
                .unwrap_or_default(),
            if sum.source_coverage.needed > 0 {
                format!(
                    "; ACLs and pipeline specs known for {}/{} objects at the source, {}/{} at the target",
                    sum.source_coverage.known,
                    sum.source_coverage.needed,
                    sum.target_coverage.known,
                    sum.target_coverage.needed
                )
            } else {
                String::new()
            }
        ));
        if let Some(a) = &c.accepted {
            drift.push(format!("ACCEPTED: {a}"));
        }
        let tag = if c.accepted.is_some() {
            "BLOCKING (accepted)"
        } else {
            "BLOCKING"
        };
        drift.extend(c.blocking.iter().map(|b| format!("{tag}: {b}")));
        drift.extend(
            c.missing_at_target
                .iter()
                .chain(&c.differing)
                .filter(|l| !c.blocking.contains(l))
                .take(10)
                .map(|l| format!("warns: {l}")),
        );
        drift.extend(
            sum.not_compared
                .iter()
                .map(|n| format!("not compared: {n}")),
        );
        if c.summary.left_behind > c.left_behind.len() {
            drift.push(format!(
                "{} activations would be left behind in all (the first {} are listed)",
                c.summary.left_behind,
                c.left_behind.len()
            ));
        }
        left_behind = c.left_behind;
    }
    let data_sources_down = results
        .and_then(|r| r.get("data_sources"))
        .and_then(|r| serde_json::from_value::<crate::sources::DataSourcesOutput>(r.clone()).ok())
        .map(|d| {
            d.sources
                .into_iter()
                .filter(|s| !s.reachable)
                .map(|s| format!("{} ({})", s.name, s.detail))
                .collect()
        })
        .unwrap_or_default();
    let rpo = replication
        .as_ref()
        .map(|r| r.worst_first().iter().map(|row| row.line()).collect())
        .unwrap_or_default();
    Evidence {
        rpo,
        worst_rpo_seconds: replication.as_ref().and_then(|r| r.worst_rpo_seconds),
        rpo_acceptable: replication.as_ref().is_some_and(|r| r.acceptable),
        source_reachable,
        to_fence,
        to_start,
        drift,
        left_behind,
        data_sources_down,
    }
}

/// Untrusted text (a Health event's description, workspace and job names) as it may appear
/// in a message: one line, at most 300 characters, quoted with `| ` and defanged so it cannot
/// pose as a link or an instruction line.
pub fn quoted(text: &str) -> String {
    let one_line = identity::bounded(text, 300);
    // Link-like words lose what makes a mail client linkify them (`hxxps[:]//evil[.]example`);
    // `approve:`/`reject:` cannot open a line anyway (every line starts with `| `).
    let defanged: Vec<String> = one_line
        .split(' ')
        .map(|w| {
            let lower = w.to_ascii_lowercase();
            if lower.contains("://") || lower.contains('/') || lower.starts_with("www.") {
                w.replace("://", "[:]//")
                    .replace('.', "[.]")
                    .replacen("http", "hxxp", 1)
            } else {
                w.to_string()
            }
        })
        .collect();
    format!("| {}", defanged.join(" "))
}

/// The request text. The decision part comes first (the recipient's own links, or how to
/// answer), then the evidence; text Lifeboat did not write (the trigger's description, names
/// from the workspaces) comes last, quoted, after the links.
pub fn approval_message(
    run: &RunContext,
    e: &Evidence,
    expires_at: DateTime<Utc>,
    links: Option<(&str, &str)>,
) -> String {
    let (from, to) = run.direction.roles();
    let mut m = format!(
        "Lifeboat asks for a decision: {kind} of plan '{plan}' ({from:?} -> {to:?}), run {run_id}.\n\
         Expires {expires}; without an answer nothing is touched at either site.\n\n",
        kind = run.kind.as_str(),
        plan = run.plan.name,
        run_id = run.run_id,
        expires = expires_at.to_rfc3339(),
    );
    if let Some((approver, links)) = links {
        m.push_str(&format!(
            "Your links ({approver}; each opens a confirmation page, only its button decides; do not forward):\n{links}\n"
        ));
    }
    m.push_str(&format!(
        "Other ways to answer:\n\
         - CLI: lifeboat approve --run {run_id} [--comment ...]  /  lifeboat reject --run {run_id}\n\
         - Console: Step Functions > the execution named {run_id} (the CLI records who decided)\n\n\
         On approve: fence {from:?} (pause schedules, stop compute), start {to:?}, activate schedules once {from:?} is fenced, validate, switch DNS/URLs.\n\n\
         Evidence measured by Lifeboat:\n\
         - RPO: worst {rpo} ({rpo_ok}){rpo_lines}\n\
         - Site to fence reachable: {reach}\n\
         - To fence: {fence}\n\
         - Declared: {declared}\n",
        run_id = run.run_id,
        rpo = e.worst_rpo_seconds.map(|s| format!("{s:.0} s")).unwrap_or_else(|| "unknown".into()),
        rpo_ok = if e.rpo_acceptable { "within objective" } else { "NOT within objective" },
        rpo_lines = e
            .rpo
            .iter()
            .take(RPO_LINES_SHOWN)
            .map(|l| format!("\n    - {l}"))
            .collect::<String>(),
        reach = if e.source_reachable { "yes" } else { "NO (fence will keep retrying)" },
        fence = if e.to_fence.is_empty() {
            "unknown".to_string()
        } else {
            e.to_fence.iter().map(|(k, n)| format!("{n} {k}")).collect::<Vec<_>>().join(", ")
        },
        declared = run.trigger.declared_at.to_rfc3339(),
    ));
    m.push_str(
        "\nText from outside Lifeboat (the trigger's description and names from the workspaces; \
         quoted, not instructions):\n",
    );
    m.push_str(&format!(
        "{}\n",
        quoted(&format!("what happened: {}", run.trigger.summary))
    ));
    let start = if e.to_start.is_empty() {
        "nothing declared".to_string()
    } else {
        e.to_start.join(", ")
    };
    m.push_str(&format!(
        "{}\n",
        quoted(&format!("to start at the target: {start}"))
    ));
    for (label, value) in e
        .rows()
        .into_iter()
        .filter(|(l, _)| matches!(l.as_str(), "Drift" | "LEFT BEHIND" | "Data source down"))
    {
        m.push_str(&format!("{}\n", quoted(&format!("{label}: {value}"))));
    }
    m
}

/// A link as kept in the ledger's copy of a message: the signature removed, so reading the
/// ledger does not hand out approvers' links.
pub fn redact_links(message: &str) -> String {
    message
        .lines()
        .map(|l| match l.find("&sig=") {
            Some(i) => format!("{}&sig=(redacted)", &l[..i]),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_text_cannot_pose_as_a_link_or_a_line() {
        for (raw, want) in [
            ("plain words", "| plain words"),
            ("a\nb", "| a b"),
            (
                "approve: https://evil.example/x",
                "| approve: hxxps[:]//evil[.]example/x",
            ),
            ("see www.evil.example", "| see www[.]evil[.]example"),
        ] {
            assert_eq!(quoted(raw), want, "{raw}");
        }
        assert!(quoted(&"x".repeat(1000)).chars().count() <= 303);
    }

    #[test]
    fn redacted_copies_hold_no_signature() {
        let m = "  approve: http://h/approval?run=r&kid=k0&sig=abcdef\nother";
        assert_eq!(
            redact_links(m),
            "  approve: http://h/approval?run=r&kid=k0&sig=(redacted)\nother"
        );
    }
}
