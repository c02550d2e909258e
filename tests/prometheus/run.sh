#!/usr/bin/env bash
# Checks the shipped Prometheus rules and runs their unit tests (tests/prometheus/*.test.yml).
# Needs promtool (Debian package `prometheus`); ./scripts/test installs it when missing.
# Exits non-zero when the rules do not load or any test fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

PROMTOOL="${PROMTOOL:-promtool}"
if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
  echo "tests/prometheus/run.sh: promtool not found (apt-get install prometheus)" >&2
  exit 1
fi

"$PROMTOOL" check rules config/prometheus/backlogd-rules.yml
"$PROMTOOL" test rules tests/prometheus/backlogd-rules.test.yml tests/prometheus/backlogd-rules-weeks.test.yml
