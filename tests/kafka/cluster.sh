#!/usr/bin/env bash
# A three-node Apache Kafka cluster (KRaft, each node broker + controller)
# from the same Maven Central jars as kafka.sh, for fault tests that need
# replication: leaders that move, a quorum that survives one lost node.
#
#   cluster.sh start DIR [N]          N nodes (default 3) on free loopback
#                                     ports; formats DIR if new; waits until
#                                     every node answers metadata
#   cluster.sh bootstrap DIR          print host:port,host:port,...
#   cluster.sh pids DIR               print "id pid" of running nodes
#   cluster.sh kill DIR ID            SIGKILL node ID and wait for it to exit
#   cluster.sh freeze DIR ID          SIGSTOP node ID
#   cluster.sh thaw DIR ID            SIGCONT node ID
#   cluster.sh start-node DIR ID      start node ID again (after kill/stop)
#   cluster.sh restart DIR ID         SIGTERM (bounded), then start-node
#   cluster.sh leader DIR TOPIC PART  print the node id leading TOPIC/PART
#   cluster.sh isr DIR TOPIC PART     print the in-sync replicas, comma list
#   cluster.sh create-topic DIR TOPIC PARTITIONS
#                                     replication factor N, min.insync.replicas
#                                     N-1 (2 for three nodes)
#   cluster.sh stop DIR               stop every node by pid (SIGCONT first,
#                                     SIGTERM, SIGKILL after 20 s)
#
# Environment: YTK_CACHE as for kafka.sh, KAFKA_HEAP per node (default
# 320m), YTK_KAFKA_WAIT seconds to wait for readiness (default 120).
set -euo pipefail

# shellcheck source=tests/kafka/common.sh
. "$(dirname "$0")/common.sh"
kafka_sh=$here/kafka.sh

node_dir() { echo "$1/node-$2"; }

node_pid() {
    local f
    f="$(node_dir "$1" "$2")/kafka.pid"
    [ -f "$f" ] && cat "$f"
}

node_alive() {
    local pid
    pid=$(node_pid "$1" "$2") || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

nodes() { cat "$1/nodes"; }

bootstrap() {
    local id out=""
    for id in $(seq 1 "$(nodes "$1")"); do
        out="$out${out:+,}127.0.0.1:$(cat "$(node_dir "$1" "$id")/port")"
    done
    echo "$out"
}

# Metadata from any live node, the brokers this node sees included.
metadata() {
    kcat -b "$(bootstrap "$1")" -L -m 5 "${@:2}" 2>/dev/null
}

configure() {
    local dir=$1 n=$2 id voters="" cluster
    mkdir -p "$dir"
    echo "$n" > "$dir/nodes"
    for id in $(seq 1 "$n"); do
        mkdir -p "$(node_dir "$dir" "$id")"
        free_port > "$(node_dir "$dir" "$id")/port"
        free_port > "$(node_dir "$dir" "$id")/cport"
        voters="$voters${voters:+,}$id@127.0.0.1:$(cat "$(node_dir "$dir" "$id")/cport")"
    done
    cluster=$(python3 -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("="))')
    for id in $(seq 1 "$n"); do
        local nd port cport
        nd=$(node_dir "$dir" "$id")
        port=$(cat "$nd/port")
        cport=$(cat "$nd/cport")
        cat > "$nd/server.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$nd/data
num.partitions=3
default.replication.factor=$n
min.insync.replicas=$(( n > 1 ? n - 1 : 1 ))
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=$n
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$n
transaction.state.log.min.isr=$(( n > 1 ? n - 1 : 1 ))
share.coordinator.state.topic.replication.factor=$n
share.coordinator.state.topic.min.isr=$(( n > 1 ? n - 1 : 1 ))
group.initial.rebalance.delay.ms=0
num.io.threads=2
num.network.threads=2
num.replica.fetchers=1
background.threads=2
log.retention.hours=24
PROPS
        (cd "$nd" && "$kafka_sh" class kafka.tools.StorageTool format \
            --cluster-id="$cluster" -c "$nd/server.properties") \
            > "$nd/format.log" 2>&1 \
            || { cat "$nd/format.log" >&2; die "format of node $id failed"; }
    done
}

launch() {
    local dir=$1 id=$2 nd
    nd=$(node_dir "$dir" "$id")
    node_alive "$dir" "$id" && return 0
    (
        cd "$nd"
        # setsid: a test's process-group signal does not reach the node.
        setsid java -Xms128m -Xmx"${KAFKA_HEAP:-320m}" -XX:+UseSerialGC \
            -XX:TieredStopAtLevel=1 -Xss512k \
            -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$here/log4j2-broker.properties" \
            -Dkafka.logs.dir="$nd" \
            -cp "$libs/*" kafka.Kafka "$nd/server.properties" \
            >> "$nd/kafka.out" 2>&1 < /dev/null &
        echo $! > "$nd/kafka.pid"
    )
}

wait_node() {
    local dir=$1 id=$2 i wait=${YTK_KAFKA_WAIT:-120} port
    port=$(cat "$(node_dir "$dir" "$id")/port")
    for ((i = 0; i < wait * 4; i++)); do
        answers "$port" && return 0
        node_alive "$dir" "$id" || {
            tail -n 30 "$(node_dir "$dir" "$id")/kafka.out" >&2
            die "node $id exited"; }
        sleep 0.25
    done
    tail -n 30 "$(node_dir "$dir" "$id")/kafka.out" >&2
    die "node $id did not answer metadata within ${wait}s"
}

# Every node registered as a broker in the metadata (the cluster is whole).
wait_whole() {
    local dir=$1 i wait=${YTK_KAFKA_WAIT:-120} n
    n=$(nodes "$dir")
    for ((i = 0; i < wait * 2; i++)); do
        if [ "$(metadata "$dir" | sed -n 's/^ *\([0-9]*\) brokers:.*/\1/p')" = "$n" ]; then
            return 0
        fi
        sleep 0.5
    done
    die "the cluster did not show $n brokers within ${wait}s"
}

start() {
    local dir=$1 n=${2:-3} id
    "$kafka_sh" fetch
    command -v kcat >/dev/null 2>&1 || die "kcat not found (run dev/deps)"
    [ -f "$dir/nodes" ] || configure "$dir" "$n"
    for id in $(seq 1 "$(nodes "$dir")"); do
        launch "$dir" "$id"
    done
    for id in $(seq 1 "$(nodes "$dir")"); do
        wait_node "$dir" "$id"
    done
    wait_whole "$dir"
    echo "cluster.sh: $(nodes "$dir") nodes ready: $(bootstrap "$dir")" >&2
}

signal_node() {
    local dir=$1 id=$2 sig=$3 pid
    pid=$(node_pid "$dir" "$id") || die "node $id has no pid"
    kill "-$sig" "$pid" 2>/dev/null || die "node $id ($pid) is not running"
}

kill_node() {
    local dir=$1 id=$2 pid
    node_alive "$dir" "$id" || return 0
    pid=$(node_pid "$dir" "$id")
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -f "$(node_dir "$dir" "$id")/kafka.pid"
}

stop_node() {
    local dir=$1 id=$2 bound=${3:-20} pid i
    node_alive "$dir" "$id" || { rm -f "$(node_dir "$dir" "$id")/kafka.pid"; return 0; }
    pid=$(node_pid "$dir" "$id")
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < bound * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$(node_dir "$dir" "$id")/kafka.pid"
}

# "partition 0, leader 2, replicas: 2,3,1, isrs: 2,3,1"
partition_field() {
    local dir=$1 topic=$2 part=$3 field=$4
    metadata "$dir" -t "$topic" | awk -v p="$part" -v f="$field" '
        $1 == "partition" && $2 == p "," {
            for (i = 3; i <= NF; i++) {
                if (f == "leader" && $i == "leader") { v = $(i + 1); sub(",", "", v); print v; exit }
                if (f == "isr" && $i == "isrs:") { v = $(i + 1); sub(",$", "", v); print v; exit }
            }
        }'
}

stop_all() {
    local dir=$1 id
    [ -f "$dir/nodes" ] || return 0
    # SIGCONT all first: a frozen node must be able to act on SIGTERM.
    for id in $(seq 1 "$(nodes "$dir")"); do
        if node_alive "$dir" "$id"; then
            kill -CONT "$(node_pid "$dir" "$id")" 2>/dev/null || true
        fi
    done
    for id in $(seq 1 "$(nodes "$dir")"); do
        stop_node "$dir" "$id" 20 &
    done
    wait
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: cluster.sh start|bootstrap|pids|kill|freeze|thaw|start-node|restart|leader|isr|create-topic|stop DIR ..."
shift
[ $# -ge 1 ] || die "$cmd: DIR missing"
case "$cmd" in
    start) start "$@" ;;
    bootstrap) bootstrap "$1" ;;
    pids)
        for id in $(seq 1 "$(nodes "$1")"); do
            node_alive "$1" "$id" && echo "$id $(node_pid "$1" "$id")"
        done; true ;;
    kill) kill_node "$1" "$2" ;;
    freeze) signal_node "$1" "$2" STOP ;;
    thaw) signal_node "$1" "$2" CONT ;;
    start-node) launch "$1" "$2"; wait_node "$1" "$2" ;;
    restart) stop_node "$1" "$2"; launch "$1" "$2"; wait_node "$1" "$2" ;;
    leader)
        v=$(partition_field "$1" "$2" "$3" leader)
        [ -n "$v" ] || die "no leader known for $2/$3"
        echo "$v" ;;
    isr) partition_field "$1" "$2" "$3" isr ;;
    create-topic)
        n=$(nodes "$1")
        "$kafka_sh" topics --bootstrap-server "$(bootstrap "$1")" --create \
            --if-not-exists --topic "$2" --partitions "$3" \
            --replication-factor "$n" \
            --config min.insync.replicas=$(( n > 1 ? n - 1 : 1 )) >&2 ;;
    stop) stop_all "$1" ;;
    *) die "unknown command: $cmd" ;;
esac
