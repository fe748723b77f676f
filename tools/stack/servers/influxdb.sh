# shellcheck shell=bash
# InfluxDB 1.8.10 built from source with the Go toolchain (pure Go), Flux enabled so that
# @influxdata/influxdb-client can use the /api/v2 write and Flux query endpoints.
INFLUXDB_VERSION="1.8.10"
INFLUXDB_PORT="${STACK_INFLUXDB_PORT:-8086}"
INFLUXDB_RPC_PORT="${STACK_INFLUXDB_RPC_PORT:-8088}"
INFLUXDB_HOME="$STREAM_CACHE/influxdb/$INFLUXDB_VERSION"

influxdb_port() { echo "$INFLUXDB_PORT"; }

influxdb_install() {
  [ -x "$INFLUXDB_HOME/bin/influxd" ] && return 0
  command -v go >/dev/null || die "influxdb: the Go toolchain is needed to build influxd $INFLUXDB_VERSION"
  log "influxdb: building influxd $INFLUXDB_VERSION with go install (about 2 minutes the first time)"
  mkdir -p "$INFLUXDB_HOME/bin"
  GOBIN="$INFLUXDB_HOME/bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
    go install -ldflags "-X main.version=$INFLUXDB_VERSION" \
    "github.com/influxdata/influxdb/cmd/influxd@v$INFLUXDB_VERSION" > "$INFLUXDB_HOME/build.log" 2>&1 \
    || { tail -20 "$INFLUXDB_HOME/build.log" >&2; die "influxdb: go install failed (log: $INFLUXDB_HOME/build.log)"; }
}

influxdb_start() {
  local dir="$DATA_DIR/influxdb"
  mkdir -p "$dir"
  sed -e "s#@DATA@#$dir#g" -e "s/@PORT@/$INFLUXDB_PORT/g" -e "s/@RPC_PORT@/$INFLUXDB_RPC_PORT/g" \
    "$STACK_DIR/conf/influxdb.conf" > "$dir/influxdb.conf"
  spawn influxdb "$INFLUXDB_HOME/bin/influxd" run -config "$dir/influxdb.conf"
}

influxdb_probe() { node "$STACK_DIR/probe.mjs" influxdb "$INFLUXDB_PORT"; }
influxdb_wait_seconds() { echo 30; }

# A database for tests and the demo; tests also create their own, one per test.
influxdb_after_start() {
  curl -fsS -XPOST "http://127.0.0.1:$INFLUXDB_PORT/query" --data-urlencode "q=CREATE DATABASE stream" >/dev/null \
    || die "influxdb: could not create the database 'stream'"
}
