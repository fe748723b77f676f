#!/usr/bin/env bash
# The main job, from a fresh clone: toolchain, dependencies, local servers, build, then the demo
# (four services fed by a producer, with a summary). Arguments go to the demo: --duration, --rate, --keep.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/toolchain.sh
prepare_workspace
exec node packages/demo/dist/main.js "$@"
