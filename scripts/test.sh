#!/usr/bin/env bash
# The test suite: unit tests, the demo services natively, and end-to-end tests on real
# QEMU guests, taps, namespaces and SQLite files (root needed). Sets up what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
printf '\n== tests\n'
# One file at a time: the end-to-end files each boot VMs, and two cores are shared.
exec node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 \
  dist/test/unit/ dist/test/apps/ dist/test/e2e/
