#!/usr/bin/env bash
# The test suite: Rust unit, client-vs-emulator and end-to-end tests (the real state machine in
# moto with the real handlers), then the emulator's fidelity tests with the official Databricks
# Python SDK and the template-vs-code checks of infra/. Sets up .venv on first use. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/pytest ] \
  || ! .venv/bin/python -c "import deltalake, pyarrow" 2>/dev/null; then
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install -q -r requirements-dev.txt
fi
# The function binaries first: the drill and the end-to-end tests in binaries mode run them
# (cargo test holds the build lock, so they cannot build them themselves).
cargo build --workspace --bins
cargo test --workspace
target_dir="${CARGO_TARGET_DIR:-target}"
DATABRICKS_EMULATOR_BIN="$target_dir/debug/databricks-emulator" .venv/bin/pytest -q tests/infra tests/fidelity tests/moto
