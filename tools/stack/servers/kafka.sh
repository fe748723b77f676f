# shellcheck shell=bash
# Kafka 4.x in KRaft mode (one combined broker+controller) from Maven Central jars.
KAFKA_VERSION="${STACK_KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION="2.24.3"
KAFKA_PORT="${STACK_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${STACK_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_SASL_PORT="${STACK_KAFKA_SASL_PORT:-9094}"
KAFKA_TLS_PORT="${STACK_KAFKA_TLS_PORT:-9095}"
# Local-only credentials for the SCRAM listener the security tests use. Not a secret: loopback only.
KAFKA_SCRAM_USER="stream-test"
KAFKA_SCRAM_PASSWORD="stream-test-secret"
KAFKA_HOME="$STREAM_CACHE/kafka/$KAFKA_VERSION"
# The TLS listener's CA and certificates, generated once by kafka_tls_material and shared by every stack instance.
KAFKA_TLS_DIR="${STACK_KAFKA_TLS_DIR:-$STREAM_CACHE/kafka-tls}"
# Protects only the broker's PKCS#12 keystore in the cache; loopback test material, not a secret.
KAFKA_TLS_STORE_PASSWORD="stream-stack-keystore"

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

# A local CA (10 years), the broker's certificate for 127.0.0.1/localhost, a client certificate (for mutual TLS)
# and a second CA the broker does not know (the tests' "untrusted certificate"). Generated with openssl into a
# temporary directory and moved into place whole, so a second start (or a concurrent one) reuses it as is.
kafka_tls_material() {
  [ -f "$KAFKA_TLS_DIR/.complete" ] && return 0
  command -v openssl >/dev/null || { [ "$(id -u)" = 0 ] && apt_install openssl; } || die "kafka: openssl is needed to generate the TLS listener's CA (apt-get install openssl)"
  log "kafka: generating the TLS listener's CA and certificates in $KAFKA_TLS_DIR"
  mkdir -p "$(dirname "$KAFKA_TLS_DIR")"
  local tmp; tmp="$(mktemp -d "$(dirname "$KAFKA_TLS_DIR")/.kafka-tls.XXXXXX")"
  (
    set -e
    cd "$tmp"
    ossl() { openssl "$@" 2>>openssl.log; }
    ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stream-stack local CA" \
      -keyout ca.key -out ca.crt -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
    ossl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=stream-stack untrusted CA" \
      -keyout untrusted-ca.key -out untrusted-ca.crt -addext basicConstraints=critical,CA:TRUE
    ossl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout broker.key -out broker.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > broker.ext
    ossl x509 -req -in broker.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile broker.ext -out broker.crt
    ossl pkcs12 -export -in broker.crt -inkey broker.key -certfile ca.crt -name broker \
      -passout "pass:$KAFKA_TLS_STORE_PASSWORD" -out broker.p12
    ossl req -newkey rsa:2048 -nodes -subj "/CN=stream-test" -keyout client.key -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    ossl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext -out client.crt
    rm -f ./*.csr ./*.ext ./*.srl openssl.log
    chmod 600 ./*.key broker.p12
    touch .complete
  ) || { cat "$tmp/openssl.log" >&2 2>/dev/null; rm -rf "$tmp"; die "kafka: generating the TLS material failed"; }
  if ! mv -T "$tmp" "$KAFKA_TLS_DIR" 2>/dev/null; then
    # Another start generated it meanwhile: keep theirs.
    rm -rf "$tmp"
    [ -f "$KAFKA_TLS_DIR/.complete" ] || die "kafka: $KAFKA_TLS_DIR exists but is incomplete; remove it and start again"
  fi
}

kafka_java() { "${STACK_JAVA:-java}" "$@"; }

kafka_config() {
  kafka_tls_material
  local dir="$DATA_DIR/kafka"
  mkdir -p "$dir"
  sed -e "s#@DATA@#$dir/data#g" -e "s/@PORT@/$KAFKA_PORT/g" -e "s/@CONTROLLER_PORT@/$KAFKA_CONTROLLER_PORT/g" \
    -e "s/@SASL_PORT@/$KAFKA_SASL_PORT/g" -e "s/@TLS_PORT@/$KAFKA_TLS_PORT/g" -e "s#@TLS_DIR@#$KAFKA_TLS_DIR#g" \
    -e "s/@TLS_STORE_PASSWORD@/$KAFKA_TLS_STORE_PASSWORD/g" -e "s/@SCRAM_USER@/$KAFKA_SCRAM_USER/g" \
    -e "s/@SCRAM_PASSWORD@/$KAFKA_SCRAM_PASSWORD/g" "$STACK_DIR/conf/kafka.properties" > "$dir/server.properties"
  echo "$dir/server.properties"
}

kafka_start() {
  local port
  for port in "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_PORT" "$KAFKA_TLS_PORT"; do
    if port_busy "$port"; then die "kafka: port $port (controller, SASL or TLS listener) is taken; free it or move it (STACK_KAFKA_*_PORT)"; fi
  done
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
kafka_wait_seconds() { echo 150; }
