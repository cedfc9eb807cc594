//! The HTML report of a real local run renders in headless Chromium and its timeline is drawn:
//! a screenshot shows the step bars, the fence bar and the approval wait in their colours.

use std::{path::PathBuf, process::Command};

use lifeboat::drill::{self, Answer, DrillKind};

mod common;
use lifeboat_core::report_html::colors;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH")?
                .to_str()?
                .split(':')
                .map(|d| PathBuf::from(d).join(name))
                .find(|p| p.is_file())
        })
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// Pixels of (about) a colour in an RGBA/RGB PNG.
fn count(png_path: &std::path::Path, color: [u8; 3]) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(step)
        .filter(|p| p.len() >= 3 && (0..3).all(|i| (p[i] as i32 - color[i] as i32).abs() <= 6))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_renders_with_its_timeline() {
    let Some(browser) = chromium() else {
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
    let profile = out.join("chromium-profile");
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1100,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .status()
        .unwrap();
    assert!(
        status.success() && shot.is_file(),
        "chromium produced no screenshot"
    );
    let steps = count(&shot, rgb(colors::STEP));
    let fence = count(&shot, rgb(colors::FENCE));
    let approval = count(&shot, rgb(colors::APPROVAL));
    let rto = count(&shot, rgb(colors::RTO));
    assert!(steps > 300, "step bars drawn ({steps} px)");
    assert!(fence > 30, "fence bar drawn ({fence} px)");
    assert!(approval > 30, "approval wait drawn ({approval} px)");
    assert!(rto > 20, "RTO marker drawn ({rto} px)");
}
