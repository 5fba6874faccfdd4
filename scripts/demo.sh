#!/usr/bin/env bash
# The main job: sets up what it needs, then runs the modular image-processing demo as
# microVMs under the uigniter daemon (see README). Arguments go to `uigniter demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
printf '\n== demo\n'
exec node dist/src/cli/main.js demo "$@"
