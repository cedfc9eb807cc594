//! Benchmark of the function binaries (see `BENCHMARKS.md`, "Function binaries: size and cold
//! start"). Not a test: it prints one table row per function.
//!
//! Each function's release binary is started cold under the local Lambda Runtime API host (the
//! template's environment, a fresh process per round) and given one event without a run, which
//! every step refuses with `InvalidInput` before any network call. Measured per function: the
//! binary's size, process start → first `GET next` (init), process start → first answer, and peak
//! resident memory. The same for a Python function doing the same work
//! (`tests/bench/cold_start_function.py`: boto3 and the Databricks SDK imported, clients built).
//!
//! ```text
//! cargo build --release $(ls functions | grep -v core | sed 's/^/-p /')
//! cargo run --release -p lifeboat --example cold_start -- --rounds 10
//! # some functions only:
//! cargo build --release -p notify -p shutdown-sweep
//! cargo run --release -p lifeboat --example cold_start -- --only notify,shutdown-sweep
//! ```

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use lifeboat::local::{
    runtime::{placeholder_values, Function, FunctionRuntime, Outcome, RoleCredentials},
    template, ACCOUNT, REGION,
};

/// The wrapper the host starts for the Python function (the host starts files, not commands).
const PYTHON_FUNCTION: &str = "python-function";

struct Args {
    bin_dir: PathBuf,
    rounds: usize,
    python: Option<PathBuf>,
    /// Only these functions (empty: all).
    only: Vec<String>,
}

fn args(root: &Path) -> Result<Args> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut out = Args {
        bin_dir: target.join("release"),
        rounds: 10,
        python: Some(root.join(".venv/bin/python")),
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bin-dir" => out.bin_dir = it.next().context("--bin-dir DIR")?.into(),
            "--rounds" => out.rounds = it.next().context("--rounds N")?.parse()?,
            "--python" => out.python = Some(it.next().context("--python PATH")?.into()),
            "--no-python" => out.python = None,
            "--only" => {
                out.only = it
                    .next()
                    .context("--only NAME,NAME")?
                    .split(',')
                    .map(str::to_string)
                    .collect()
            }
            other => bail!(
                "unknown argument {other} (--bin-dir DIR, --rounds N, --python PATH, --no-python, --only NAME,NAME)"
            ),
        }
    }
    if out.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(out)
}

/// Removes the benchmark's folder however `main` ends (an error included).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Default)]
struct Row {
    size_bytes: u64,
    init_ms: Vec<f64>,
    answer_ms: Vec<f64>,
    peak_rss_kib: u64,
    outcome: String,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

fn p90(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get((s.len() * 9 / 10).min(s.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let args = args(&root)?;
    let specs = template::functions(&root.join("infra/template.yaml"), &placeholder_values())?;

    // One folder the host starts from: the release binaries and the Python wrapper.
    let work = std::env::temp_dir().join(format!("lifeboat-cold-start-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let _cleanup = RemoveOnDrop(work.clone());
    let mut functions = Vec::new();
    let credentials = RoleCredentials {
        access_key_id: "ASIABENCHMARK".into(),
        secret_access_key: "benchmark".into(),
        session_token: "benchmark".into(),
        principal: format!("arn:aws:sts::{ACCOUNT}:assumed-role/bench/bench"),
    };
    for spec in specs.values() {
        if !args.only.is_empty() && !args.only.contains(&spec.binary) {
            continue;
        }
        let binary = args.bin_dir.join(&spec.binary);
        if !binary.is_file() {
            bail!(
                "{} is not built: cargo build --release -p {}",
                binary.display(),
                spec.binary
            );
        }
        std::os::unix::fs::symlink(std::fs::canonicalize(&binary)?, work.join(&spec.binary))?;
        functions.push(Function {
            spec: spec.clone(),
            credentials: credentials.clone(),
        });
    }
    if let Some(python) = &args.python {
        if !python.exists() {
            bail!(
                "{} not found (make the venv: scripts/test.sh)",
                python.display()
            );
        }
        let script = root.join("tests/bench/cold_start_function.py");
        let wrapper = work.join(PYTHON_FUNCTION);
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec {} {}\n",
                // Not canonicalised: the venv's python is a symlink, and resolving it would
                // start the base interpreter without the venv's packages.
                std::path::absolute(python)?.display(),
                std::fs::canonicalize(&script)?.display()
            ),
        )?;
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        // The same environment as a Rust function; memory sized so that Python is not killed.
        let mut spec = specs
            .get("notify")
            .context("the template has no notify function")?
            .clone();
        spec.binary = PYTHON_FUNCTION.into();
        spec.memory_mb = 1024;
        functions.push(Function { spec, credentials });
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let runtime = Arc::new(FunctionRuntime::new(
        addr.to_string(),
        work.clone(),
        work.join("logs"),
        REGION,
        ACCOUNT,
    ));
    std::fs::create_dir_all(work.join("logs"))?;
    let app = runtime.routes();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let names: Vec<String> = functions.iter().map(|f| f.spec.binary.clone()).collect();
    runtime.install(functions);

    let mut rows = std::collections::BTreeMap::<String, Row>::new();
    for round in 0..args.rounds {
        for name in &names {
            let started = Instant::now();
            let outcome = tokio::time::timeout(
                Duration::from_secs(60),
                runtime.invoke(name, Bytes::from_static(b"{}"), false),
            )
            .await
            .with_context(|| format!("{name}: no answer within 60 s"))?;
            let answer = started.elapsed().as_secs_f64() * 1e3;
            runtime.retire(name);
            let row = rows.entry(name.clone()).or_default();
            row.answer_ms.push(answer);
            let kind = match outcome {
                Outcome::Response(_) => "response".to_string(),
                Outcome::Error { error_type, .. } => error_type,
            };
            if kind.starts_with("Runtime.") || kind.starts_with("Sandbox.") {
                let said: Vec<String> = runtime
                    .output()
                    .into_iter()
                    .filter(|l| l.starts_with(&format!("[{name}]")))
                    .collect();
                bail!(
                    "{name}: {kind}; its output:\n{}",
                    said[said.len().saturating_sub(15)..].join("\n")
                );
            }
            if round == 0 {
                row.outcome = kind;
            } else if row.outcome != kind {
                bail!("{name}: answered {kind} after {}", row.outcome);
            }
        }
    }
    for (name, figures) in runtime.figures() {
        if let Some(row) = rows.get_mut(&name) {
            row.init_ms = figures.init_ms;
            row.peak_rss_kib = figures.peak_rss_kib;
            row.size_bytes = std::fs::metadata(work.join(&name))
                .map(|m| m.len())
                .unwrap_or(0);
        }
    }
    runtime.shutdown();
    server.abort();

    println!(
        "| function | binary (MB) | init median (ms) | first answer median (ms) | p90 (ms) | peak RSS (MiB) | answer |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    let rust: Vec<f64> = rows
        .iter()
        .filter(|(n, _)| n.as_str() != PYTHON_FUNCTION)
        .map(|(_, r)| median(&r.answer_ms))
        .collect();
    for (name, row) in &rows {
        let size = if name == PYTHON_FUNCTION {
            "—".to_string()
        } else {
            format!("{:.1}", row.size_bytes as f64 / 1e6)
        };
        println!(
            "| {name} | {size} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            median(&row.init_ms),
            median(&row.answer_ms),
            p90(&row.answer_ms),
            row.peak_rss_kib as f64 / 1024.0,
            row.outcome
        );
    }
    let sizes: Vec<u64> = rows
        .iter()
        .filter(|(n, _)| n.as_str() != PYTHON_FUNCTION)
        .map(|(_, r)| r.size_bytes)
        .collect();
    println!(
        "\n{} rounds; largest binary {:.1} MB, smallest {:.1} MB; Rust first answer median of medians {:.1} ms",
        args.rounds,
        sizes.iter().max().copied().unwrap_or(0) as f64 / 1e6,
        sizes.iter().min().copied().unwrap_or(0) as f64 / 1e6,
        median(&rust)
    );
    if let Some(py) = rows.get(PYTHON_FUNCTION) {
        println!(
            "Python first answer median {:.1} ms: {:.0}x the Rust median",
            median(&py.answer_ms),
            median(&py.answer_ms) / median(&rust)
        );
    }
    Ok(())
}
