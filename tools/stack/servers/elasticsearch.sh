# shellcheck shell=bash
# Elasticsearch 8.x from Maven Central's integ-test-zip distribution, single node, security off.
# Elasticsearch refuses to run as root, so as root it runs as a dedicated system user.
ELASTICSEARCH_VERSION="${STACK_ELASTICSEARCH_VERSION:-8.19.21}"
ELASTICSEARCH_PORT="${STACK_ELASTICSEARCH_PORT:-9200}"
ELASTICSEARCH_TRANSPORT_PORT="${STACK_ELASTICSEARCH_TRANSPORT_PORT:-9300}"
ELASTICSEARCH_HOME="$STREAM_CACHE/elasticsearch/$ELASTICSEARCH_VERSION"
ELASTICSEARCH_USER="stream-es"

elasticsearch_port() { echo "$ELASTICSEARCH_PORT"; }

elasticsearch_install() {
  [ -f "$ELASTICSEARCH_HOME/.complete" ] && return 0
  command -v mvn >/dev/null || die "elasticsearch: Maven (mvn) is needed to fetch Elasticsearch from Maven Central"
  command -v unzip >/dev/null || { [ "$(id -u)" = 0 ] && apt_install unzip; } || die "elasticsearch: unzip is missing"
  log "elasticsearch: fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ELASTICSEARCH_VERSION:zip"
  local tmp; tmp="$(mktemp -d)"
  mvn -q -B dependency:copy \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ELASTICSEARCH_VERSION:zip" \
    -DoutputDirectory="$tmp" > "$tmp/mvn.log" 2>&1 || { tail -20 "$tmp/mvn.log" >&2; die "elasticsearch: mvn failed"; }
  rm -rf "$ELASTICSEARCH_HOME" && mkdir -p "$(dirname "$ELASTICSEARCH_HOME")"
  unzip -q "$tmp/elasticsearch-$ELASTICSEARCH_VERSION.zip" -d "$tmp/x"
  mv "$tmp/x/elasticsearch-$ELASTICSEARCH_VERSION" "$ELASTICSEARCH_HOME"
  chmod -R a+rX "$ELASTICSEARCH_HOME"
  rm -rf "$tmp"
  touch "$ELASTICSEARCH_HOME/.complete"
}

elasticsearch_start() {
  local dir="$DATA_DIR/elasticsearch"
  mkdir -p "$dir/config" "$dir/data" "$dir/tmp"
  # The distribution stays read-only in the cache; config, data and temp files live in the data dir.
  cp "$ELASTICSEARCH_HOME/config/jvm.options" "$ELASTICSEARCH_HOME/config/log4j2.properties" "$dir/config/"
  mkdir -p "$dir/config/jvm.options.d"
  printf -- '-Xms512m\n-Xmx512m\n' > "$dir/config/jvm.options.d/heap.options"
  sed -e "s#@DATA@#$dir#g" -e "s/@PORT@/$ELASTICSEARCH_PORT/g" -e "s/@TRANSPORT_PORT@/$ELASTICSEARCH_TRANSPORT_PORT/g" \
    "$STACK_DIR/conf/elasticsearch.yml" > "$dir/config/elasticsearch.yml"
  local java_home="${STACK_ES_JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}"
  local home="$ELASTICSEARCH_HOME"
  local -a run_as=()
  if [ "$(id -u)" = 0 ]; then
    # The cache under root's home is not reachable by the server's user: run from a linked copy.
    home="$DATA_DIR/elasticsearch-home-$ELASTICSEARCH_VERSION"
    [ -d "$home" ] || cp -al "$ELASTICSEARCH_HOME" "$home" 2>/dev/null || cp -a "$ELASTICSEARCH_HOME" "$home"
    id "$ELASTICSEARCH_USER" >/dev/null 2>&1 \
      || useradd --system --no-create-home --shell /usr/sbin/nologin "$ELASTICSEARCH_USER" \
      || die "elasticsearch: could not create the user $ELASTICSEARCH_USER"
    chown -R "$ELASTICSEARCH_USER" "$dir"
    chmod a+rx "$DATA_DIR" "$LOG_DIR"
    touch "$LOG_DIR/elasticsearch.log" && chown "$ELASTICSEARCH_USER" "$LOG_DIR/elasticsearch.log"
    run_as=(runuser -u "$ELASTICSEARCH_USER" --)
  fi
  spawn elasticsearch "${run_as[@]}" env ES_JAVA_HOME="$java_home" ES_PATH_CONF="$dir/config" \
    ES_TMPDIR="$dir/tmp" "$home/bin/elasticsearch"
}

elasticsearch_probe() { node "$STACK_DIR/probe.mjs" elasticsearch "$ELASTICSEARCH_PORT"; }
elasticsearch_wait_seconds() { echo 180; }
