#!/usr/bin/env bash
# Runs the shared compat suite (../shared/compat) against a fresh broker on a
# free port, capped at 10 minutes. Never fails: prints one line
# "COMPAT-SUMMARY passed=N failed=N skipped=N" (or the reason it could not run).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="$ROOT/.ci/cache"
COMPAT="$CACHE/compat"
DATA="$CACHE/compat-data"
summary() { echo "COMPAT-SUMMARY $*"; exit 0; }

mkdir -p "$COMPAT"
cp -a ../shared/compat/. "$COMPAT/"
chmod -R u+w "$COMPAT"
(cd "$COMPAT" && timeout 300 ./setup.sh) >"$CACHE/compat-setup.log" 2>&1 \
  || { tail -20 "$CACHE/compat-setup.log"; summary "setup.sh failed (see above)"; }

[ -x target/debug/broker ] || summary "target/debug/broker missing"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
rm -rf "$DATA" && mkdir -p "$DATA"
target/debug/broker --override "log.dirs=$DATA/data" \
  --override "listeners=PLAINTEXT://127.0.0.1:$port" 2>"$DATA/broker.stderr" &
pid=$!
stop_broker() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
trap stop_broker EXIT
for _ in $(seq 1 200); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

(cd "$COMPAT" && BOOTSTRAP="127.0.0.1:$port" timeout 600 ./run.sh) >"$CACHE/compat-run.log" 2>&1
rc=$?
grep -E '^(PASS|FAIL|SKIP)' "$CACHE/compat-run.log" | sed 's/^/  /' || true
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$CACHE/compat-run.log" | tail -1)
if [ -z "$line" ]; then
  tail -20 "$CACHE/compat-run.log"
  summary "no summary line (run.sh exit $rc; 124 means the 600 s cap)"
fi
read -r p _ f _ s _ <<<"${line//,/}"
summary "passed=$p failed=$f skipped=$s (run.sh exit $rc)"
