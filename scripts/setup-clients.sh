#!/usr/bin/env bash
# Installs what the client test suite (tests/clients) needs, inside .ci/cache
# (gitignored). Safe to run again; each step is skipped when already done.
#   .ci/cache/venv   Python venv: pytest, kafka-python and its codecs
#   .ci/cache/jars   kafka-clients.jar and its runtime jars, taken from a PyPI
#                    wheel that bundles them (Maven Central is not reachable)
# System packages (kcat, a JDK) are not installed here: .ci/run does that with apt.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.ci/cache"
VENV="$CACHE/venv"
JARS_DIR="$CACHE/jars"
REQS="$ROOT/tests/clients/requirements.txt"
WHEEL_PKG="shigawire-apache-flink-libraries==2.0.0.post1"
JARS="kafka-clients slf4j-api lz4-java snappy-java zstd-jni"

mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
stamp="$VENV/.requirements.txt"
if ! cmp -s "$REQS" "$stamp"; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
  cp "$REQS" "$stamp"
fi
"$VENV/bin/python" -c 'import kafka, pytest; print("venv:", "kafka-python", kafka.__version__, "| pytest", pytest.__version__)'

missing=0
for j in $JARS; do [ -f "$JARS_DIR/$j.jar" ] || missing=1; done
if [ "$missing" = 1 ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps "$WHEEL_PKG" -d "$tmp"
  mkdir -p "$JARS_DIR"
  "$VENV/bin/python" - "$JARS_DIR" "$tmp"/*.whl $JARS <<'PY'
import sys, zipfile
out, wheel, names = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(wheel) as z:
    for n in names:
        with open(f"{out}/{n}.jar", "wb") as f:
            f.write(z.read(f"pyflink/lib/{n}.jar"))
PY
fi
"$VENV/bin/python" -c 'import sys, zipfile; print("jars: kafka-clients", zipfile.ZipFile(sys.argv[1]).read("kafka/kafka-version.properties").decode().split("version=")[1].split()[0])' "$JARS_DIR/kafka-clients.jar"
