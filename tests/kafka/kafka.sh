#!/usr/bin/env bash
# A real Apache Kafka broker (KRaft, single node) from Maven Central's jars.
#
#   kafka.sh fetch                  resolve the jars once into the cache
#   kafka.sh start DIR PORT         format DIR if new, start, wait for metadata
#   kafka.sh stop DIR [SECONDS]     SIGTERM, then SIGKILL after SECONDS (20)
#   kafka.sh kill DIR               SIGKILL (fault tests)
#   kafka.sh restart DIR            stop, then start on the same data and port
#   kafka.sh status DIR             exit 0 if running and answering metadata
#   kafka.sh class CLASS [ARGS...]  run a Kafka tool class with the jars
#   kafka.sh topics|console-consumer|console-producer|consumer-groups ARGS...
#
# Environment: YTK_CACHE (default <repo>/.cache), KAFKA_HEAP (default 768m),
# YTK_KAFKA_WAIT seconds to wait for readiness (default 90).
set -euo pipefail

# shellcheck source=tests/kafka/common.sh
. "$(dirname "$0")/common.sh"

fetch() {
    [ -f "$libs/.complete" ] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found (run dev/deps)"
    mkdir -p "$libs"
    echo "kafka.sh: fetching Apache Kafka $version jars from Maven Central" >&2
    mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$libs" >&2 \
        || die "mvn could not resolve Kafka $version"
    touch "$libs/.complete"
}

java_run() {
    # -cp with a wildcard keeps the command line short.
    exec java -Xshare:auto -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
        -Dlog4j2.configurationFile="$here/log4j2-tools.properties" \
        -cp "$libs/*" "$@"
}

alive() {
    local pid
    [ -f "$1/kafka.pid" ] || return 1
    pid=$(cat "$1/kafka.pid")
    kill -0 "$pid" 2>/dev/null
}

start() {
    local dir=$1 port=$2 cport cluster i wait
    fetch
    command -v java >/dev/null 2>&1 || die "java not found (run dev/deps)"
    command -v kcat >/dev/null 2>&1 || die "kcat not found (run dev/deps)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if alive "$dir"; then
        answers "$(cat "$dir/port")" && return 0
        die "a broker in $dir is running but not answering"
    fi
    if [ ! -f "$dir/server.properties" ]; then
        cport=$(free_port)
        cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=${YTK_KAFKA_AUTO_CREATE:-true}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
PROPS
        echo "$port" > "$dir/port"
    fi
    port=$(cat "$dir/port")
    if [ ! -f "$dir/data/meta.properties" ]; then
        cluster=$(python3 -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="))')
        (java_run kafka.tools.StorageTool format --cluster-id="$cluster" \
            -c "$dir/server.properties") > "$dir/format.log" 2>&1 \
            || { cat "$dir/format.log" >&2; die "format failed"; }
    fi
    (
        cd "$dir"
        # setsid: the broker outlives the shell that started it, and a
        # test's process group signal does not reach it.
        setsid java -Xms256m -Xmx"${KAFKA_HEAP:-768m}" -XX:+UseG1GC \
            -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$here/log4j2-broker.properties" \
            -Dkafka.logs.dir="$dir" \
            -cp "$libs/*" kafka.Kafka "$dir/server.properties" \
            >> "$dir/kafka.out" 2>&1 < /dev/null &
        echo $! > "$dir/kafka.pid"
    )
    wait=${YTK_KAFKA_WAIT:-90}
    for ((i = 0; i < wait * 4; i++)); do
        if answers "$port"; then
            echo "kafka.sh: broker ready on 127.0.0.1:$port ($dir)" >&2
            return 0
        fi
        alive "$dir" || { tail -n 30 "$dir/kafka.out" >&2; die "broker exited"; }
        sleep 0.25
    done
    tail -n 30 "$dir/kafka.out" >&2
    die "broker did not answer metadata within ${wait}s"
}

stop() {
    local dir=$1 bound=${2:-20} pid i
    alive "$dir" || { rm -f "$dir/kafka.pid"; return 0; }
    pid=$(cat "$dir/kafka.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < bound * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/kafka.pid"; return 0; }
        sleep 0.1
    done
    echo "kafka.sh: broker $pid ignored SIGTERM for ${bound}s, killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$dir/kafka.pid"
}

kill_now() {
    local dir=$1 pid
    alive "$dir" || return 0
    pid=$(cat "$dir/kafka.pid")
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$dir/kafka.pid"
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: kafka.sh fetch|start|stop|kill|restart|status|class|topics|console-consumer|console-producer|consumer-groups"
shift
case "$cmd" in
    fetch) fetch ;;
    start) [ $# -eq 2 ] || die "usage: kafka.sh start DIR PORT"; start "$1" "$2" ;;
    stop) [ $# -ge 1 ] || die "usage: kafka.sh stop DIR [SECONDS]"; stop "$@" ;;
    kill) [ $# -eq 1 ] || die "usage: kafka.sh kill DIR"; kill_now "$1" ;;
    restart)
        [ $# -eq 1 ] || die "usage: kafka.sh restart DIR"
        stop "$1"; start "$1" "$(cat "$1/port")" ;;
    status)
        [ $# -eq 1 ] || die "usage: kafka.sh status DIR"
        alive "$1" && answers "$(cat "$1/port")" ;;
    class) fetch; java_run "$@" ;;
    topics) fetch; java_run org.apache.kafka.tools.TopicCommand "$@" ;;
    console-consumer) fetch; java_run org.apache.kafka.tools.consumer.ConsoleConsumer "$@" ;;
    console-producer) fetch; java_run org.apache.kafka.tools.ConsoleProducer "$@" ;;
    consumer-groups) fetch; java_run org.apache.kafka.tools.consumer.group.ConsumerGroupCommand "$@" ;;
    *) die "unknown command: $cmd" ;;
esac
