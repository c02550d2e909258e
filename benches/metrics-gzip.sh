#!/usr/bin/env bash
# /metrics with and without gzip at 5,000 employees with per-employee series (employee_label = "id",
# the shipped default): the bytes of one scrape each way, and the daemon's CPU per scrape, from
# /proc/PID/stat over 200 scrapes of each kind. Loopback only, bounded. Usage:
#   benches/metrics-gzip.sh [EMPLOYEES] [SCRAPES]
# Prints one table; docs/benchmarks.md quotes it.
set -euo pipefail
cd "$(dirname "$0")/.."
employees=${1:-5000} scrapes=${2:-200}
cargo build --quiet --release --bin backlogd
bin=$PWD/target/release/backlogd
work=$(mktemp -d)
pid=
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BACKLOGD__SERVER__LISTEN="127.0.0.1:$port" BACKLOGD__STORE__PATH="$work/store" \
  "$bin" run --config config/backlogd.toml > "$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
# Employees, each with two open cases assigned (so each has its workload series).
python3 - "$employees" > "$work/events.ndjson" <<'PY'
import json, sys
n = int(sys.argv[1])
t = "2026-11-02T09:00:00+01:00"
for i in range(n):
    print(json.dumps({"id": f"j{i}", "type": "employee.joined", "time": t,
        "data": {"employee": f"E-{i}", "role": "caseworker", "experienced": i % 3 != 0}}))
    for c in range(2):
        print(json.dumps({"id": f"r{i}-{c}", "type": "case.registered", "time": t,
            "data": {"case": f"Z-{i}-{c}", "track": "asylum", "location": f"L{i % 20}"}}))
        print(json.dumps({"id": f"a{i}-{c}", "type": "case.assigned", "time": t,
            "data": {"case": f"Z-{i}-{c}", "employee": f"E-{i}"}}))
PY
"$bin" send --quiet --url "http://127.0.0.1:$port" "$work/events.ndjson" >/dev/null
sleep 1.5 # the per-employee rows are rebuilt on the next tick
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks=$(getconf CLK_TCK)
measure() { # $1: curl options; prints bytes and CPU ms per scrape
  local before after bytes
  bytes=$(curl -s $1 "http://127.0.0.1:$port/metrics" | wc -c)
  before=$(cpu)
  for _ in $(seq "$scrapes"); do curl -s $1 -o /dev/null "http://127.0.0.1:$port/metrics"; done
  after=$(cpu)
  echo "$bytes $(python3 -c "print(f'{($after - $before) * 1000 / $ticks / $scrapes:.2f}')")"
}
read -r plain_bytes plain_ms < <(measure "")
read -r gzip_bytes gzip_ms < <(measure "-H Accept-Encoding:gzip")
series=$(curl -s "http://127.0.0.1:$port/metrics" | grep -vc '^#')
echo "| $employees employees, $series samples | bytes per scrape | daemon CPU per scrape |"
echo "|---|---|---|"
echo "| identity | $plain_bytes | $plain_ms ms |"
echo "| gzip (fast) | $gzip_bytes | $gzip_ms ms |"
