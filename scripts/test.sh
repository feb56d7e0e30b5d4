#!/usr/bin/env bash
# The test command (the one README.md names):
#   bash scripts/test.sh --install   install what the tests need, then test
#   bash scripts/test.sh             test only (fails fast, naming what is missing)
# Builds the broker binary, runs every crate's tests (`cargo test --workspace`,
# including the integration tests in tests/), then the client suite in
# tests/clients (kafka-python, kcat, the Java client) with pytest. Exits
# non-zero if anything failed; its last line is "total: N passed, N failed, N skipped".
#
# --install: apt packages (kcat; iproute2; a C toolchain, pkg-config and zlib headers for
# the rdkafka crate's bundled librdkafka), then scripts/setup-clients.sh (a
# Python venv and the Java client jars under .ci/cache). Needs root or sudo.
#
# Environment:
#   MILLRACE_PYTHON   python with pytest and kafka-python (default .ci/cache/venv/bin/python)
#   MILLRACE_JARS     folder with kafka-clients.jar and its runtime jars (default .ci/cache/jars)
#   CARGO_TEST_ARGS   extra arguments after `cargo test --workspace` (e.g. --release)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export MILLRACE_PYTHON="${MILLRACE_PYTHON:-$ROOT/.ci/cache/venv/bin/python}"
export MILLRACE_JARS="${MILLRACE_JARS:-$ROOT/.ci/cache/jars}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
step() { printf '\n=== %s\n' "$*"; }

if [ "${1:-}" = "--install" ]; then
  step "install test dependencies"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # iproute2: the cluster tests put nodes in network namespaces (`ip netns`).
  packages="kcat build-essential pkg-config zlib1g-dev iproute2"
  # shellcheck disable=SC2086
  if ! dpkg -s $packages >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $packages >/dev/null
  fi
  scripts/setup-clients.sh || { echo "scripts/test.sh: scripts/setup-clients.sh failed" >&2; exit 2; }
elif [ -n "${1:-}" ]; then
  echo "usage: scripts/test.sh [--install]" >&2
  exit 2
fi

# --- every tool first, so a missing one fails in a second, not after the build
missing=()
command -v cargo >/dev/null || missing+=("cargo (the Rust toolchain)")
command -v kcat >/dev/null || missing+=("kcat (apt-get install kcat)")
command -v java >/dev/null && command -v javac >/dev/null || missing+=("java and javac (JDK 17)")
"$MILLRACE_PYTHON" -c 'import pytest, pytest_timeout, kafka' 2>/dev/null \
  || missing+=("$MILLRACE_PYTHON with pytest, pytest-timeout and kafka-python (scripts/setup-clients.sh)")
[ -f "$MILLRACE_JARS/kafka-clients.jar" ] || missing+=("$MILLRACE_JARS/kafka-clients.jar (scripts/setup-clients.sh)")
if [ "${#missing[@]}" -gt 0 ]; then
  printf 'scripts/test.sh: missing %s\n' "${missing[@]}" >&2
  exit 2
fi

step "build the broker binary"
cargo build -p millrace-broker --bin broker || { echo "scripts/test.sh: broker build failed" >&2; exit 1; }
export MILLRACE_BROKER_BIN="$ROOT/target/debug/broker"

step "cargo test --workspace"
# --no-fail-fast: one failing test binary must not hide the others.
# shellcheck disable=SC2086
cargo test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-} 2>&1 | tee "$LOGS/cargo.log"
cargo_rc=${PIPESTATUS[0]}

step "client suite (pytest tests/clients)"
(cd tests/clients && "$MILLRACE_PYTHON" -m pytest) 2>&1 | tee "$LOGS/pytest.log"
pytest_rc=${PIPESTATUS[0]}

# --- summary: cargo's per-binary lines added up, pytest's closing line
sum() { grep -E '^test result:' "$LOGS/cargo.log" | grep -oE "[0-9]+ $1" | awk '{s += $1} END {print s + 0}'; }
c_pass=$(sum passed); c_fail=$(sum failed); c_ign=$(sum ignored)
c_bins=$(grep -cE '^test result:' "$LOGS/cargo.log")
py_line=$(grep -E '^=+ .*(passed|failed|error|skipped|deselected|no tests ran).* in [0-9.]+s' "$LOGS/pytest.log" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//')
py_pass=$(grep -oE '[0-9]+ passed' <<<"$py_line" | grep -oE '[0-9]+' || echo 0)
py_fail=$(grep -oE '[0-9]+ (failed|error|errors)' <<<"$py_line" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}')
py_skip=$(grep -oE '[0-9]+ (skipped|xfailed)' <<<"$py_line" | grep -oE '[0-9]+' | awk '{s += $1} END {print s + 0}')

step "summary"
echo "cargo test (exit $cargo_rc): $c_pass passed, $c_fail failed, $c_ign ignored in $c_bins test binaries"
grep -E '^test result: FAILED' "$LOGS/cargo.log" || true
echo "pytest (exit $pytest_rc): ${py_line:-no summary line}"
status=0
[ "$cargo_rc" -eq 0 ] || status=1
[ "$pytest_rc" -eq 0 ] || status=1
if [ "$pytest_rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests: that is a failure" >&2
fi
if [ "$py_pass" -eq 0 ] || [ "$c_pass" -eq 0 ]; then
  echo "scripts/test.sh: a runner passed no tests: that is a failure" >&2
  status=1
fi
# A runner that failed without naming a failed test (no tests, a crash, a
# build error) still counts as one failure in the closing line.
runner_fail=0
[ "$cargo_rc" -ne 0 ] && [ "$c_fail" -eq 0 ] && runner_fail=$((runner_fail + 1))
[ "$pytest_rc" -ne 0 ] && [ "$py_fail" -eq 0 ] && runner_fail=$((runner_fail + 1))
[ "$status" -ne 0 ] && [ $((c_fail + py_fail + runner_fail)) -eq 0 ] && runner_fail=1
echo "total: $((c_pass + py_pass)) passed, $((c_fail + py_fail + runner_fail)) failed, $((c_ign + py_skip)) skipped"
exit "$status"
