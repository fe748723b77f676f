# shellcheck shell=bash
# Redis from Debian's redis-server package; no persistence unless STACK_REDIS_APPENDONLY=yes (the fault
# suite stops and restarts Redis and needs what was written before to survive, as in production).
REDIS_PORT="${STACK_REDIS_PORT:-6379}"
REDIS_APPENDONLY="${STACK_REDIS_APPENDONLY:-no}"

redis_port() { echo "$REDIS_PORT"; }

redis_install() {
  command -v redis-server >/dev/null && return 0
  [ "$(id -u)" = 0 ] || die "redis: redis-server is missing; install Debian's redis-server package (apt-get install redis-server)"
  log "redis: installing Debian's redis-server"
  apt_install redis-server
}

redis_start() {
  mkdir -p "$DATA_DIR/redis"
  # --daemonize no: spawn keeps the pid and the log, like every other server here.
  spawn redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes --save "" --appendonly "$REDIS_APPENDONLY" \
    --dir "$DATA_DIR/redis" --daemonize no --maxmemory-policy noeviction
}

redis_probe() { node "$STACK_DIR/probe.mjs" redis "$REDIS_PORT"; }
redis_wait_seconds() { echo 20; }
