//! The HTML report of a real local run renders in headless Chromium and its timeline is drawn:
//! a screenshot shows the step bars, the fence bar and the approval wait in their colours.

use lifeboat::drill::{self, Answer, DrillKind};

mod common;
use lifeboat_core::report::html::colors;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_with_its_timeline() {
    let Some(browser) = common::chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs chromium (Debian package `chromium`)"
        );
        eprintln!("chromium not installed: `apt-get install chromium` to run this test");
        return;
    };
    let (env, plan) = common::setup(|_| {}).await;
    let options = common::options(DrillKind::Failover, Answer::Approve);
    let out = options.out_dir.clone();
    let r = drill::drive(&env, &plan, &options).await.unwrap();
    env.stop().await;
    let html = r.report_dir.join("report.html");
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.contains("<svg") && text.contains("fence loop") && text.contains("approval wait"));
    assert!(!text.contains("<script"), "self-contained, no scripts");

    let shot = out.join("report.png");
    common::screenshot(&browser, &html, &shot);
    let steps = common::count_pixels(&shot, common::rgb(colors::STEP));
    let fence = common::count_pixels(&shot, common::rgb(colors::FENCE));
    let approval = common::count_pixels(&shot, common::rgb(colors::APPROVAL));
    let rto = common::count_pixels(&shot, common::rgb(colors::RTO));
    assert!(steps > 300, "step bars drawn ({steps} px)");
    assert!(fence > 30, "fence bar drawn ({fence} px)");
    assert!(approval > 30, "approval wait drawn ({approval} px)");
    assert!(rto > 20, "RTO marker drawn ({rto} px)");
}
