//! The trend read from a real ledger: one real local drill's report, cloned into four later runs
//! with shifted times and scaled phases — one with a planted fence regression — is flagged on
//! exactly that phase of that run, and its HTML page draws the regression in its colour.

use chrono::Duration;
use lifeboat::{
    drill::{self, Answer, DrillKind},
    local::LocalEnv,
    trend,
};
use lifeboat_core::{
    plan::Plan,
    trend_html::{BAR_COLOUR, REGRESSION_COLOUR},
};

mod common;

/// Scales of the four clones (the real run is 1.0), and which clone's fence is 4x slower.
const SCALES: [f64; 4] = [1.1, 0.95, 1.05, 1.0];
const PLANTED: usize = 2;
const PLANTED_FACTOR: f64 = 4.0;

/// Runs one real drill and seeds four clones of its report: every run id oldest first, and the
/// planted one.
async fn seed(env: &LocalEnv, plan: &Plan) -> (Vec<String>, String) {
    let options = common::options(DrillKind::Failover, Answer::Approve);
    let r = drill::drive(env, plan, &options).await.unwrap();
    let real = common::report_of(env, &r.run_id).await;
    assert!(
        real.phases
            .iter()
            .any(|p| p.name == "fence" && p.seconds > 0.0),
        "the real report has a timed fence phase: {:?}",
        real.phases
    );
    let mut ids = vec![real.run_id.clone()];
    let mut planted = String::new();
    for (i, scale) in SCALES.iter().enumerate() {
        let shift = Duration::days(i as i64 + 1);
        let mut c = real.clone();
        c.run_id = format!("{}-t{}", real.run_id, i + 1);
        c.generated_at += shift;
        c.trigger.declared_at += shift;
        for s in &mut c.steps {
            s.started_at += shift;
            s.ended_at += shift;
        }
        for p in &mut c.phases {
            let k = if i == PLANTED && p.name == "fence" {
                PLANTED_FACTOR
            } else {
                1.0
            };
            p.seconds *= scale * k;
            p.start += shift;
            p.end = p.start + Duration::milliseconds((p.seconds * 1000.0) as i64);
        }
        for s in [
            &mut c.rto.from_incident_seconds,
            &mut c.rto.from_declaration_seconds,
            &mut c.rto.from_approval_seconds,
        ] {
            *s = s.map(|v| v * scale);
        }
        env.deps
            .ledger
            .put(
                &lifeboat_core::ledger::keys::report(
                    &lifeboat_core::run::RunId(c.run_id.clone()),
                    lifeboat_core::ledger::keys::ReportFormat::Json,
                ),
                &c,
            )
            .await
            .unwrap();
        if i == PLANTED {
            planted = c.run_id.clone();
        }
        ids.push(c.run_id);
    }
    // Not a run's report: neither read nor an error.
    env.deps
        .ledger
        .put_raw(
            &(lifeboat_core::ledger::keys::run_prefix(&lifeboat_core::run::RunId(
                real.run_id.clone(),
            )) + "extra/report.json"),
            b"not json".to_vec(),
            "application/json",
        )
        .await
        .unwrap();
    (ids, planted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_trend_flags_exactly_the_planted_fence_regression() {
    let (env, plan) = common::setup(|_| {}).await;
    let (ids, planted) = seed(&env, &plan).await;
    let reports = trend::load_from_ledger(&env.deps.ledger).await.unwrap();
    env.stop().await;
    let t = trend::compute(&reports, plan.objectives.regression_factor);

    let order: Vec<&str> = t.rows.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(order, ids, "every run's report, oldest first");
    let flagged: Vec<(&str, &str)> = t
        .rows
        .iter()
        .flat_map(|r| {
            r.regressions
                .iter()
                .map(move |g| (r.run_id.as_str(), g.phase.as_str()))
        })
        .collect();
    assert_eq!(flagged, vec![(planted.as_str(), "fence")]);
    let row = t.rows.iter().find(|r| r.run_id == planted).unwrap();
    let g = &row.regressions[0];
    // Earlier fences: 1.0, 1.1, 0.95 of the real one; median 1.0, the planted 1.05 × 4.
    assert!(
        (g.factor() - SCALES[PLANTED] * PLANTED_FACTOR).abs() < 0.01,
        "{g:?}"
    );
    for r in &t.rows {
        assert_eq!(r.never_both_active, Some(true), "{}", r.run_id);
        assert_eq!(r.none_left_behind, Some(true), "{}", r.run_id);
        assert!(r.headline_rto().is_some() && r.phases.contains_key("fence"));
    }
    let table = trend::markdown(&t);
    let marked = format!(
        "fence {:.1} s ({:.1}x median) SLOWER",
        g.seconds,
        g.factor()
    );
    assert!(table.contains(&marked), "{table}");
    assert_eq!(
        table.matches("SLOWER").count(),
        3,
        "legend, cell, list: {table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trend_page_renders_in_headless_chromium() {
    let Some(browser) = common::chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs chromium (Debian package `chromium`)"
        );
        eprintln!("chromium not installed: `apt-get install chromium` to run this test");
        return;
    };
    let (env, plan) = common::setup(|_| {}).await;
    seed(&env, &plan).await;
    let reports = trend::load_from_ledger(&env.deps.ledger).await.unwrap();
    env.stop().await;
    let loaded = trend::Loaded {
        source: "local test ledger".into(),
        trend: trend::compute(&reports, plan.objectives.regression_factor),
        readiness: None,
    };
    let out =
        std::env::temp_dir().join(format!("lifeboat-trend-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&out).unwrap();
    let html = out.join("trend.html");
    let text = trend::output(&loaded, Some(&html)).unwrap();
    assert!(text.contains("trend page:"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && !page.contains("<script"));

    let shot = out.join("trend.png");
    common::screenshot(&browser, &html, &shot);
    let regression = common::count_pixels(&shot, common::rgb(REGRESSION_COLOUR));
    let bars = common::count_pixels(&shot, common::rgb(BAR_COLOUR));
    assert!(
        regression > 1000,
        "the regressed fence bar drawn ({regression} px)"
    );
    assert!(bars > 3000, "the other bars drawn ({bars} px)");
}
