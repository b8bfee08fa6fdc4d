#!/usr/bin/env bash
# Runs shellcheck on every shell script of the repository.
#
#   tests/lint/shellcheck.sh [--list]
#
# A shell script is a file that git tracks, or an untracked one that git does
# not ignore (outside git: any file under dev, tests, bench, .ci), whose first line is a sh/bash/dash/ksh shebang or whose name
# ends in .sh or .bash. Generated autotools scripts (configure, libtool,
# build directories) are ignored by .gitignore and so are never checked.
# --list prints the files and checks nothing. Exit 0 only when all pass.
set -euo pipefail
cd "$(dirname "$0")/../.."

is_shell() {
    local first
    case "$1" in
        *.sh|*.bash) return 0 ;;
    esac
    IFS= read -r first < "$1" 2>/dev/null || return 1
    [[ "$first" =~ ^#!\ ?(/usr)?/bin/(env\ +)?(ba|da|k)?sh([[:space:]]|$) ]]
}

candidates() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard
    else
        # A release tarball: no git, so the directories that hold scripts.
        find dev tests bench .ci -type f -print0 2>/dev/null
    fi
}

scripts=()
while IFS= read -r -d '' f; do
    if [ -f "$f" ] && [ ! -L "$f" ] && is_shell "$f"; then
        scripts+=("$f")
    fi
done < <(candidates | sort -zu)

if [ ${#scripts[@]} -eq 0 ]; then
    echo "shellcheck.sh: no shell scripts found" >&2
    exit 1
fi
if [ "${1-}" = --list ]; then
    printf '%s\n' "${scripts[@]}"
    exit 0
fi
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "shellcheck.sh: shellcheck is not installed (dev/deps test installs it)" >&2
    exit 1
fi

# -x -P SCRIPTDIR: follow `source`d files relative to each script.
if shellcheck -x -P SCRIPTDIR "${scripts[@]}"; then
    echo "shellcheck: ${#scripts[@]} scripts, 0 failed"
else
    echo "shellcheck: failures above (${#scripts[@]} scripts checked)" >&2
    exit 1
fi
