#!/usr/bin/env bash
# The main job: brings up the local stack and shows its status. (The services' demo joins it as they land.)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/toolchain.sh
ensure_toolchain
pnpm install --prefer-offline
bash tools/stack/stack.sh up
