#!/usr/bin/env bash
# Local servers for tests, benchmarks and the demo: Kafka, Redis, InfluxDB, Elasticsearch on 127.0.0.1.
#
#   stack.sh up [--fresh] [name...]   install what is missing, start, wait until healthy (no-op if up)
#   stack.sh down [name...]           stop what `up` started (by pid file, process group)
#   stack.sh status                   one line per server: name, port, pid, health, version
#   stack.sh logs <name> [-f]         the server's log
#
# Binaries are cached in $STREAM_STACK_CACHE (default ~/.cache/stream-stack); data, logs and pid files
# live in $STREAM_STACK_DATA (default ${TMPDIR:-/tmp}/stream-stack), which `up --fresh` wipes.
set -euo pipefail

# runuser and useradd live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"
STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../../scripts/lib/toolchain.sh
source "$STACK_DIR/../../scripts/lib/toolchain.sh"
DATA_DIR="${STREAM_STACK_DATA:-${TMPDIR:-/tmp}/stream-stack}"
RUN_DIR="$DATA_DIR/run"
LOG_DIR="$DATA_DIR/logs"
SERVERS=(kafka redis influxdb elasticsearch)

for server in "${SERVERS[@]}"; do
  # shellcheck source=/dev/null
  source "$STACK_DIR/servers/$server.sh"
done

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

pid_of() {
  local file="$RUN_DIR/$1.pid"
  [ -f "$file" ] || return 1
  local pid; pid="$(cat "$file")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

# Starts a server in its own session (so `down` can stop its whole process group and nothing else),
# recording the pid before exec so the pid file names the server process itself.
spawn() {
  local name="$1"; shift
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$RUN_DIR/$name.pid" "$@" >> "$LOG_DIR/$name.log" 2>&1 < /dev/null &
  local tries=0
  while [ ! -s "$RUN_DIR/$name.pid" ] && [ $tries -lt 50 ]; do sleep 0.1; tries=$((tries + 1)); done
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

select_servers() {
  if [ $# -eq 0 ]; then printf '%s\n' "${SERVERS[@]}"; return; fi
  local name
  for name in "$@"; do
    [[ " ${SERVERS[*]} " == *" $name "* ]] || die "unknown server '$name' (known: ${SERVERS[*]})"
    echo "$name"
  done
}

stop_server() {
  local name="$1" pid
  pid="$(pid_of "$name")" || { rm -f "$RUN_DIR/$name.pid"; return 0; }
  log "$name: stopping (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local waited=0
  while kill -0 "$pid" 2>/dev/null && [ $waited -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: still running after 30 s, sending SIGKILL to its process group"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
}

cmd_up() {
  local fresh=""
  local -a names=()
  for arg in "$@"; do
    case "$arg" in --fresh) fresh=1 ;; *) names+=("$arg") ;; esac
  done
  mapfile -t names < <(select_servers "${names[@]}")
  if [ -n "$fresh" ]; then
    for name in "${names[@]}"; do stop_server "$name"; done
    log "wiping $DATA_DIR"
    for name in "${names[@]}"; do rm -rf "${DATA_DIR:?}/$name" "$LOG_DIR/$name"*.log; done
  fi
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  local -a started=()
  for name in "${names[@]}"; do
    if pid_of "$name" >/dev/null; then continue; fi
    if port_busy "$("${name}_port")"; then
      die "$name: port $("${name}_port") is taken by a process this stack did not start; stop it, or use it as is by setting the service's environment (see README)"
    fi
    "${name}_install"
    log "$name: starting"
    "${name}_start"
    started+=("$name")
  done
  local failed=""
  for name in "${names[@]}"; do
    if ! wait_healthy "$name"; then failed=1; continue; fi
    if [[ " ${started[*]-} " == *" $name "* ]] && declare -F "${name}_after_start" >/dev/null; then "${name}_after_start"; fi
  done
  cmd_status "${names[@]}"
  [ -z "$failed" ] || die "some servers did not become healthy; see \`pnpm stack logs <name>\`"
}

wait_healthy() {
  local name="$1" deadline=$((SECONDS + $("${name}_wait_seconds")))
  while [ $SECONDS -lt $deadline ]; do
    if ! pid_of "$name" >/dev/null; then
      log "$name: exited during start-up; last lines of $LOG_DIR/$name.log:"
      tail -n 30 "$LOG_DIR/$name.log" >&2 || true
      return 1
    fi
    if "${name}_probe" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "$name: not healthy after $("${name}_wait_seconds") s; last lines of $LOG_DIR/$name.log:"
  tail -n 30 "$LOG_DIR/$name.log" >&2 || true
  return 1
}

cmd_down() {
  local -a names
  mapfile -t names < <(select_servers "$@")
  for name in "${names[@]}"; do stop_server "$name"; done
}

cmd_status() {
  local -a names
  mapfile -t names < <(select_servers "$@")
  local name pid version health
  printf '%-14s %-6s %-8s %-8s %s\n' SERVER PORT PID HEALTH VERSION
  for name in "${names[@]}"; do
    pid="$(pid_of "$name" || echo -)"
    if version="$("${name}_probe" 2>/dev/null)"; then health=healthy; else health=down; version=-; fi
    if [ "$pid" = - ] && [ "$health" = healthy ]; then pid=external; fi
    printf '%-14s %-6s %-8s %-8s %s\n' "$name" "$("${name}_port")" "$pid" "$health" "$version"
  done
}

cmd_logs() {
  [ $# -ge 1 ] || die "usage: stack.sh logs <name> [-f]"
  select_servers "$1" >/dev/null
  local file="$LOG_DIR/$1.log"
  [ -f "$file" ] || die "no log for $1 yet ($file)"
  if [ "${2-}" = -f ]; then tail -n 100 -f "$file"; else tail -n 200 "$file"; fi
}

ensure_node
case "${1-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status "$@" ;;
  logs) shift; cmd_logs "$@" ;;
  *) echo "usage: stack.sh up [--fresh] [name...] | down [name...] | status [name...] | logs <name> [-f]" >&2; exit 2 ;;
esac
