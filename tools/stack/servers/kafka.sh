# shellcheck shell=bash
# Kafka 4.x in KRaft mode (one combined broker+controller) from Maven Central jars.
KAFKA_VERSION="${STACK_KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION="2.24.3"
KAFKA_PORT="${STACK_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${STACK_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_SASL_PORT="${STACK_KAFKA_SASL_PORT:-9094}"
# Local-only credentials for the SCRAM listener the security tests use. Not a secret: loopback only.
KAFKA_SCRAM_USER="stream-test"
KAFKA_SCRAM_PASSWORD="stream-test-secret"
KAFKA_HOME="$STREAM_CACHE/kafka/$KAFKA_VERSION"

kafka_port() { echo "$KAFKA_PORT"; }

kafka_install() {
  [ -f "$KAFKA_HOME/.complete" ] && return 0
  command -v mvn >/dev/null || die "kafka: Maven (mvn) is needed to fetch the Kafka jars from Maven Central"
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies from Maven Central"
  mkdir -p "$KAFKA_HOME"
  sed -e "s/@KAFKA_VERSION@/$KAFKA_VERSION/g" -e "s/@LOG4J_VERSION@/$LOG4J_VERSION/g" \
    "$STACK_DIR/conf/kafka-pom.xml" > "$KAFKA_HOME/pom.xml"
  rm -rf "$KAFKA_HOME/lib"
  (cd "$KAFKA_HOME" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=lib -DincludeScope=runtime) \
    > "$KAFKA_HOME/mvn.log" 2>&1 || { tail -20 "$KAFKA_HOME/mvn.log" >&2; die "kafka: mvn failed (log: $KAFKA_HOME/mvn.log)"; }
  touch "$KAFKA_HOME/.complete"
}

kafka_java() { "${STACK_JAVA:-java}" "$@"; }

kafka_config() {
  local dir="$DATA_DIR/kafka"
  mkdir -p "$dir"
  sed -e "s#@DATA@#$dir/data#g" -e "s/@PORT@/$KAFKA_PORT/g" -e "s/@CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT/g" \
    -e "s/@SASL_PORT@/$KAFKA_SASL_PORT/g" "$STACK_DIR/conf/kafka.properties" > "$dir/server.properties"
  echo "$dir/server.properties"
}

kafka_start() {
  local config; config="$(kafka_config)"
  local dir="$DATA_DIR/kafka"
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster_id; cluster_id="$(kafka_java -cp "$KAFKA_HOME/lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
    kafka_java -Dlog4j2.configurationFile="$STACK_DIR/conf/kafka-log4j2.properties" -cp "$KAFKA_HOME/lib/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$config" \
      --add-scram "SCRAM-SHA-256=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
      --add-scram "SCRAM-SHA-512=[name=$KAFKA_SCRAM_USER,password=$KAFKA_SCRAM_PASSWORD]" \
      > "$LOG_DIR/kafka-format.log" 2>&1 || { cat "$LOG_DIR/kafka-format.log" >&2; die "kafka: storage format failed"; }
  fi
  spawn kafka env KAFKA_HEAP_OPTS= "${STACK_JAVA:-java}" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$STACK_DIR/conf/kafka-log4j2.properties" \
    -cp "$KAFKA_HOME/lib/*" kafka.Kafka "$config"
}

kafka_probe() { STACK_KAFKA_VERSION="$KAFKA_VERSION" node "$STACK_DIR/probe.mjs" kafka "$KAFKA_PORT"; }
kafka_wait_seconds() { echo 90; }
