#!/usr/bin/env bash
# The test suite: unit tests, the demo services natively, and end-to-end tests on real
# QEMU guests, taps, namespaces and SQLite files (root needed). Sets up what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
printf '\n== tests\n'
# One file at a time: the end-to-end files each boot VMs, and two cores are shared; the
# browser tests drive Debian's chromium against a daemon with real guests. Then the
# fault suite (daemon kills, dead VMMs, full disks) and the API fuzz suite; each prints its
# summary (leaks, leases lost or doubled, 5xx seen, state changes: goal 0).
exec node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 \
  dist/test/unit/ dist/test/apps/ dist/test/e2e/ dist/test/browser/ dist/test/faults/ dist/test/fuzz/
