# shellcheck shell=bash
# What kafka.sh and cluster.sh share, sourced by both: where the jars are,
# how a script dies, a free loopback port, whether a broker answers.
#
# Sets here, repo, cache (YTK_CACHE, default <repo>/.cache), version (from
# pom.xml) and libs. die() prefixes the name of the script that sourced it.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${YTK_CACHE:-$repo/.cache}
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
# shellcheck disable=SC2034  # used by the scripts that source this
libs="$cache/kafka-$version/libs"

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Exit 0 if the broker on 127.0.0.1:$1 answers a metadata request.
answers() {
    kcat -b "127.0.0.1:$1" -L -m 3 >/dev/null 2>&1
}
