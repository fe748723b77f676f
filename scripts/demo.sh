#!/usr/bin/env bash
# The main job, from a fresh clone: toolchain, dependencies, local servers, build, then the demo
# (four services fed by a producer, with a summary). Arguments go to the demo: --duration, --rate, --keep.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/toolchain.sh
ensure_toolchain
if [ -n "${CI-}" ]; then pnpm install --frozen-lockfile; else pnpm install --prefer-offline; fi
bash tools/stack/stack.sh up
pnpm turbo run build --output-logs=errors-only
exec node packages/demo/dist/main.js "$@"
