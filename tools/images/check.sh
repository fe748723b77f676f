#!/usr/bin/env bash
# pnpm images:check — builds the container images from docker/Dockerfile and checks them, on a machine
# without a Docker engine or registry access for images:
#
#   1. host tools: buildah and debootstrap (apt-get, when missing), Node 24 + pnpm, the local servers
#   2. the stand-in base image node:24-bookworm-slim (lib/base.sh; built once, cached)
#   3. images (build.sh): cli (the topic initialiser), demo (compose's demo producer and email sink) and every service
#      that exists under services/
#   4. each image's contents: non-root USER, tini ENTRYPOINT, exec-form CMD, NODE_ENV=production,
#      HEALTHCHECK on /healthz, no dev dependencies, no sources, no build tooling or build secrets
#   5. docker/compose.yaml runs every container built from the Dockerfile hardened (x-hardened: read_only,
#      cap_drop ALL, no-new-privileges, tmpfs /tmp), and its environment of each service is accepted by the service's own config schema (its
#      dist/config.js in its image), naming no variable its src/config.ts does not read
#   6. `stream topics create` from the cli image against the local Kafka
#   7. each service's image run with its own ENTRYPOINT + CMD (`buildah run`, host network) the way compose runs
#      it (read-only root file system, tmpfs /tmp, no capabilities, no-new-privileges; see run_hardened) against
#      the local servers: /healthz 200 and the image's HEALTHCHECK command passing, running as non-root with
#      an empty capability bounding set and NoNewPrivs, the root file system not writable, one
#      record processed end to end, then SIGTERM to PID 1 (tini) and exit code 0; the demo image's
#      producer (dist/produce.js) run for 3 s against the local servers
#
# Services missing from services/ are skipped with a warning. Exit status 0 only when every check of
# every built image passed. Usage: bash tools/images/check.sh [service...] (default: all four).
# Build and run logs: $STREAM_CACHE/images/logs (~/.cache/stream-stack/images/logs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$IMAGES_DIR/lib/base.sh"
source "$IMAGES_DIR/build.sh"

ALL_SERVICES=(feed-cache order-emailer execution-quality search-enricher)
KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
INFLUX_URL="${INFLUX_URL:-http://127.0.0.1:8086}"
ELASTICSEARCH_URL="${ELASTICSEARCH_URL:-http://127.0.0.1:9200}"
RUN_ID="$(date +%s)$$"
LOG_DIR="$IMAGES_CACHE/logs"
RESULTS="$(mktemp -d "${TMPDIR:-/tmp}/stream-images-check.XXXXXX")"
trap 'rm -rf "$RESULTS"' EXIT
STARTED=$SECONDS

probe() { node --no-warnings "$IMAGES_DIR/probe.mjs" "$@"; }
fail() { printf '\033[31mFAIL\033[0m %s\n' "$*" >&2; return 1; }
pass() { printf '\033[32mok\033[0m   %s\n' "$*" >&2; }
warn_loud() {
  printf '\n\033[33m!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '!!! %s\n' "$@" >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\033[0m\n\n' >&2
}
# record <service> <what> <value>: results go through files because each check runs in a subshell.
record() { mkdir -p "$RESULTS/$1"; printf '%s\n' "$3" > "$RESULTS/$1/$2"; }
result() { cat "$RESULTS/$1/$2" 2>/dev/null || echo "-"; }

service_exists() { [ -f "$REPO_ROOT/services/$1/package.json" ] && [ -f "$REPO_ROOT/services/$1/src/main.ts" ]; }

# The image's Docker config (Entrypoint, Cmd, User, Env, Healthcheck...) as JSON.
image_config() {
  buildah inspect --type image "$1" | node -e 'process.stdout.write(JSON.stringify(JSON.parse(require("fs").readFileSync(0, "utf8")).Docker.config))'
}
# json_get <json> <js expression over `c`>: prints the value (an array NUL-separated, for mapfile -d '').
json_get() { node -e 'const c = JSON.parse(process.argv[1]); const v = eval(process.argv[2]); process.stdout.write(Array.isArray(v) ? v.join("\0") : typeof v === "string" ? v : JSON.stringify(v ?? null))' "$1" "$2"; }

# ---------------------------------------------------------------------------------------------------
# Running an image: `buildah run` of the image's own ENTRYPOINT + CMD in a working container of it, as its
# USER, in its WORKDIR, with its ENV plus the given variables, on the host's network. `buildah run` does not
# pass signals on, so stop_container signals the container's PID 1 process (tini) the way `docker stop` does.

descendants() { # <pid>: every process below it
  ps -e -o pid= -o ppid= | awk -v root="$1" '{ parent[$1] = $2 } END { for (p in parent) { q = p; while (q in parent && q != root && q > 1) q = parent[q]; if (q == root && p != root) print p } }'
}
descendant_named() { # <pid> <program>: the first process below <pid> running <program> (by argv[0]: node
  local p argv0                #  names its main thread MainThread, so comm does not tell)
  for p in $(descendants "$1"); do
    argv0="$(ps -o args= -p "$p" 2>/dev/null | awk '{ print $1 }')"
    [ "${argv0##*/}" = "$2" ] && { echo "$p"; return 0; }
  done
  return 1
}

# ---------------------------------------------------------------------------------------------------
# Hardened runs, as docker/compose.yaml runs the containers (read_only: true, tmpfs /tmp, cap_drop: [ALL],
# no-new-privileges). buildah 1.28 has no --read-only or --security-opt for `run`, so:
#   - harden_container mounts the working container's root file system, bind-mounts it over itself read-only,
#     and mounts a tmpfs on /tmp (what compose gives) and on /run (where `buildah run` itself creates and
#     removes /run/.containerenv on every run; compose needs none there);
#   - run_hardened starts the command as root only long enough for util-linux's setpriv (in every Debian
#     image) to switch to the image's USER with no supplementary groups, an empty capability bounding set,
#     no inheritable or ambient capabilities and the no_new_privs bit set, then exec the image's command.
# check_hardened then reads the running node process's /proc status and tries a write to /app.
harden_container() { # <ctr>
  local mp; mp="$(buildah mount "$1")"
  mkdir -p "$mp/run" "$mp/tmp"
  touch "$mp/etc/hosts" "$mp/etc/resolv.conf" "$mp/etc/hostname"
  mount --bind "$mp" "$mp"
  mount -o remount,bind,ro "$mp" "$mp"
  mount -t tmpfs -o size=1m,nosuid,nodev,noexec tmpfs "$mp/run"
  mount -t tmpfs -o size=64m,nosuid,nodev,mode=1777 tmpfs "$mp/tmp"
}
unharden_container() { # <ctr>: undoes harden_container (before `buildah rm`)
  local mp; mp="$(buildah mount "$1" 2>/dev/null)" || return 0
  umount "$mp/tmp" "$mp/run" 2>/dev/null || true
  umount "$mp" 2>/dev/null || true
  buildah umount "$1" >/dev/null 2>&1 || true
}
# run_hardened <ctr> [buildah run options...] -- <argv...>
run_hardened() {
  local ctr="$1"; shift
  local -a opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  local user; user="$(buildah inspect --format '{{.OCIv1.Config.User}}' "$ctr")"
  [ -n "$user" ] && [ "${user%%:*}" != 0 ] && [ "${user%%:*}" != root ] || { fail "image of $ctr has no non-root USER"; return 1; }
  buildah run --isolation chroot --user 0:0 "${opts[@]}" "$ctr" -- \
    setpriv --reuid "${user%%:*}" --regid "${user#*:}" --clear-groups --no-new-privs --bounding-set -all --inh-caps -all -- "$@"
}
# check_hardened <svc> <ctr>: the node process has no capabilities and cannot gain any, / is read-only, /tmp is not.
check_hardened() {
  local svc="$1" ctr="$2" node_pid status bnd nnp
  node_pid="$(descendant_named "$RUN_PID" node)" || { fail "$svc: no node process"; return 1; }
  status="$(cat "/proc/$node_pid/status")"
  bnd="$(awk '/^CapBnd:/ { print $2 }' <<<"$status")"; nnp="$(awk '/^NoNewPrivs:/ { print $2 }' <<<"$status")"
  [ "$bnd" = 0000000000000000 ] || { fail "$svc: capability bounding set $bnd (want none)"; return 1; }
  [ "$(awk '/^CapEff:/ { print $2 }' <<<"$status")" = 0000000000000000 ] || { fail "$svc: effective capabilities"; return 1; }
  [ "$nnp" = 1 ] || { fail "$svc: NoNewPrivs is $nnp (want 1)"; return 1; }
  pass "$svc: node runs with no capabilities (bounding set empty) and no-new-privileges"
  run_hardened "$ctr" -- node -e '
    const fs = require("node:fs");
    try { fs.writeFileSync("/app/.images-check", "x"); process.exit(3); } catch (e) { if (e.code !== "EROFS") throw e; }
    fs.writeFileSync("/tmp/.images-check", "x");' >/dev/null 2>&1 || { fail "$svc: the root file system is writable, or /tmp is not"; return 1; }
  pass "$svc: read-only root file system (write to /app: EROFS), /tmp writable (tmpfs)"
}

# start_container <image> <name> <log> [VAR=value...]; sets CTR and RUN_PID.
start_container() {
  local image="$1" name="$2" logfile="$3"; shift 3
  local config; config="$(image_config "$image")"
  local -a argv env=()
  mapfile -d '' argv < <(json_get "$config" '[...(c.Entrypoint ?? []), ...(c.Cmd ?? [])]')
  local var
  # tini is not PID 1 under `buildah run` (no PID namespace): let it reap as a subreaper instead.
  for var in TINI_SUBREAPER=1 "$@"; do env+=(--env "$var"); done
  CTR="$(buildah from --pull=never --name "$name" "$image")"
  harden_container "$CTR"
  log "run: ${argv[*]} (container $name, hardened, log $logfile)"
  run_hardened "$CTR" "${env[@]}" -- "${argv[@]}" > "$logfile" 2>&1 &
  RUN_PID=$!
}

# stop_container: SIGTERM to tini, wait up to 30 s; sets STOP_CODE to the exit code ("timeout" when it had
# to kill what was left). Not in a $(...): `wait` needs the run to be this shell's child.
stop_container() {
  local tini code=""
  if kill -0 "$RUN_PID" 2>/dev/null; then
    tini="$(descendant_named "$RUN_PID" tini || true)"
    if [ -n "$tini" ]; then kill -TERM "$tini"; else kill -TERM "$RUN_PID" 2>/dev/null || true; fi
    local waited=0
    while kill -0 "$RUN_PID" 2>/dev/null && [ $waited -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
    if kill -0 "$RUN_PID" 2>/dev/null; then
      local p; for p in $(descendants "$RUN_PID"); do kill -KILL "$p" 2>/dev/null || true; done
      kill -KILL "$RUN_PID" 2>/dev/null || true
      code="timeout"
    fi
  fi
  local status=0
  wait "$RUN_PID" 2>/dev/null || status=$?
  [ -n "$code" ] || code=$status
  unharden_container "$CTR"
  buildah rm "$CTR" >/dev/null 2>&1 || true
  RUN_PID=""
  STOP_CODE="$code"
}

# The image's own HEALTHCHECK command, run in the service's container next to it (like Docker does).
run_healthcheck() { # <image> [VAR=value...]
  local image="$1"; shift
  local config; config="$(image_config "$image")"
  local -a test env=()
  mapfile -d '' test < <(json_get "$config" 'c.Healthcheck?.Test ?? []')
  [ "${test[0]:-}" = CMD ] || { fail "HEALTHCHECK is not exec-form CMD: ${test[*]}"; return 1; }
  local var; for var in "$@"; do env+=(--env "$var"); done
  run_hardened "$CTR" "${env[@]}" -- "${test[@]:1}" >/dev/null 2>&1
}

# The checks every running service gets: healthy (twice), non-root. <service> <ops-port>
check_running() {
  local svc="$1" ops="$2" node_pid uid
  kill -0 "$RUN_PID" 2>/dev/null || { fail "$svc exited at start"; return 1; }
  probe wait-http "http://127.0.0.1:$ops/healthz" 60000 >/dev/null || { fail "$svc: /healthz"; return 1; }
  pass "$svc: GET /healthz 200"
  probe wait-http "http://127.0.0.1:$ops/readyz" 60000 >/dev/null || { fail "$svc: /readyz"; return 1; }
  pass "$svc: GET /readyz 200 (connected, partitions assigned)"
  run_healthcheck "$(image_name "$svc")" "OPS_PORT=$ops" || { fail "$svc: the image's HEALTHCHECK command failed"; return 1; }
  pass "$svc: the image's HEALTHCHECK command exits 0"
  node_pid="$(descendant_named "$RUN_PID" node)" || { fail "$svc: no node process"; return 1; }
  uid="$(ps -o uid= -p "$node_pid" | tr -d ' ')"
  [ "$uid" != 0 ] || { fail "$svc: node runs as root"; return 1; }
  pass "$svc: node runs as uid $uid"
  check_hardened "$svc" "$CTR"
}

# The service's own stop: SIGTERM to PID 1 must end in exit code 0 (graceful shutdown done).
check_stop() { # <service> <log>
  local svc="$1" logfile="$2" code
  stop_container
  code="$STOP_CODE"
  record "$svc" exit "$code"
  if [ "$code" != 0 ]; then tail -n 20 "$logfile" >&2; fail "$svc: exit code $code after SIGTERM (want 0)"; return 1; fi
  grep -q '"msg":"app stopped"' "$logfile" || { fail "$svc: no 'app stopped' in its log"; return 1; }
  pass "$svc: SIGTERM -> graceful stop, exit code 0"
}

# Sends one record with the cli image (so it is validated against the contract first).
cli_send() { # <topic> <json> <key>
  local ctr; ctr="$(buildah from --pull=never --name "images-check-send-$RUN_ID-$RANDOM" "$(image_name cli)")"
  local status=0
  harden_container "$ctr"
  run_hardened "$ctr" --env "KAFKA_BROKERS=$KAFKA_BROKERS" --env TINI_SUBREAPER=1 -- \
    /usr/bin/tini -- node dist/main.js send "$1" "$2" --key "$3" >/dev/null 2>"$RESULTS/send.err" || status=$?
  unharden_container "$ctr"
  buildah rm "$ctr" >/dev/null 2>&1 || true
  [ $status -eq 0 ] || { cat "$RESULTS/send.err" >&2; fail "stream send $1 failed"; }
}

# A check's consumer group, committed at its input topic's end right before the service starts (start_at_end),
# so the service reads what the check sends, not what others left in the shared topic.
check_group() { echo "images-check-$1-$RUN_ID"; }
start_at_end() { probe group-to-end "$1" "$2"; } # <group> <topic>

poll() { # <timeout-s> <command...>: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" 2>/dev/null; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.5; done
}

# ---------------------------------------------------------------------------------------------------
# One function per service: start its image with unique names, make it process one record, stop it.
# Each runs in a subshell with `set -e` (so its variables are not `local`: its EXIT trap, which undoes
# what it created on the shared servers, runs after it returned).

check_feed_cache() {
  user="images-check-$RUN_ID" group="$(check_group feed-cache)" logfile="$LOG_DIR/run-feed-cache.log"
  http="$(probe free-port)"; ops="$(probe free-port)"
  trap 'if [ -n "${RUN_PID:-}" ]; then stop_container; fi; probe redis "$REDIS_URL" DEL "feed:$user" >/dev/null || true; probe delete-groups "$group" || true' EXIT
  start_at_end "$group" feed_activities
  start_container "$(image_name feed-cache)" "images-check-feed-cache-$RUN_ID" "$logfile" \
    "KAFKA_BROKERS=$KAFKA_BROKERS" "REDIS_URL=$REDIS_URL" "KAFKA_GROUP_ID=$group" \
    "HTTP_PORT=$http" "OPS_PORT=$ops" FEED_MAX_ITEMS=50 FEED_TTL_SECONDS=3600
  check_running feed-cache "$ops"
  cli_send feed_activities "{\"id\":\"a-$RUN_ID\",\"user\":\"$user\",\"message\":\"hello from images:check\",\"timestamp\":\"$(date -u +%FT%T.000Z)\"}" "$user"
  # shellcheck disable=SC2317 # called through poll
  zcard_is_1() { [ "$(probe redis "$REDIS_URL" ZCARD "feed:$user")" = 1 ]; }
  poll 30 zcard_is_1 || { tail -n 20 "$logfile" >&2; fail "feed-cache: ZCARD feed:$user is not 1 after 30 s"; }
  pass "feed-cache: activity consumed, ZCARD feed:$user = 1"
  probe http GET "http://127.0.0.1:$http/feed/$user" | grep -q 'hello from images:check' || fail "feed-cache: GET /feed/$user does not show the activity"
  pass "feed-cache: GET /feed/$user serves it"
  check_stop feed-cache "$logfile"
}

# The email sink as compose's `email-sink` runs it: @stream/local-stack's dist/email-sink-main.js from the demo
# image, under its tini. <port> <token> <log>; sets SINK_CTR and SINK_PID (stop_email_sink ends it).
start_email_sink() {
  SINK_CTR="$(buildah from --pull=never --name "images-check-email-sink-$RUN_ID" "$(image_name demo)")"
  harden_container "$SINK_CTR"
  run_hardened "$SINK_CTR" --env "PORT=$1" --env HOST=127.0.0.1 --env "EMAIL_SINK_TOKEN=$2" --env TINI_SUBREAPER=1 -- \
    /usr/bin/tini -- node node_modules/@stream/local-stack/dist/email-sink-main.js > "$3" 2>&1 &
  SINK_PID=$!
}

# SIGTERM to the sink's tini (buildah run does not pass signals on), up to 10 s, then its container is removed.
stop_email_sink() {
  [ -n "${SINK_PID:-}" ] || return 0
  local tini waited=0 p
  tini="$(descendant_named "$SINK_PID" tini || true)"
  if [ -n "$tini" ]; then kill -TERM "$tini" 2>/dev/null || true; else kill -TERM "$SINK_PID" 2>/dev/null || true; fi
  while kill -0 "$SINK_PID" 2>/dev/null && [ $waited -lt 100 ]; do sleep 0.1; waited=$((waited + 1)); done
  if kill -0 "$SINK_PID" 2>/dev/null; then
    for p in $(descendants "$SINK_PID"); do kill -KILL "$p" 2>/dev/null || true; done
    kill -KILL "$SINK_PID" 2>/dev/null || true
  fi
  wait "$SINK_PID" 2>/dev/null || true
  unharden_container "$SINK_CTR"
  buildah rm "$SINK_CTR" >/dev/null 2>&1 || true
  SINK_PID=""
}

check_order_emailer() {
  order="o-images-check-$RUN_ID" group="$(check_group order-emailer)" logfile="$LOG_DIR/run-order-emailer.log"
  prefix="images-check:$RUN_ID:order:" token="images-check-$RUN_ID"
  ops="$(probe free-port)"; sink_port="$(probe free-port)"; SINK_PID=""
  [ "$(result demo build)" = ok ] || { fail "order-emailer: the email sink runs from the demo image, whose build failed"; return 1; }
  trap 'if [ -n "${RUN_PID:-}" ]; then stop_container; fi; stop_email_sink; probe redis "$REDIS_URL" DEL "$prefix$order" >/dev/null || true; probe delete-groups "$group" || true' EXIT
  start_email_sink "$sink_port" "$token" "$LOG_DIR/email-sink.log"
  probe wait-http "http://127.0.0.1:$sink_port/healthz" 10000 >/dev/null || fail "email sink (demo image, dist/email-sink-main.js) did not start (log: $LOG_DIR/email-sink.log)"
  pass "email sink: @stream/local-stack's dist/email-sink-main.js from the demo image answers /healthz"
  start_at_end "$group" orders
  start_container "$(image_name order-emailer)" "images-check-order-emailer-$RUN_ID" "$logfile" \
    "KAFKA_BROKERS=$KAFKA_BROKERS" "REDIS_URL=$REDIS_URL" "KAFKA_GROUP_ID=$group" \
    "EMAILER_URL=http://127.0.0.1:$sink_port/v1/emails" "EMAILER_TOKEN=$token" EMAILER_TIMEOUT_MS=5000 EMAILER_CONCURRENCY=4 \
    "DEDUPE_KEY_PREFIX=$prefix" DEDUPE_TTL_SECONDS=300 "OPS_PORT=$ops"
  check_running order-emailer "$ops"
  cli_send orders "{\"id\":\"$order\",\"userId\":\"u-$RUN_ID\",\"symbol\":\"ACME\",\"side\":\"buy\",\"quantity\":3,\"price\":101.5,\"executedAt\":\"$(date -u +%FT%T.000Z)\"}" "$order"
  emails="$(probe wait-sink "http://127.0.0.1:$sink_port" "$order" 30000)" || { tail -n 20 "$logfile" >&2; fail "order-emailer: no email for $order"; }
  grep -q "\"user\":\"u-$RUN_ID\"" <<< "$emails" || fail "order-emailer: the email is not addressed to u-$RUN_ID: $emails"
  pass "order-emailer: order consumed, one confirmation POSTed (Idempotency-Key $order, bearer token accepted)"
  check_stop order-emailer "$logfile"
}

check_execution_quality() {
  order="o-images-check-$RUN_ID" group="$(check_group execution-quality)" logfile="$LOG_DIR/run-execution-quality.log"
  db="images_check_$RUN_ID" symbol="IMGCHK"
  ops="$(probe free-port)"
  trap 'if [ -n "${RUN_PID:-}" ]; then stop_container; fi; probe http POST "$INFLUX_URL/query?q=DROP%20DATABASE%20%22$db%22" >/dev/null || true; probe delete-groups "$group" || true' EXIT
  probe http POST "$INFLUX_URL/query?q=CREATE%20DATABASE%20%22$db%22" >/dev/null
  now_ms="$(date +%s%3N)"
  # One market price 10 s before the execution: a buy at 101 against 100 is 100 bps of slippage.
  probe http POST "$INFLUX_URL/write?db=$db&precision=ms" "marketdata,symbol=$symbol price=100 $((now_ms - 10000))" >/dev/null
  offsets="$(probe offsets execution_quality)"
  start_at_end "$group" orders
  start_container "$(image_name execution-quality)" "images-check-execution-quality-$RUN_ID" "$logfile" \
    "KAFKA_BROKERS=$KAFKA_BROKERS" "KAFKA_GROUP_ID=$group" "INFLUX_URL=$INFLUX_URL" INFLUX_TOKEN=images:check \
    INFLUX_ORG=stream "INFLUX_BUCKET=$db/autogen" MARKET_LOOKBACK=5m "OPS_PORT=$ops"
  check_running execution-quality "$ops"
  cli_send orders "{\"id\":\"$order\",\"userId\":\"u-$RUN_ID\",\"symbol\":\"$symbol\",\"side\":\"buy\",\"quantity\":2,\"price\":101,\"executedAt\":\"$(date -u -d "@$((now_ms / 1000))" +%FT%T.000Z)\"}" "$order"
  report="$(probe await-record execution_quality "$order" "$offsets" 30000)" || { tail -n 20 "$logfile" >&2; fail "execution-quality: no report for $order"; }
  if ! grep -q '"status":"ok"' <<< "$report" || ! grep -q '"marketPrice":100' <<< "$report"; then
    fail "execution-quality: unexpected report $report"
  fi
  pass "execution-quality: order consumed, report on execution_quality: $report"
  check_stop execution-quality "$logfile"
}

check_search_enricher() {
  query="q-images-check-$RUN_ID" group="$(check_group search-enricher)" logfile="$LOG_DIR/run-search-enricher.log"
  index="images-check-$RUN_ID" word="zebrafinch$RUN_ID"
  ops="$(probe free-port)"
  trap 'if [ -n "${RUN_PID:-}" ]; then stop_container; fi; probe http DELETE "$ELASTICSEARCH_URL/$index" >/dev/null || true; probe delete-groups "$group" || true' EXIT
  probe http PUT "$ELASTICSEARCH_URL/$index/_doc/doc-1?refresh=true" "{\"title\":\"$word lantern\",\"body\":\"the one document of the images check\"}" >/dev/null
  offsets="$(probe offsets top_results)"
  start_at_end "$group" search_queries
  start_container "$(image_name search-enricher)" "images-check-search-enricher-$RUN_ID" "$logfile" \
    "KAFKA_BROKERS=$KAFKA_BROKERS" "KAFKA_GROUP_ID=$group" "ELASTICSEARCH_URL=$ELASTICSEARCH_URL" \
    "SEARCH_INDEX=$index" 'SEARCH_FIELDS=title^2,body' "OPS_PORT=$ops"
  check_running search-enricher "$ops"
  cli_send search_queries "{\"id\":\"$query\",\"queryString\":\"$word\",\"userId\":\"u-$RUN_ID\",\"timestamp\":\"$(date -u +%FT%T.000Z)\"}" "$query"
  result="$(probe await-record top_results "$query" "$offsets" 30000)" || { tail -n 20 "$logfile" >&2; fail "search-enricher: no result for $query"; }
  grep -q '"id":"doc-1"' <<< "$result" || fail "search-enricher: unexpected top result $result"
  pass "search-enricher: query consumed, top hit doc-1 on top_results"
  check_stop search-enricher "$logfile"
}

# ---------------------------------------------------------------------------------------------------

# What is in the image, from its config and its filesystem. <package>
check_image_contents() {
  local name="$1" image config ctr mnt
  image="$(image_name "$name")"
  config="$(image_config "$image")"
  local user entry cmd env health
  user="$(json_get "$config" 'c.User')"
  entry="$(json_get "$config" '(c.Entrypoint ?? []).join(" ")')"
  cmd="$(json_get "$config" '(c.Cmd ?? []).join(" ")')"
  env="$(json_get "$config" '(c.Env ?? []).join(" ")')"
  health="$(json_get "$config" '(c.Healthcheck?.Test ?? []).join(" ")')"
  case "${user%%:*}" in ""|0|root) fail "$name: USER is '${user}' (root)"; return 1 ;; esac
  pass "$name: USER $user"
  [[ "$entry" == "/usr/bin/tini --" ]] || { fail "$name: ENTRYPOINT is '$entry', want tini"; return 1; }
  [[ "$cmd" == "node "* ]] || { fail "$name: CMD is '$cmd', want exec-form node ..."; return 1; }
  pass "$name: ENTRYPOINT [$entry], CMD [$cmd]"
  [[ " $env " == *" NODE_ENV=production "* ]] || { fail "$name: NODE_ENV is not production"; return 1; }
  [[ "$health" == "CMD node -e "*"/healthz"* ]] || { fail "$name: no HEALTHCHECK on /healthz ($health)"; return 1; }
  pass "$name: NODE_ENV=production, HEALTHCHECK node fetch /healthz"

  ctr="$(buildah from --pull=never --name "images-check-inspect-$name-$RUN_ID" "$image")"
  mnt="$(buildah mount "$ctr")"
  local status=0
  set +e # not `( ... ) || status=$?`: errexit would be off inside
  (
    set -e
    [ -x "$mnt/usr/bin/tini" ] || fail "$name: /usr/bin/tini missing"
    [ -f "$mnt/app/dist/main.js" ] || fail "$name: /app/dist/main.js missing"
    probe dev-deps "$mnt/app" >&2 || fail "$name: dev dependencies in the image"
    local found
    found="$(find "$mnt/app/node_modules" -type d \( -name vitest -o -name typescript -o -name eslint -o -name turbo \) | head -n 5 || true)"
    [ -z "$found" ] || fail "$name: dev tooling in node_modules: $found"
    # Our sources: nothing of src/, no .ts but declarations, no tsconfig, in the app or its workspace packages.
    found="$(find "$mnt/app" "$mnt/app/node_modules/.pnpm/"@stream+*/node_modules/@stream/* -maxdepth 1 \
      \( -name src -o -name test -o -name 'tsconfig*.json' -o -name 'vitest.config.*' \) 2>/dev/null | head -n 5 || true)"
    [ -z "$found" ] || fail "$name: sources in the image: $found"
    found="$(find "$mnt/app/dist" "$mnt/app/node_modules/.pnpm/"@stream+*/node_modules/@stream/*/dist -name '*.ts' ! -name '*.d.ts' 2>/dev/null | head -n 5 || true)"
    [ -z "$found" ] || fail "$name: TypeScript sources in dist: $found"
    pass "$name: no dev dependencies, no sources"
    # Build-time tooling and secrets stay in the build stages.
    found="$(ls -d "$mnt/usr/local/lib/node_modules/"{pnpm,turbo} "$mnt/root/.npmrc" "$mnt/root/.build-ca.crt" "$mnt/root/.npm" \
      "$mnt/root/.local/share/pnpm" "$mnt/root/.cache" "$mnt/pnpm" "$mnt/repo" "$mnt/app/.npmrc" "$mnt/app/.turbo" 2>/dev/null || true)"
    [ -z "$found" ] || fail "$name: build leftovers in the image: ${found//$mnt/}"
    found="$(find "$mnt/app" ! -user 0 | head -n 3 || true)"
    [ -z "$found" ] || fail "$name: /app files not owned by root: ${found//$mnt/}"
    pass "$name: no pnpm/turbo/npm caches or build CA in the image; /app owned by root, read-only for uid ${user%%:*}"
  )
  status=$?
  set -e
  buildah unmount "$ctr" >/dev/null 2>&1 || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
  return $status
}

# docker/compose.yaml's environment for the service, read by the service's own config schema in its image
# (dist/config.js readConfig): compose stays true to src/config.ts. <service>
check_compose_config() {
  local svc="$1" ctr status=0
  local -a vars env=()
  mapfile -d '' vars < <(probe compose-env "$svc") || true
  [ ${#vars[@]} -gt 0 ] || { probe compose-env "$svc" >/dev/null || true; fail "$svc: no usable environment in docker/compose.yaml"; return 1; }
  local var; for var in "${vars[@]}"; do env+=(--env "$var"); done
  ctr="$(buildah from --pull=never --name "images-check-config-$svc-$RUN_ID" "$(image_name "$svc")")"
  buildah run --isolation chroot "${env[@]}" "$ctr" -- node --input-type=module -e \
    "const { readConfig } = await import('/app/dist/config.js'); readConfig();" 2>"$RESULTS/config.err" || status=$?
  buildah rm "$ctr" >/dev/null 2>&1 || true
  if [ $status -ne 0 ]; then cat "$RESULTS/config.err" >&2; fail "$svc: its config rejects docker/compose.yaml's environment"; return 1; fi
  pass "$svc: docker/compose.yaml's ${#vars[@]} variables pass its config schema"
}

# Runs `<function> <args>` in a subshell with errexit on; records ok/FAILED for <service>.
run_check() {
  local svc="$1" kind="$2"; shift 2
  local status=0
  set +e
  ( set -e; "$@" )
  status=$?
  set -e
  if [ $status -eq 0 ]; then record "$svc" "$kind" ok; else record "$svc" "$kind" FAILED; fi
  return 0
}

main() {
  local -a wanted=("$@")
  [ ${#wanted[@]} -gt 0 ] || wanted=("${ALL_SERVICES[@]}")
  local svc
  for svc in "${wanted[@]}"; do
    [[ " ${ALL_SERVICES[*]} " == *" $svc "* ]] || die "unknown service '$svc' (known: ${ALL_SERVICES[*]})"
  done

  step "toolchain and host tools"
  ensure_toolchain
  ensure_host_tools
  # probe.mjs uses the workspace's kafkajs and ioredis.
  if [ ! -d "$REPO_ROOT/packages/local-stack/node_modules/kafkajs" ] || [ ! -d "$REPO_ROOT/packages/local-stack/node_modules/ioredis" ]; then
    log "installing the workspace's dependencies (pnpm install)"
    (cd "$REPO_ROOT" && pnpm install --frozen-lockfile --prefer-offline >/dev/null) || die "pnpm install failed"
  fi
  mkdir -p "$LOG_DIR"

  step "local servers"
  bash "$REPO_ROOT/tools/stack/stack.sh" up

  step "base image (stand-in for node:24-bookworm-slim)"
  ensure_base_image

  local -a present=() missing=()
  for svc in "${wanted[@]}"; do if service_exists "$svc"; then present+=("$svc"); else missing+=("$svc"); fi; done
  if [ ${#missing[@]} -gt 0 ]; then
    warn_loud "SKIPPED: services/${missing[*]} not found (no package.json + src/main.ts): their images are NOT checked."
  fi

  step "images"
  local built_cli=0
  for name in cli demo "${present[@]}"; do
    local t=$SECONDS
    if ( build_image "$name" ); then
      record "$name" build ok
      record "$name" build_s $((SECONDS - t))
      record "$name" size "$(buildah images --format '{{.Size}}' "$(image_name "$name")" | head -n 1)"
      [ "$name" != cli ] || built_cli=1
    else
      record "$name" build FAILED
    fi
  done

  step "image contents"
  for name in cli demo "${present[@]}"; do
    [ "$(result "$name" build)" = ok ] || continue
    run_check "$name" contents check_image_contents "$name"
  done

  step "compose.yaml against each service's config"
  local hardened_ok=1 hardened
  if hardened="$(probe compose-hardened)"; then
    pass "compose: read_only, cap_drop ALL, no-new-privileges and tmpfs /tmp for $hardened"
  else
    hardened_ok=0
    fail "compose: a container built from the Dockerfile is not hardened (x-hardened)" || true
  fi
  for svc in "${present[@]}"; do
    [ "$(result "$svc" build)" = ok ] || continue
    run_check "$svc" compose check_compose_config "$svc"
  done

  step "topics (stream topics create, from the cli image)"
  if [ $built_cli = 1 ]; then
    local ctr status=0
    ctr="$(buildah from --pull=never --name "images-check-topics-$RUN_ID" "$(image_name cli)")"
    harden_container "$ctr"
    run_hardened "$ctr" --env "KAFKA_BROKERS=$KAFKA_BROKERS" --env TINI_SUBREAPER=1 -- \
      /usr/bin/tini -- node dist/main.js topics create 2>&1 | sed 's/^/  /' >&2 || status=$?
    unharden_container "$ctr"
    buildah rm "$ctr" >/dev/null 2>&1 || true
    if [ $status -eq 0 ]; then record cli run ok; pass "cli: stream topics create"; else record cli run FAILED; fail "cli: stream topics create" || true; fi
  fi

  step "demo producer (compose's demo-producer: dist/produce.js from the demo image, 3 s)"
  if [ "$(result demo build)" = ok ] && [ "$(result cli run)" = ok ]; then
    local ctr status=0 out
    ctr="$(buildah from --pull=never --name "images-check-demo-$RUN_ID" "$(image_name demo)")"
    harden_container "$ctr"
    out="$(run_hardened "$ctr" --env "KAFKA_BROKERS=$KAFKA_BROKERS" --env "INFLUX_URL=$INFLUX_URL" \
      --env INFLUX_TOKEN=stream:stream --env INFLUX_ORG=stream --env INFLUX_BUCKET=stream/autogen --env TINI_SUBREAPER=1 -- \
      /usr/bin/tini -- node dist/produce.js --rate 20 --duration 3 2>&1)" || status=$?
    unharden_container "$ctr"
    buildah rm "$ctr" >/dev/null 2>&1 || true
    printf '%s\n' "$out" | tail -n 3 | cut -c1-240 | sed 's/^/  /' >&2
    if [ $status -eq 0 ] && printf '%s' "$out" | grep -q '"msg":"stopping"' && ! printf '%s' "$out" | grep -q '"activities":0,'; then
      record demo run ok; pass "demo: produced records for 3 s and exited 0"
    else
      record demo run FAILED; fail "demo: dist/produce.js (exit $status)" || true
    fi
  else
    record demo run "not run"
  fi

  for svc in "${present[@]}"; do
    step "run $svc"
    if [ "$(result "$svc" build)" != ok ]; then record "$svc" run "not run (build failed)"; continue; fi
    if [ "$(result cli run)" != ok ]; then record "$svc" run "not run (no topics)"; continue; fi
    run_check "$svc" run "check_${svc//-/_}"
  done

  step "summary ($((SECONDS - STARTED)) s)"
  local failed=0
  printf '%-20s %-8s %-8s %-9s %-10s %-9s %-6s %s\n' IMAGE BUILD SECONDS SIZE CONTENTS COMPOSE RUN EXIT >&2
  for name in cli demo "${wanted[@]}"; do
    if [ "$name" != cli ] && [ "$name" != demo ] && ! service_exists "$name"; then
      printf '%-20s %s\n' "$name" "SKIPPED (no services/$name)" >&2
      continue
    fi
    printf '%-20s %-8s %-8s %-9s %-10s %-9s %-6s %s\n' "$name" "$(result "$name" build)" "$(result "$name" build_s)" \
      "$(result "$name" size)" "$(result "$name" contents)" "$(result "$name" compose)" "$(result "$name" run)" "$(result "$name" exit)" >&2
    local kind
    for kind in build contents run; do [ "$(result "$name" "$kind")" = ok ] || failed=1; done
    [ "$name" = cli ] || [ "$name" = demo ] || [ "$(result "$name" compose)" = ok ] || failed=1
  done
  [ $hardened_ok -eq 1 ] || { printf 'compose.yaml: not every image runs hardened (see above)\n' >&2; failed=1; }
  [ ${#missing[@]} -eq 0 ] || warn_loud "SKIPPED (not in services/ yet): ${missing[*]}"
  log "logs: $LOG_DIR"
  [ $failed -eq 0 ] || die "images:check failed"
  log "images:check passed"
}

main "$@"
