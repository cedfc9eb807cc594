//! The trend across runs as one self-contained HTML page: a small SVG chart per phase, for the
//! RTO and for the worst RPO, one bar per run, the median as a line and regressions in their
//! own colour, so a review sees at a glance which phase got slower and when. No scripts, no
//! external resources. The CLI computes the points (and the regressions); this only draws.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
};

use chrono::{DateTime, Utc};

use crate::html::escape as esc;

/// A phase of a run that took more than the regression factor times its earlier median.
pub const REGRESSION_COLOUR: &str = "#e53e3e";
/// Any other bar.
pub const BAR_COLOUR: &str = "#3182ce";
/// The median line.
pub const MEDIAN_COLOUR: &str = "#1a202c";

/// Recovery order of the phases (as `crate::report::phases::phases` names them): charts follow it, unknown
/// names come after in order of appearance.
pub const PHASE_ORDER: [&str; 9] = [
    "detection",
    "pre-checks",
    "decision",
    "data fence",
    "fence",
    "start-up",
    "activation",
    "client switch",
    "validation",
];

/// One run as the trend page draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendPoint {
    pub run_id: String,
    pub when: DateTime<Utc>,
    /// `kind direction`, e.g. `drill failover` (once when the same).
    pub kind: String,
    pub outcome: String,
    /// Seconds per phase the run reached.
    pub phases: BTreeMap<String, f64>,
    /// Headline RTO: from the incident start, else from the declaration.
    pub rto_seconds: Option<f64>,
    pub rpo_seconds: Option<f64>,
    /// Phases flagged as regressions.
    pub regressed: BTreeSet<String>,
    /// `None`: the report carries no verdict (written before verdicts were recorded).
    pub never_both_active: Option<bool>,
    pub none_left_behind: Option<bool>,
}

/// Median of the values (`None` when empty); NaN-free input assumed (seconds).
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Phase names present in any point, in recovery order.
pub fn phase_names(points: &[TrendPoint]) -> Vec<String> {
    let mut names: Vec<String> = PHASE_ORDER
        .iter()
        .filter(|p| points.iter().any(|t| t.phases.contains_key(**p)))
        .map(|p| p.to_string())
        .collect();
    for t in points {
        for name in t.phases.keys() {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

const W: f64 = 250.0;
const H: f64 = 150.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 20.0;
const LEFT: f64 = 8.0;

/// One chart: a bar per run (a gap where the run has no value), the median of the values as a
/// dashed line.
fn chart(
    out: &mut String,
    title: &str,
    points: &[TrendPoint],
    value: impl Fn(&TrendPoint) -> Option<f64>,
    regressed: impl Fn(&TrendPoint) -> bool,
) {
    let values: Vec<Option<f64>> = points.iter().map(&value).collect();
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    let med = median(&present);
    let max = present
        .iter()
        .copied()
        .chain(med)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let plot_w = W - 2.0 * LEFT;
    let plot_h = H - TOP - BOTTOM;
    let slot = plot_w / points.len().max(1) as f64;
    let y = |v: f64| TOP + plot_h - (v / max) * plot_h;
    let _ = write!(
        out,
        r#"<figure><svg width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{t}</title><text x="{LEFT}" y="14" class="t">{t}</text><text x="{r}" y="14" class="m" text-anchor="end">max {max:.1} s</text>"#,
        t = esc(title),
        r = W - LEFT,
    );
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}" stroke="#a0aec0" stroke-width="1"/>"##,
        b = TOP + plot_h,
        r = W - LEFT,
    );
    for (i, (p, v)) in points.iter().zip(&values).enumerate() {
        let Some(v) = v else { continue };
        let colour = if regressed(p) {
            REGRESSION_COLOUR
        } else {
            BAR_COLOUR
        };
        let top = y(*v);
        // Never invisible: a zero still shows as a sliver.
        let height = (TOP + plot_h - top).max(1.0);
        let _ = write!(
            out,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{height:.1}" fill="{colour}"><title>{label}: {v:.1} s</title></rect>"#,
            x = LEFT + i as f64 * slot + slot * 0.15,
            y = TOP + plot_h - height,
            w = slot * 0.7,
            label = esc(&format!("{} {}", p.when.format("%Y-%m-%d %H:%M"), p.run_id)),
        );
    }
    if let Some(m) = med {
        let _ = write!(
            out,
            r#"<line x1="{LEFT}" y1="{my:.1}" x2="{r}" y2="{my:.1}" stroke="{MEDIAN_COLOUR}" stroke-width="1.5" stroke-dasharray="4 3"><title>median {m:.1} s</title></line>"#,
            my = y(m),
            r = W - LEFT,
        );
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            out,
            r#"<text x="{LEFT}" y="{ly}" class="m">{a}</text><text x="{r}" y="{ly}" class="m" text-anchor="end">{b}</text>"#,
            ly = H - 5.0,
            r = W - LEFT,
            a = esc(&first.when.format("%Y-%m-%d").to_string()),
            b = esc(&last.when.format("%Y-%m-%d").to_string()),
        );
    }
    out.push_str("</svg></figure>\n");
}

fn yes_no(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "NO",
        None => "n/a",
    }
}

/// Pure: the page. `title` names what the runs are of (stack or folder); `factor` is the
/// regression rule's, shown in the legend.
pub fn render(title: &str, factor: f64, points: &[TrendPoint]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lifeboat trend — {t}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; color: #1a202c; }}
h1 {{ font-size: 18px; margin: 0 0 4px; }}
p {{ margin: 4px 0 10px; font-size: 13px; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; border: 1px solid #e2e8f0; }}
.t {{ font-size: 12px; font-weight: 600; fill: #1a202c; }}
.m {{ font-size: 10px; fill: #4a5568; }}
.key {{ display: inline-block; width: 10px; height: 10px; }}
table {{ border-collapse: collapse; font-size: 12px; margin-top: 12px; }}
td, th {{ border: 1px solid #e2e8f0; padding: 2px 6px; text-align: left; }}
.bad {{ color: {REGRESSION_COLOUR}; font-weight: 600; }}
</style></head><body>
<h1>Lifeboat trend — {t}</h1>
<p>{n} runs, oldest first. <span class="key" style="background:{BAR_COLOUR}"></span> run
<span class="key" style="background:{REGRESSION_COLOUR}"></span> regression (over {factor}× the
median of the earlier runs) — dashed line: median of all runs. RTO: incident start (else
declaration) → serving.</p>
<div class="grid">
"#,
        t = esc(title),
        n = points.len(),
        factor = esc(&format!("{factor}")),
    );
    chart(&mut out, "RTO", points, |p| p.rto_seconds, |_| false);
    chart(&mut out, "worst RPO", points, |p| p.rpo_seconds, |_| false);
    for name in phase_names(points) {
        chart(
            &mut out,
            &name,
            points,
            |p| p.phases.get(&name).copied(),
            |p| p.regressed.contains(&name),
        );
    }
    out.push_str("</div>\n<table><tr><th>when (UTC)</th><th>run</th><th>kind</th><th>outcome</th><th>RTO s</th><th>worst RPO s</th><th>never both active</th><th>none left behind</th><th>regressions</th></tr>\n");
    let num = |v: Option<f64>| v.map(|s| format!("{s:.1}")).unwrap_or_else(|| "n/a".into());
    for p in points {
        let cls = |ok: Option<bool>| {
            if ok == Some(false) {
                " class=\"bad\""
            } else {
                ""
            }
        };
        let regressed: Vec<&str> = p.regressed.iter().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td{}>{}</td><td class=\"bad\">{}</td></tr>",
            esc(&p.when.format("%Y-%m-%d %H:%M").to_string()),
            esc(&p.run_id),
            esc(&p.kind),
            esc(&p.outcome),
            num(p.rto_seconds),
            num(p.rpo_seconds),
            cls(p.never_both_active),
            yes_no(p.never_both_active),
            cls(p.none_left_behind),
            yes_no(p.none_left_behind),
            esc(&regressed.join(", ")),
        );
    }
    out.push_str("</table>\n</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(run: &str, fence: f64, regressed: bool) -> TrendPoint {
        TrendPoint {
            run_id: run.into(),
            when: "2026-01-01T00:00:00Z".parse().unwrap(),
            kind: "drill failover".into(),
            outcome: "succeeded".into(),
            phases: [
                ("fence".to_string(), fence),
                ("<odd> & \"name\"".to_string(), 1.0),
            ]
            .into_iter()
            .collect(),
            rto_seconds: Some(100.0),
            rpo_seconds: None,
            regressed: if regressed {
                ["fence".to_string()].into_iter().collect()
            } else {
                BTreeSet::new()
            },
            never_both_active: Some(true),
            none_left_behind: None,
        }
    }

    #[test]
    fn trend_page_is_self_contained_escaped_and_colours_regressions() {
        let points = vec![
            point("r1", 10.0, false),
            point("r2", 12.0, false),
            point("<script>alert(1)</script>", 40.0, true),
        ];
        let html = render("stack <x>", 1.5, &points);
        assert!(!html.contains("<script"), "escaped and script-free");
        assert!(
            !html.contains("src=") && !html.contains("href=") && !html.contains("url("),
            "no external resources"
        );
        assert!(html.contains("&lt;odd&gt; &amp; &quot;name&quot;"));
        assert!(html.contains("stack &lt;x&gt;"));
        // One chart each for RTO, RPO, fence and the odd phase; fence comes first (known order).
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.find(">fence<").unwrap() < html.find("&lt;odd&gt;").unwrap());
        assert_eq!(
            html.matches(&format!("fill=\"{REGRESSION_COLOUR}\""))
                .count(),
            1
        );
        assert!(html.contains(MEDIAN_COLOUR) && html.contains("median 12.0 s"));
        // The run without an RPO has no RPO bar; the verdict it lacks reads n/a, not NO.
        assert!(html.contains("<td>n/a</td>"));
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
