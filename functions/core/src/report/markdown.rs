//! The report as Markdown (`runs/<id>/report.md`): what a person reads first — the outcome, the
//! timeline, RTO by phase, RPO, the fence, activation and validation, and what to learn.

use std::fmt::Write as _;

use super::*;
use crate::{managed_dr::ManagedFailoverOutput, replication::RpoKind};

/// Pure: what people were told, and every delivery that failed.
fn render_announcements(md: &mut String, records: &[crate::announce::AnnouncementRecord]) {
    if records.is_empty() {
        return;
    }
    let failed: Vec<(
        &crate::announce::AnnouncementRecord,
        &crate::announce::channels::Delivery,
    )> = records
        .iter()
        .flat_map(|r| r.deliveries.iter().filter(|d| !d.ok).map(move |d| (r, d)))
        .collect();
    let channels: usize = records
        .iter()
        .map(|r| r.deliveries.len())
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        md,
        "\n## Announcements\n\n{} milestone(s) told on {} channel(s); {}.",
        records.len(),
        channels,
        if failed.is_empty() {
            "every delivery succeeded".to_string()
        } else {
            format!("{} delivery(ies) failed", failed.len())
        }
    );
    if !failed.is_empty() {
        let _ = writeln!(
            md,
            "\n| milestone | channel | attempts | error |\n|---|---|---|---|"
        );
        for (r, d) in failed {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                md_cell(&r.milestone),
                md_cell(&d.channel),
                d.attempts,
                md_cell(d.error.as_deref().unwrap_or(""))
            );
        }
    }
}

/// A Markdown table cell: no `|` and no line break can break the row.
/// A heading (and its introduction), then one row per check.
fn render_checks(md: &mut String, heading: &str, checks: &[crate::validation::Check]) {
    let _ = writeln!(md, "\n{heading}\n| check | ok | detail |\n|---|---|---|");
    for c in checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} |",
            md_cell(&c.name),
            if c.ok { "yes" } else { "NO" },
            md_cell(&c.detail)
        );
    }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "/").replace(['\n', '\r'], " ")
}

/// Rows of a long list shown in the Markdown (report.json has them all).
const SHOWN: usize = 200;

/// Pure: why a section of a report has no figures — the reason a reader needs instead of a
/// silent gap (rejected, timed out, paused, failed at a named step, or a readiness drill).
pub fn not_reached(r: &Report) -> String {
    let error = r
        .error
        .as_ref()
        .and_then(|e| e.get("Error"))
        .and_then(Value::as_str);
    match (r.outcome, error) {
        (Outcome::Rejected, _) => "the approval was refused (nothing was touched)".into(),
        (_, Some(e)) if e.contains("Timeout") || e.contains("TimedOut") => {
            "the approval or a step timed out before it".into()
        }
        _ if r.intervention.as_ref().is_some_and(|i| i.pending) => format!(
            "the run is paused for a decision after {} failed",
            r.intervention
                .as_ref()
                .map(|i| i.failed_state.as_str())
                .unwrap_or("a step")
        ),
        (_, Some(e)) => format!("the run stopped with {e} before it"),
        _ if r.kind == "readiness" => "a readiness drill does not do this".into(),
        _ => "the run did not reach it".into(),
    }
}

/// Markdown rendering for humans (incident channels, reviews).
/// The Managed DR section: where the group was, where it is, how it was asked to move.
fn render_managed_dr(md: &mut String, title: &str, m: &ManagedFailoverOutput) {
    let region = |r: &Option<String>| md_cell(r.as_deref().unwrap_or("unknown"));
    let _ = writeln!(
        md,
        "\n## {title}\n\n- **Group:** {}\n- **Primary region:** {} → {} (goal {}; state {})",
        md_cell(m.group.as_deref().unwrap_or("unknown")),
        region(&m.region_before),
        region(&m.region_now),
        region(&m.goal_region),
        m.state
            .map(|s| format!("{s:?}"))
            .unwrap_or_else(|| "unknown".into()),
    );
    let kind = match m.failover_type {
        Some(crate::databricks::disaster_recovery::FailoverType::Forced) => {
            "FORCED (the site being left did not answer)"
        }
        Some(crate::databricks::disaster_recovery::FailoverType::Planned) => "planned",
        None => "none asked",
    };
    let _ = writeln!(
        md,
        "- **Failovers asked:** {} ({kind}); stale etag read again {} time(s)",
        m.attempts, m.stale_etag_retries
    );
    if let Some(p) = m.replication_point {
        let _ = writeln!(md, "- **Replication point:** {}", p.to_rfc3339());
    }
    if let Some(u) = &m.stable_url {
        let _ = writeln!(
            md,
            "- **Stable URL:** {} routes to workspace {} (expected {})",
            md_cell(u.url.as_deref().unwrap_or("unknown")),
            md_cell(u.routes_to.as_deref().unwrap_or("unknown")),
            md_cell(&u.expected),
        );
    }
    if !m.done {
        let _ = writeln!(
            md,
            "- **Not finished:** the group was not ACTIVE in the goal region when the run ended."
        );
    }
}

pub fn render_markdown(r: &Report) -> String {
    let mut md = String::new();
    let reached = not_reached(r);
    header(&mut md, r);
    rto_by_phase(&mut md, r, &reached);
    rpo(&mut md, r, &reached);
    steps(&mut md, r);
    fence(&mut md, r, &reached);
    verdicts(&mut md, r);
    data_fence(&mut md, r, &reached);
    intervention(&mut md, r);
    validation(&mut md, r, &reached);
    managed_dr(&mut md, r);
    error_and_lessons(&mut md, r);
    md
}

/// The title and the run in brief: outcome, plan, trigger, decision, RTO.
fn header(md: &mut String, r: &Report) {
    let _ = writeln!(md, "# Lifeboat {} report — `{}`\n", r.kind, r.run_id);
    let _ = writeln!(md, "- **Outcome:** {:?}", r.outcome);
    if let Some(at) = r.amended_at {
        let _ = writeln!(
            md,
            "- **Amended:** {} — the fence watch ended after the run; the fence and the verdicts below are final (the earlier version is kept in the ledger's object versions)",
            at.to_rfc3339()
        );
    }
    let _ = writeln!(md, "- **Plan:** {} ({})", r.plan, r.direction);
    let _ = writeln!(
        md,
        "- **Trigger:** {} (declared {})",
        r.trigger.summary,
        r.trigger.declared_at.to_rfc3339()
    );
    match &r.approval {
        Some(a) => {
            let _ = writeln!(
                md,
                "- **Decision:** {} by {} via {} at {}",
                a.decision,
                a.approver,
                a.channel,
                a.decided_at.to_rfc3339()
            );
        }
        None => {
            let _ = writeln!(
                md,
                "- **Decision:** none recorded (pre-approved or not reached)"
            );
        }
    }
    let fmt_s = |s: Option<f64>| {
        s.map(|v| format!("{v:.1} s"))
            .unwrap_or_else(|| "n/a".into())
    };
    let _ = writeln!(
        md,
        "- **RTO:** {} from the incident's start, {} from declaration, {} from approval (objective {:.0} s){}",
        fmt_s(r.rto.from_incident_seconds),
        fmt_s(r.rto.from_declaration_seconds),
        fmt_s(r.rto.from_approval_seconds),
        r.rto.objective_seconds,
        match r.rto.met {
            Some(true) => " — met",
            Some(false) => " — MISSED",
            None => "",
        }
    );
}

/// RTO by phase.
fn rto_by_phase(md: &mut String, r: &Report, reached: &str) {
    let _ = writeln!(
        md,
        "\n## RTO by phase\n\n| phase | start | end | seconds | share |\n|---|---|---|---|---|"
    );
    for p in &r.phases {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:.0}% |",
            p.name,
            p.start.format("%H:%M:%S%.3f"),
            p.end.format("%H:%M:%S%.3f"),
            p.seconds,
            p.share * 100.0
        );
    }
    if r.phases.is_empty() {
        let _ = writeln!(md, "| (none reached: {reached}) | | | | |");
    }
}

/// RPO per bucket, table and failover group, worst first.
fn rpo(md: &mut String, r: &Report, reached: &str) {
    if r.rpo.is_none() {
        let _ = writeln!(md, "\n## RPO\n\nNot measured: {reached}.");
    }
    if let Some(rpo) = &r.rpo {
        let _ = writeln!(
            md,
            "\n## RPO\n\nWorst first. A table's RPO comes from the newest version a reader can \
             load at the replica.\n\n| kind | data | measured | objective | consistent version | as of | ok |\n|---|---|---|---|---|---|---|"
        );
        for row in rpo.worst_first() {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} s | {} | {} | {} |",
                match row.kind {
                    RpoKind::Bucket => "bucket",
                    RpoKind::DeltaTable => "delta_table",
                    RpoKind::ManagedDr => "managed_dr",
                },
                row.name,
                row.rpo_seconds
                    .map(|s| format!("{s:.0} s"))
                    .unwrap_or_else(|| "unknown".into()),
                row.objective_seconds,
                row.version
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "—".into()),
                row.as_of
                    .map(|t| t.format("%H:%M:%S").to_string())
                    .unwrap_or_else(|| "—".into()),
                if row.ok { "yes" } else { "NO" }
            );
        }
        for b in rpo.buckets.iter().filter(|b| b.finding.is_some()) {
            let _ = writeln!(
                md,
                "\n- {}: {}",
                b.name,
                b.finding.as_deref().unwrap_or_default()
            );
        }
        for t in &rpo.tables {
            for finding in &t.findings {
                let _ = writeln!(md, "\n- table {}: {finding}", t.name);
            }
        }
    }
}

/// Each step's start, end and summary.
fn steps(md: &mut String, r: &Report) {
    let _ = writeln!(
        md,
        "\n## Steps\n\n| step | start | end | seconds | ok | summary |\n|---|---|---|---|---|---|"
    );
    for s in &r.steps {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {} | {} |",
            s.step,
            s.started_at.format("%H:%M:%S%.3f"),
            s.ended_at.format("%H:%M:%S%.3f"),
            (s.ended_at - s.started_at).num_milliseconds() as f64 / 1000.0,
            if s.ok { "yes" } else { "NO" },
            s.summary.replace('|', "/")
        );
    }
}

/// The fence of the old site, resource by resource, and the activation at the target.
fn fence(md: &mut String, r: &Report, reached: &str) {
    if let Some(f) = &r.fence {
        let _ = writeln!(
            md,
            "\n## Fence of the old site\n\n{} attempts; {} resources confirmed fenced, {} outstanding; {} write actions.",
            f.attempt, f.confirmed, f.remaining, f.actions
        );
    }
    if !r.fence_actions.is_empty() {
        let _ = writeln!(md, "\n| resource | kind | prior | desired | confirmed | writes | last error |\n|---|---|---|---|---|---|---|");
        for a in r.fence_actions.iter().take(SHOWN) {
            let _ = writeln!(
                md,
                "| {} | {:?} | {} | {} | {} | {} | {} |",
                a.name.replace('|', "/"),
                a.kind,
                a.prior,
                a.desired,
                if a.confirmed { "yes" } else { "NO" },
                a.actions,
                a.last_error.as_deref().unwrap_or("").replace('|', "/")
            );
        }
        if r.fence_actions.len() > SHOWN {
            let _ = writeln!(
                md,
                "\n… and {} more in report.json and the ledger's fence record.",
                r.fence_actions.len() - SHOWN
            );
        }
    }
    if r.fence.is_none() {
        let _ = writeln!(md, "\n## Fence of the old site\n\nNot reached: {reached}.");
    }
    match &r.activation {
        Some(a) => {
            let _ = writeln!(md, "\n## Schedules at the target\n\n{}", a.summary);
        }
        None => {
            let _ = writeln!(
                md,
                "\n## Schedules at the target\n\nNot reached: {reached}."
            );
        }
    }
}

/// Never both active, none left behind.
fn verdicts(md: &mut String, r: &Report) {
    let v = &r.verdict;
    let basis = match &v.basis {
        crate::verdict::Basis::FenceRecord => "with the source's fence record".to_string(),
        crate::verdict::Basis::Snapshot { taken_at } => format!(
            "with the source's configuration snapshot of {} (the sweep never reached it)",
            taken_at.map_or("an unknown time".to_string(), |t| t.to_rfc3339())
        ),
        crate::verdict::Basis::NotCompared { reason } => format!("nothing: {reason}"),
    };
    let _ = writeln!(
        md,
        "\n## Safety verdicts\n\nCompared {basis}.\n\n- **Never both active:** {} ({} activations compared)\n- **None left behind:** {}",
        v.reading(v.never_both_active),
        v.compared,
        match v.reading(v.none_left_behind) {
            "VIOLATED" => format!("VIOLATED — {} left behind", v.left_behind.len()),
            other => other.to_string(),
        }
    );
    for item in v.both_active.iter().take(SHOWN) {
        let _ = writeln!(md, "  - both active: {item}");
    }
    for item in v.left_behind.iter().take(SHOWN) {
        let _ = writeln!(md, "  - left behind: {item}");
    }
    for item in v.by_override.iter().take(SHOWN) {
        let _ = writeln!(
            md,
            "  - live at the target by override (source not confirmed): {item}"
        );
    }
}

/// The data fence, the gate override, the fence watch.
fn data_fence(md: &mut String, r: &Report, reached: &str) {
    if r.data_fence.is_none() {
        let _ = writeln!(md, "\n## Data fence\n\nNot set: {reached}.");
    }
    if let Some(d) = &r.data_fence {
        let _ = writeln!(
            md,
            "\n## Data fence\n\nSet {}; {}; {}.",
            d.set_at.to_rfc3339(),
            match d.confirmed_at {
                Some(t) => format!("confirmed {}", t.to_rfc3339()),
                None => "NOT confirmed".into(),
            },
            match d.removed_at {
                Some(t) => format!("lifted {}", t.to_rfc3339()),
                None => "in place".into(),
            }
        );
        for b in &d.buckets {
            let _ = writeln!(
                md,
                "- {} (replica {}): deny {}; source rules: {:?}",
                b.name,
                b.replica,
                if b.confirmed {
                    "confirmed"
                } else {
                    "not confirmed"
                },
                b.source_rules
            );
        }
    }
    if let Some(o) = &r.gate_override {
        let _ = writeln!(
            md,
            "\n## Gate override\n\nOpened by {} via {} at {}: {}",
            o.who,
            o.channel,
            o.at.to_rfc3339(),
            o.reason
        );
    }
    if let Some(w) = &r.fence_watch {
        let _ = writeln!(
            md,
            "\n## Fence watch\n\nStarted {}; {}.",
            w.started_at.to_rfc3339(),
            match (&w.confirmed_at, &w.stopped) {
                (Some(t), _) => format!("old site confirmed fenced {}", t.to_rfc3339()),
                (None, Some((t, why))) => format!("stopped {}: {why}", t.to_rfc3339()),
                (None, None) => "still watching (see runs/<id>/fence-watch.json)".into(),
            }
        );
    }
}

/// Pauses for a human and what they chose.
fn intervention(md: &mut String, r: &Report) {
    if let Some(i) = &r.intervention {
        let _ = writeln!(
            md,
            "\n## Intervention\n\nStep {} failed: {}{}",
            i.failed_state,
            i.error,
            if i.pending {
                " — WAITING for a decision"
            } else {
                ""
            }
        );
        for s in &i.sites {
            let _ = writeln!(md, "- {}: {}", s.site, s.summary);
        }
        for d in &i.history {
            let _ = writeln!(
                md,
                "- {} chose {} for {} via {} at {}",
                d.who,
                d.action.as_str(),
                d.failed_state,
                d.channel,
                d.decided_at.to_rfc3339()
            );
        }
    }
}

/// The target's validation, the client switch and the clients' check.
fn validation(md: &mut String, r: &Report, reached: &str) {
    if let Some(v) = &r.validation {
        render_checks(md, "## Validation\n", &v.checks);
    }
    if r.validation.is_none() {
        let _ = writeln!(md, "\n## Validation\n\nNot reached: {reached}.");
    }
    match &r.dns {
        Some(d) => {
            let _ = writeln!(
                md,
                "\n## DNS and client settings\n\n{} → {} (was {})",
                d.record_name,
                d.current,
                d.previous.as_deref().unwrap_or("none")
            );
            if !d.parameters.is_empty() {
                // Before is what failback (or a restore) puts back.
                let _ = writeln!(
                    md,
                    "\n| Parameter | Holds | Before | After |\n| --- | --- | --- | --- |"
                );
                for p in &d.parameters {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {} |",
                        md_cell(&p.name),
                        md_cell(&p.describes),
                        md_cell(p.previous.as_deref().unwrap_or("(absent)")),
                        md_cell(&p.current)
                    );
                }
            }
        }
        // The client check ran on the stable URL: the plan has no `[dns]`.
        None if r
            .client_check
            .as_ref()
            .is_some_and(|c| c.checks.iter().any(|k| k.name.starts_with("stable URL:"))) =>
        {
            let _ = writeln!(
                md,
                "\n## DNS and client settings\n\nNo DNS switch: clients keep the Managed DR \
                 stable URL, which follows the failover group (see the Managed DR section)."
            );
        }
        None => {
            let _ = writeln!(
                md,
                "\n## DNS and client settings\n\nNot switched: {reached}."
            );
        }
    }
    if let Some(c) = &r.client_check {
        render_checks(
            md,
            "## Clients verified\n\nThe switched name and the parameters clients read, \
             followed as clients follow them.\n",
            &c.checks,
        );
    }
}

/// The Managed DR failover group (and its restore by an abort).
fn managed_dr(md: &mut String, r: &Report) {
    for (title, m) in [
        ("Managed DR failover group", &r.managed_dr),
        (
            "Managed DR failover group, put back by the abort",
            &r.managed_dr_restore,
        ),
    ] {
        if let Some(m) = m {
            render_managed_dr(md, title, m);
        }
    }
}

/// The error that ended the run, the announcements, and what to learn.
fn error_and_lessons(md: &mut String, r: &Report) {
    if let Some(e) = &r.error {
        let _ = writeln!(md, "\n## Error\n\n```\n{e}\n```");
    }
    render_announcements(md, &r.announcements);
    if !r.lessons_learned.is_empty() {
        let _ = writeln!(md, "\n## Lessons learned\n");
        for l in &r.lessons_learned {
            let _ = writeln!(md, "- {l}");
        }
    }
}
