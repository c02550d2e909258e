#!/usr/bin/env bash
# backlogd side by side with its peers, in one run on this machine: the end-to-end load tool
# (benches/load.rs), then mtail and query-exporter on PostgreSQL on the same events
# (benches/peers.py). Prints `name = value` lines; docs/benchmarks.md quotes them.
#
#   benches/peers.sh                 # full size: 1,000,000 cases of the scale scenario (~12 min)
#   CASES=100000 benches/peers.sh    # a quicker look
#
# Installs what it needs when missing: Debian mtail and postgresql, PyPI query-exporter with the
# psycopg driver. Runs as root (PostgreSQL itself runs as the postgres user).
set -euo pipefail
cd "$(dirname "$0")/.."

CASES=${CASES:-1000000}
EMPLOYEES=${EMPLOYEES:-5000}
SENDERS=${SENDERS:-4}
BATCH=${BATCH:-5000}
SCRAPES=${SCRAPES:-300}

need_apt=()
command -v mtail >/dev/null || need_apt+=(mtail)
[ -x /usr/lib/postgresql/15/bin/postgres ] || need_apt+=(postgresql)
command -v pg_isready >/dev/null || need_apt+=(postgresql-client)
if [ ${#need_apt[@]} -gt 0 ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi
if ! command -v query-exporter >/dev/null || ! python3 -c 'import psycopg' 2>/dev/null; then
    python3 -m pip install -q query-exporter 'psycopg[binary]'
fi

cargo build --release --quiet
binary=target/release/backlogd
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
echo "# $(date -u +%FT%TZ), backlogd $(git rev-parse --short HEAD)"

echo "## load: $SENDERS senders, batches of $BATCH, scale scenario with $CASES cases"
cargo bench --quiet --bench load -- --bench --senders "$SENDERS" --batch "$BATCH" \
    --cases "$CASES" --employees "$EMPLOYEES" --scrapes "$SCRAPES"

echo "## peers: the same scale events (understaffed: ${CASES} cases, $((EMPLOYEES / 10)) employees)"
# A tenth of the staff leaves most cases open at the end, as in a backlog: that is what the SQL
# query has to count at every scrape.
"$binary" simulate --scenario scale --cases "$CASES" --employees "$((EMPLOYEES / 10))" --to now \
    --out "$work/events.ndjson"
python3 benches/peers.py --binary "$binary" --events "$work/events.ndjson" --batch "$BATCH" \
    --scrapes "$SCRAPES"
