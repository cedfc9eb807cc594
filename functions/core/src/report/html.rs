//! The report as one self-contained HTML page with an SVG timeline — steps as bars, the
//! approval wait, the fence loop, RTO and RPO against their objectives — a picture an incident
//! review can paste. No scripts, no external resources.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::{html::escape as esc, report::Report};

/// Bar colours, also used by the screenshot test to find what was drawn.
pub mod colors {
    /// A step.
    pub const STEP: &str = "#2b6cb0";
    /// The fence of the old site (each attempt).
    pub const FENCE: &str = "#c53030";
    /// Waiting for the human decision.
    pub const APPROVAL: &str = "#d69e2e";
    /// RTO measured.
    pub const RTO: &str = "#2f855a";
    /// A phase of the recovery (detection, decision, fence, start-up, ...), as a band.
    pub const PHASE: &str = "#805ad5";
}

/// One bar: x from, x to, colour, tooltip.
type Bar = (f64, f64, &'static str, String);

/// Renders the page.
pub fn render_html(r: &Report) -> String {
    let t0 = r.trigger.declared_at;
    let end = r
        .steps
        .iter()
        .map(|s| s.ended_at)
        .chain(r.approval.as_ref().map(|a| a.decided_at))
        .max()
        .unwrap_or(t0);
    let objective_end =
        t0 + chrono::Duration::milliseconds((r.rto.objective_seconds * 1000.0) as i64);
    let span_ms = ((end - t0).num_milliseconds().max(1)) as f64;
    let show_objective =
        objective_end <= end + chrono::Duration::milliseconds((span_ms * 0.5) as i64);
    let axis_ms = if show_objective {
        span_ms.max((objective_end - t0).num_milliseconds() as f64)
    } else {
        span_ms
    };
    let (left, width, row_h) = (190.0, 760.0, 22.0);
    let x = |t: DateTime<Utc>| left + ((t - t0).num_milliseconds().max(0) as f64 / axis_ms) * width;

    // Rows: the phases as bands, the approval wait, then each step (fence attempts share a
    // row).
    let mut rows: Vec<(String, Vec<Bar>)> = Vec::new();
    for p in &r.phases {
        rows.push((
            format!("phase: {}", p.name),
            vec![(
                x(p.start),
                x(p.end).max(x(p.start) + 3.0),
                colors::PHASE,
                format!(
                    "{} {:.1} s ({:.0}% of the total)",
                    p.name,
                    p.seconds,
                    p.share * 100.0
                ),
            )],
        ));
    }
    if let Some(a) = &r.approval {
        let asked = r
            .steps
            .iter()
            .find(|s| s.step == "request-approval")
            .map(|s| s.ended_at)
            .unwrap_or(t0);
        rows.push((
            "approval wait".into(),
            vec![(
                x(asked),
                x(a.decided_at),
                colors::APPROVAL,
                format!("{} by {}", a.decision, a.approver),
            )],
        ));
    }
    for s in &r.steps {
        let color = if s.step == "shutdown-sweep" {
            colors::FENCE
        } else {
            colors::STEP
        };
        let label = if s.step == "shutdown-sweep" {
            "fence loop (shutdown-sweep)".to_string()
        } else {
            s.step.clone()
        };
        let secs = (s.ended_at - s.started_at).num_milliseconds() as f64 / 1000.0;
        let bar = (
            x(s.started_at),
            x(s.ended_at).max(x(s.started_at) + 3.0),
            color,
            format!(
                "{} {secs:.1} s{}",
                s.step,
                if s.ok { "" } else { " FAILED" }
            ),
        );
        match rows.iter_mut().find(|(l, _)| *l == label) {
            Some((_, bars)) => bars.push(bar),
            None => rows.push((label, vec![bar])),
        }
    }
    let top = 30.0;
    let height = top + rows.len() as f64 * row_h + 50.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"run timeline\">",
        w = left + width + 40.0
    );
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"16\" font-size=\"12\">0 s = declared {}</text>",
        t0.format("%Y-%m-%d %H:%M:%S UTC")
    );
    for (i, (label, bars)) in rows.iter().enumerate() {
        let y = top + i as f64 * row_h;
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y + 14.0,
            esc(label)
        );
        for (x1, x2, color, title) in bars {
            let _ = write!(
                svg,
                "<rect class=\"bar\" x=\"{x1:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{}</title></rect>",
                (x2 - x1).max(3.0),
                row_h - 6.0,
                esc(title)
            );
        }
    }
    let bottom = top + rows.len() as f64 * row_h;
    let _ = write!(
        svg,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#555\"/>",
        left + width
    );
    if let Some(rto) = r.rto.from_declaration_seconds {
        let xr = left + (rto * 1000.0 / axis_ms) * width;
        let _ = write!(
            svg,
            "<line x1=\"{xr:.1}\" y1=\"{}\" x2=\"{xr:.1}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"3\"/><text x=\"{xr:.1}\" y=\"{}\" font-size=\"12\" fill=\"{}\" text-anchor=\"{}\">RTO {rto:.1} s</text>",
            top - 8.0,
            bottom + 4.0,
            colors::RTO,
            bottom + 18.0,
            colors::RTO,
            if xr > left + width * 0.8 { "end" } else { "start" }
        );
    }
    if show_objective {
        let xo = x(objective_end);
        let _ = write!(
            svg,
            "<line x1=\"{xo:.1}\" y1=\"{}\" x2=\"{xo:.1}\" y2=\"{bottom}\" stroke=\"#000\" stroke-dasharray=\"4 3\"/><text x=\"{xo:.1}\" y=\"{}\" font-size=\"12\">RTO objective {:.0} s</text>",
            top - 8.0,
            bottom + 34.0,
            r.rto.objective_seconds
        );
    }
    svg.push_str("</svg>");

    let mut rpo = String::new();
    if let Some(p) = &r.rpo {
        rpo.push_str(
            "<h2>RPO</h2><table><tr><th>kind</th><th>data</th><th>measured</th><th>objective</th><th>version</th><th></th></tr>",
        );
        for b in p.worst_first() {
            let measured = b.rpo_seconds.unwrap_or(f64::NAN);
            let frac = if b.objective_seconds > 0 {
                (measured / b.objective_seconds as f64).clamp(0.0, 1.5)
            } else {
                1.5
            };
            let _ = write!(
                rpo,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} s</td><td>{}</td><td><svg width=\"240\" height=\"14\"><rect width=\"160\" height=\"14\" fill=\"#e2e8f0\"/><rect class=\"rpo\" width=\"{:.0}\" height=\"14\" fill=\"{}\"/><line x1=\"160\" y1=\"0\" x2=\"160\" y2=\"14\" stroke=\"#000\"/></svg></td></tr>",
                match b.kind {
                    crate::replication::RpoKind::Bucket => "bucket",
                    crate::replication::RpoKind::DeltaTable => "Delta table",
                    crate::replication::RpoKind::ManagedDr => "Managed DR group",
                },
                esc(b.name),
                b.rpo_seconds.map(|s| format!("{s:.0} s")).unwrap_or_else(|| "unknown".into()),
                b.objective_seconds,
                b.version.map(|v| v.to_string()).unwrap_or_default(),
                if frac.is_nan() { 240.0 } else { frac * 160.0 },
                if b.ok { colors::RTO } else { colors::FENCE }
            );
        }
        rpo.push_str("</table>");
        for t in &p.tables {
            for f in &t.findings {
                let _ = write!(rpo, "<p>table {}: {}</p>", esc(&t.name), esc(f));
            }
        }
    }
    let mut checks = String::new();
    if let Some(v) = &r.validation {
        checks.push_str("<h2>Validation</h2><table>");
        for c in &v.checks {
            let _ = write!(
                checks,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                if c.ok { "✔" } else { "✘" },
                esc(&c.name),
                esc(&c.detail)
            );
        }
        checks.push_str("</table>");
    }
    // The safety verdicts, as the Markdown has them.
    let v = &r.verdict;
    let mut verdicts = format!(
        "<h2>Safety verdicts</h2><table><tr><td>{}</td><td>never both active</td><td>{} activations compared</td></tr>\
         <tr><td>{}</td><td>none left behind</td><td>{}</td></tr></table>",
        mark(v, v.never_both_active),
        v.compared,
        mark(v, v.none_left_behind),
        match v.reading(v.none_left_behind) {
            "held" => "every activation live at one site".to_string(),
            "not compared" => "not compared: nothing was known live at the source".to_string(),
            _ => format!("{} left behind", v.left_behind.len()),
        }
    );
    if !v.both_active.is_empty() || !v.left_behind.is_empty() {
        verdicts.push_str("<ul>");
        for item in v.both_active.iter().chain(&v.left_behind).take(50) {
            let _ = write!(verdicts, "<li>{}</li>", esc(item));
        }
        verdicts.push_str("</ul>");
    }
    // Where the time went, and what the run did not reach (and why).
    let mut phases = String::from(
        "<h2>RTO by phase</h2><table><tr><th>phase</th><th>seconds</th><th>share</th></tr>",
    );
    for p in &r.phases {
        let _ = write!(
            phases,
            "<tr><td>{}</td><td>{:.1}</td><td>{:.0}%</td></tr>",
            esc(&p.name),
            p.seconds,
            p.share * 100.0
        );
    }
    phases.push_str("</table>");
    let missing: Vec<&str> = [
        ("RPO", r.rpo.is_none()),
        ("fence of the old site", r.fence.is_none()),
        ("data fence", r.data_fence.is_none()),
        ("schedules at the target", r.activation.is_none()),
        ("validation", r.validation.is_none()),
        ("DNS and client settings", r.dns.is_none()),
    ]
    .into_iter()
    .filter_map(|(name, absent)| absent.then_some(name))
    .collect();
    if !missing.is_empty() {
        let _ = write!(
            phases,
            "<p class=\"k\">Not reached: {} — {}.</p>",
            esc(&missing.join(", ")),
            esc(&crate::report::markdown::not_reached(r))
        );
    }
    let lessons: String = r
        .lessons_learned
        .iter()
        .map(|l| format!("<li>{}</li>", esc(l)))
        .collect();
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Lifeboat {kind} report {id}</title>\
         <style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#1a202c}}table{{border-collapse:collapse}}\
         td,th{{padding:.2rem .6rem;border-bottom:1px solid #e2e8f0;text-align:left}}.k{{color:#4a5568}}</style></head><body>\
         <h1>Lifeboat {kind} — {outcome:?}</h1>\
         <p class=\"k\">run <code>{id}</code> · plan {plan} · {direction} · trigger: {trigger}</p>\
         <p>RTO {rto} (objective {obj:.0} s){approver}</p>\
         <h2>Timeline</h2>{svg}{phases}{verdicts}{rpo}{checks}\
         {lessons_html}</body></html>",
        kind = esc(&r.kind),
        id = esc(&r.run_id),
        outcome = r.outcome,
        plan = esc(&r.plan),
        direction = esc(&r.direction),
        trigger = esc(&r.trigger.summary),
        rto = match (r.rto.from_incident_seconds, r.rto.from_declaration_seconds) {
            (Some(i), Some(d)) => format!("{i:.1} s from the incident's start, {d:.1} s from declaration"),
            (None, Some(d)) => format!("{d:.1} s from declaration"),
            _ => "not reached".into(),
        },
        obj = r.rto.objective_seconds,
        approver = r
            .approval
            .as_ref()
            .map(|a| format!(" · decision: {} by {} via {}", esc(&a.decision), esc(&a.approver), esc(&a.channel)))
            .unwrap_or_default(),
        lessons_html = if lessons.is_empty() { String::new() } else { format!("<h2>Lessons learned</h2><ul>{lessons}</ul>") },
    )
}

/// ✔, ✘ or – (not compared) for a verdict.
fn mark(v: &crate::verdict::Verdicts, held: bool) -> &'static str {
    match v.reading(held) {
        "held" => "✔",
        "VIOLATED" => "✘",
        _ => "–",
    }
}
