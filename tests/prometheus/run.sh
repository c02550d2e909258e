#!/usr/bin/env bash
# Checks the shipped Prometheus rules and runs their unit tests (tests/prometheus/*.test.yml), then
# checks the shipped Alertmanager routing (config/alertmanager/backlogd.yml) with amtool, and its
# inhibitions with amtool against a real Alertmanager (prometheus-alertmanager) on that file.
# Needs promtool (Debian package `prometheus`) and python3; ./scripts/test installs promtool when
# missing.
# Exits non-zero when the rules do not load or any test fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PROMTOOL="${PROMTOOL:-promtool}"
if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
  echo "tests/prometheus/run.sh: promtool not found (apt-get install prometheus)" >&2
  exit 1
fi

"$PROMTOOL" check rules config/prometheus/backlogd-rules.yml
# BacklogForming's tests are generated from rhythms of cases in and out: the file must be what the
# generator writes.
if ! python3 tests/prometheus/gen-forming-tests | diff -u tests/prometheus/backlogd-rules-forming.test.yml - >&2; then
  echo "tests/prometheus/backlogd-rules-forming.test.yml is stale: tests/prometheus/gen-forming-tests > it" >&2
  exit 1
fi
# promtool evaluates every rule at every evaluation step up to a group's last eval_time, one file on
# one core: the three files run side by side, and each one's output is shown whole.
outputs=$(mktemp -d)
pids=()
for file in backlogd-rules backlogd-rules-weeks backlogd-rules-forming; do
  "$PROMTOOL" test rules "tests/prometheus/$file.test.yml" > "$outputs/$file" 2>&1 &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
cat "$outputs"/*
rm -rf "$outputs"
((failed == 0)) || { echo "tests/prometheus/run.sh: a promtool unit test failed (above)" >&2; exit 1; }

# The shipped Alertmanager routing: valid, and each kind of alert reaches the right receiver.
AMTOOL="${AMTOOL:-amtool}"
if ! command -v "$AMTOOL" >/dev/null 2>&1; then
  echo "tests/prometheus/run.sh: amtool not found (apt-get install prometheus-alertmanager)" >&2
  exit 1
fi
am=config/alertmanager/backlogd.yml
"$AMTOOL" check-config "$am"
route() { "$AMTOOL" config routes test --config.file="$am" --verify.receivers="$1" "${@:2}" 2>/dev/null; }
route pager severity=page hours=always source=daemon alertname=BacklogdDown
route pager severity=page hours=business source=data alertname=RenewedBacklog
route tickets severity=ticket hours=business source=data alertname=OverdueCasesHigh
route tickets severity=ticket hours=business source=data alertname=BacklogForming track=asylum
route tickets severity=ticket hours=business source=daemon alertname=BacklogdEventsRejected
route pager severity=page hours=always source=daemon alertname=BacklogdCertificateExpiresSoon
route tickets severity=ticket hours=business source=daemon alertname=BacklogdCertificateExpiring
echo "alertmanager routing: SUCCESS"

# The shipped inhibitions, with amtool against a real Alertmanager on the shipped file (they are
# computed when alerts are queried): RenewedBacklog suppresses BacklogForming of its own track only,
# BacklogdDown the data alerts of its own instance only, BacklogdCertificateExpiresSoon the
# certificate's ticket of its own instance only.
ALERTMANAGER="${ALERTMANAGER:-prometheus-alertmanager}"
amdir=$(mktemp -d)
amport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ALERTMANAGER" --config.file="$am" --storage.path="$amdir/data" --web.listen-address="127.0.0.1:$amport" \
  --cluster.listen-address= > "$amdir/log" 2>&1 &
ampid=$!
trap 'kill "$ampid" 2>/dev/null; rm -rf "$amdir"' EXIT
amurl="http://127.0.0.1:$amport"
for _ in $(seq 600); do
  "$AMTOOL" config show --alertmanager.url="$amurl" >/dev/null 2>&1 && break
  sleep 0.1
done
add() { "$AMTOOL" alert add --alertmanager.url="$amurl" "$@" >/dev/null; }
add alertname=RenewedBacklog severity=page hours=business source=data job=backlogd instance=a:9723 track=asylum
add alertname=BacklogForming severity=ticket hours=business source=data job=backlogd instance=a:9723 track=asylum
add alertname=BacklogForming severity=ticket hours=business source=data job=backlogd instance=a:9723 track=family
add alertname=BacklogdDown severity=page hours=always source=daemon job=backlogd instance=b:9723
add alertname=OverdueCasesHigh severity=ticket hours=business source=data job=backlogd instance=b:9723
add alertname=OverdueCasesHigh severity=ticket hours=business source=data job=backlogd instance=a:9723
add alertname=BacklogdCertificateExpiresSoon severity=page hours=always source=daemon job=backlogd instance=a:9723
add alertname=BacklogdCertificateExpiring severity=ticket hours=business source=daemon job=backlogd instance=a:9723
add alertname=BacklogdCertificateExpiring severity=ticket hours=business source=daemon job=backlogd instance=c:9723
# alertname/track-or-instance of each alert in a state, sorted.
in_state() {
  "$AMTOOL" alert query --alertmanager.url="$amurl" --active --inhibited -o json | python3 -c '
import json, sys
print(" ".join(sorted(a["labels"]["alertname"] + "/" + a["labels"].get("track", a["labels"]["instance"])
                      for a in json.load(sys.stdin) if a["status"]["state"] == sys.argv[1])))' "$1"
}
suppressed=$(in_state suppressed)
active=$(in_state active)
kill "$ampid"
wait "$ampid" 2>/dev/null || true
rm -rf "$amdir"
trap - EXIT
if [[ $suppressed != "BacklogForming/asylum BacklogdCertificateExpiring/a:9723 OverdueCasesHigh/b:9723" ]] \
  || [[ $active != "BacklogForming/family BacklogdCertificateExpiresSoon/a:9723 BacklogdCertificateExpiring/c:9723 BacklogdDown/b:9723 OverdueCasesHigh/a:9723 RenewedBacklog/asylum" ]]; then
  echo "alertmanager inhibition: suppressed [$suppressed], active [$active]" >&2
  exit 1
fi
echo "alertmanager inhibition: SUCCESS"

# The runbook base URL is a parameter: the rewritten rules still load, and point at the new base.
rewritten=$(mktemp)
trap 'rm -f "$rewritten"' EXIT
scripts/rules-with-runbook-base 'https://wiki.example.org/ops/backlogd-runbooks' > "$rewritten"
"$PROMTOOL" check rules "$rewritten" >/dev/null
if grep -q 'github.com/backlogd' "$rewritten" || ! grep -q 'runbook_url: https://wiki.example.org/ops/backlogd-runbooks#backlogddown' "$rewritten"; then
  echo "scripts/rules-with-runbook-base did not rewrite every runbook_url" >&2
  exit 1
fi
echo "runbook base URL: SUCCESS"
