#!/usr/bin/env bash
# The whole test suite, from a fresh clone: toolchain, dependencies, local servers, build, tests.
# Extra arguments go to turbo, e.g. `scripts/test.sh --filter @stream/core`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/toolchain.sh
prepare_workspace
find packages services bench -path '*/.vitest/results.json' -delete 2>/dev/null || true
status=0
pnpm turbo run test --concurrency=1 --continue "$@" || status=$?
node scripts/test-summary.mjs
exit $status
