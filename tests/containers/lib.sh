# Shared by the container test's scripts: podman with the test's own
# storage and configuration under the cache, never the machine's.
# shellcheck shell=bash
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${YTK_CACHE:-$repo/.cache}
croot="$cache/containers"
mkdir -p "$croot/storage" "$croot/run" "$croot/tmp" "$croot/base"

# containers.conf: runc (crun fails on hybrid cgroups), ulimits below the
# machine's hard limits, netavark, and no network unless the run gives one.
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
[ "$nproc" = unlimited ] && nproc=1048576
[ "$nofile" -gt 65536 ] && nofile=65536
[ "$nproc" -gt 4096 ] && nproc=4096   # runc refuses more here
cat > "$croot/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
netns = "bridge"
[network]
network_backend = "netavark"
network_config_dir = "$croot/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$croot/tmp"
CONF
cat > "$croot/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$croot/storage"
runroot = "$croot/run"
CONF
export CONTAINERS_CONF="$croot/containers.conf"
export CONTAINERS_STORAGE_CONF="$croot/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$croot/registries.conf"
[ -f "$CONTAINERS_REGISTRIES_CONF" ] || : > "$CONTAINERS_REGISTRIES_CONF"

pm() { podman "$@"; }
# podman build does not apply default_ulimits to RUN steps: name them.
pm_build() {
    podman build --pull=never --network host --format docker \
        --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$@"
}

# The Kafka stand-in image (kafka/Containerfile), built once and cached.
# Tagged with a digest of its files, so that a change to them rebuilds it.
kafka_image=localhost/ytkafka-kafka-standin:$(cd "$here" \
    && find kafka ../kafka/pom.xml -type f -print0 | sort -z \
    | xargs -0 sha256sum | sha256sum | cut -c1-16)
build_kafka() {
    pm image exists "$kafka_image" && return 0
    "$repo/tests/kafka/kafka.sh" fetch
    local ctx="$croot/kafka-context" libs
    libs="$cache/kafka-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$repo/tests/kafka/pom.xml")/libs"
    rm -rf "$ctx"
    mkdir -p "$ctx"
    cp -a "$here/kafka/." "$ctx/"
    cp -a "$libs" "$ctx/libs"
    rm -f "$ctx/libs/.complete"
    pm_build -t "$kafka_image" "$ctx"
    rm -rf "$ctx"
}
