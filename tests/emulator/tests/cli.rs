//! The binary's command-line contract.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_databricks-emulator");

#[test]
fn port_zero_prints_the_url_first_and_serves() {
    let mut child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--fixture",
            "empty",
            "--token",
            "t",
            "--role",
            "dr",
            "--seed",
            "7",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .expect("first line")
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert!(port > 0);
    // Raw HTTP/1.1 request without a client library.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(
        b"GET /.well-known/databricks-config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("6543210987654321"));
    // SIGTERM → exit 0.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn unknown_fixture_and_busy_port_fail_clearly() {
    let out = Command::new(BIN)
        .args(["--port", "0", "--fixture", "huge", "--token", "t"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("huge"));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let out = Command::new(BIN)
        .args(["--port", &port, "--fixture", "empty", "--token", "t"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("port {port} is busy")), "{err}");
    let out = Command::new(BIN)
        .args(["--fixture", "demo"])
        .output()
        .expect("run");
    assert!(!out.status.success());
}

#[test]
fn lifecycle_profile_and_no_drift_flags() {
    let mut child = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--fixture",
            "empty",
            "--token",
            "t",
            "--lifecycle-profile",
            "realistic",
            "--clock-speed",
            "600",
            "--no-drift",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(b"GET /__emulator/config HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        resp.contains(r#""lifecycle_profile":"realistic""#),
        "{resp}"
    );
    assert!(resp.contains(r#""clock_speed":600.0"#), "{resp}");
    let out = Command::new(BIN)
        .args([
            "--port",
            "0",
            "--fixture",
            "empty",
            "--token",
            "t",
            "--lifecycle-profile",
            "sluggish",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sluggish"));
}
