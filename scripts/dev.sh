#!/usr/bin/env bash
# The one entry point on a fresh machine: installs what is missing, then runs the job.
#   bash scripts/dev.sh demo [--scale N] [--keep]   # throwaway PostgreSQL, data, migrate, refresh
#   bash scripts/dev.sh test                        # the suite on PostgreSQL 15, 16, 17 and 18
#                                                   # (the Dagster tests on 15 only)
#   bash scripts/dev.sh test [pytest args]          # pytest with these arguments, on 15 only
#   bash scripts/dev.sh setup                       # only the setup
#
# BIOLOUPE_PG_MAJORS="16 17" chooses the majors for `test` (with or without pytest args).
# PostgreSQL 15 is Debian's, with pg_cron; 16, 17 and 18 are the PyPI server wheels listed in
# pyproject.toml's `pg-servers` extra, installed into $BIOLOUPE_PG_HOME (as root, default
# /opt/bioloupe-views/postgresql: the `postgres` system user that runs the servers must reach
# them, and a checkout under /root is not reachable). No pg_cron is packaged for those, so
# their run leaves out the tests marked pg_cron.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=15          # Debian's server, with pg_cron: the default one
ALL_MAJORS="15 16 17 18"
if [ "$(id -u)" -eq 0 ]; then
    PG_HOME="${BIOLOUPE_PG_HOME:-/opt/bioloupe-views/postgresql}"
else
    PG_HOME="${BIOLOUPE_PG_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/bioloupe-views/postgresql}"
fi

setup() {
    local missing=()
    [ -x "/usr/lib/postgresql/$PG_MAJOR/bin/pg_ctl" ] || missing+=("postgresql-$PG_MAJOR")
    [ -f "/usr/lib/postgresql/$PG_MAJOR/lib/pg_cron.so" ] || missing+=("postgresql-$PG_MAJOR-cron")
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> Installing Debian packages: ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "==> Creating the virtual environment .venv"
        python3 -m venv .venv
    fi
    echo "==> Installing bioloupe-views, its test dependencies and the Dagster extra into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test,dagster]'
    install_server_wheels
}

# The server wheels of pyproject.toml's `pg-servers` extra, each into a directory of its own
# (pip --target, without their Python dependencies: only the binaries are used), with a link
# $PG_HOME/<major> -> its pginstall directory. Already installed pins are left as they are.
install_server_wheels() {
    local req name dir tmp bindir major rel
    (umask 022; mkdir -p "$PG_HOME/wheels")
    for req in $(.venv/bin/python -c 'import tomllib
print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["pg-servers"]))'); do
        name="${req/==/-}"
        dir="$PG_HOME/wheels/$name"
        if [ ! -e "$dir/.installed" ]; then
            echo "==> Installing the PostgreSQL server wheel $req into $dir"
            tmp=$(mktemp -d "$PG_HOME/wheels/.tmp-$name-XXXXXX")
            .venv/bin/pip install -q --disable-pip-version-check --no-deps --no-compile \
                --target "$tmp" "$req"
            chmod -R a+rX "$tmp"
            if [ -e "$dir/.installed" ]; then  # another setup got there first
                rm -rf "$tmp"
            else
                rm -rf "$dir"
                mv "$tmp" "$dir"
                touch "$dir/.installed"
            fi
        fi
        bindir=$(echo "$dir"/*/pginstall/bin)
        if [ ! -x "$bindir/postgres" ]; then
            echo "error: $req holds no */pginstall/bin/postgres under $dir" >&2
            exit 1
        fi
        major=$("$bindir/postgres" --version | awk '{print $3}' | cut -d. -f1)
        rel="${bindir#"$PG_HOME"/}"
        ln -sfn "${rel%/bin}" "$PG_HOME/.$major.link"
        mv -T "$PG_HOME/.$major.link" "$PG_HOME/$major"
        if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- "$PG_HOME/$major/bin/postgres" --version >/dev/null 2>&1; then
            echo "error: the postgres system user cannot run $PG_HOME/$major/bin/postgres; set" \
                 "BIOLOUPE_PG_HOME to a directory it can reach (every parent searchable)" >&2
            exit 1
        fi
    done
}

pg_bindir() {
    if [ "$1" = custom ]; then
        echo "${BIOLOUPE_PG_BIN:-$BIOLOUPE_PG_BINDIR}"
    elif [ "$1" = "$PG_MAJOR" ]; then
        echo "/usr/lib/postgresql/$PG_MAJOR/bin"
    else
        echo "$PG_HOME/$1/bin"
    fi
}

# On TERM or Ctrl-C: pytest stops its server and ends (conftest); killed if it takes over 30 s.
stop_pytest() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null || return 0
    local i
    for i in $(seq 60); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL "$1" 2>/dev/null || true
}

# "N passed" -> N from pytest's closing line ($2); 0 when absent.
count() {
    local n
    n=$(echo "$2" | grep -oE "[0-9]+ $1" | head -n 1 | cut -d' ' -f1 || true)
    echo "${n:-0}"
}

# One pytest run per major, each under a header; a summary at the end. Exit 0 only if every
# major passed (with one major: pytest's own exit status).
run_tests() {
    local majors
    if [ -n "${BIOLOUPE_PG_MAJORS:-}" ]; then
        majors="$BIOLOUPE_PG_MAJORS"
    elif [ -n "${BIOLOUPE_PG_BIN:-}${BIOLOUPE_PG_BINDIR:-}" ]; then
        majors=custom  # the bin directory the caller chose
    elif [ $# -gt 0 ]; then
        majors="$PG_MAJOR"
    else
        majors="$ALL_MAJORS"
    fi
    local logdir major bindir version cron rc="" start seconds line
    local summary=() failed_majors=() ran=0 total_passed=0 total_failed=0 total_skipped=0
    logdir=$(mktemp -d "${TMPDIR:-/tmp}/bioloupe-views-test-XXXXXX")
    local pid=""
    trap 'stop_pytest "$pid"; rm -rf "$logdir"; exit 143' TERM INT
    for major in $majors; do
        bindir=$(pg_bindir "$major")
        if [ ! -x "$bindir/pg_ctl" ]; then
            echo "error: no PostgreSQL $major binaries at $bindir (supported: $ALL_MAJORS)" >&2
            failed_majors+=("$major")
            summary+=("PostgreSQL $major: not installed at $bindir")
            continue
        fi
        version=$("$bindir/postgres" --version | awk '{print $3}')
        local args=() marks=()
        if [ -f "$bindir/../lib/pg_cron.so" ] || [ -f "$bindir/../lib/postgresql/pg_cron.so" ]; then
            cron="with pg_cron"
        else
            cron="no pg_cron"
            marks+=("not pg_cron")
        fi
        # The Dagster tests exercise the integration, not the server: once, on the default major.
        [ "$major" = "$PG_MAJOR" ] || marks+=("not dagster")
        if [ ${#marks[@]} -gt 0 ]; then
            local expr="${marks[0]}" mark
            for mark in "${marks[@]:1}"; do expr="$expr and $mark"; done
            args=(-m "$expr")
            cron="$cron: -m '$expr'"
        fi
        echo
        echo "=============================================================================="
        echo "==> PostgreSQL ${version%%.*} ($version, $bindir, $cron)"
        echo "=============================================================================="
        start=$(date +%s)
        BIOLOUPE_PG_BIN="$bindir" BIOLOUPE_PG_BINDIR="" PYTHONUNBUFFERED=1 \
            .venv/bin/pytest "${args[@]}" "$@" > >(tee "$logdir/$major.log") 2>&1 &
        pid=$!
        rc=0
        wait "$pid" || rc=$?
        pid=""
        wait  # for tee
        seconds=$(( $(date +%s) - start ))
        # pytest's closing line, "=== 136 passed, 11 deselected in 174.2s (0:02:54) ===" (no = with -q)
        line=$(grep -E '^=* ?(no tests ran|[0-9]+ [a-z]+).* in [0-9.]+s' "$logdir/$major.log" \
               | tail -n 1 | sed -E 's/^=+ //; s/ =+$//' || true)
        total_passed=$(( total_passed + $(count passed "$line") ))
        total_failed=$(( total_failed + $(count failed "$line") + $(count error "$line") ))
        total_skipped=$(( total_skipped + $(count skipped "$line") ))
        if [ "$rc" -eq 0 ]; then
            ran=$((ran + 1))
            summary+=("PostgreSQL $major ($version): OK, ${line:-no summary} [${seconds}s]")
        elif [ "$rc" -eq 5 ]; then  # no test selected on this major (e.g. only pg_cron tests asked)
            summary+=("PostgreSQL $major ($version): no test selected, ${line:-} [${seconds}s]")
        else
            ran=$((ran + 1))
            failed_majors+=("$major")
            summary+=("PostgreSQL $major ($version): FAILED (pytest exit $rc), ${line:-no summary} [${seconds}s]")
        fi
    done
    trap - TERM INT
    rm -rf "$logdir"
    echo
    echo "==> Summary per PostgreSQL major"
    printf '    %s\n' "${summary[@]}"
    echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
    if [ "$(echo $majors | wc -w)" -eq 1 ] && [ -n "${rc:-}" ]; then
        return "$rc"
    fi
    if [ ${#failed_majors[@]} -gt 0 ]; then
        echo "FAILED on PostgreSQL ${failed_majors[*]}" >&2
        return 1
    fi
    if [ "$ran" -eq 0 ]; then
        echo "no test ran on any major" >&2
        return 5
    fi
    return 0
}

command="${1:-}"
shift || true
case "$command" in
    setup) setup ;;
    demo)  setup; exec .venv/bin/bioloupe-views demo "$@" ;;
    test)  setup; run_tests "$@" ;;
    *) echo "usage: bash scripts/dev.sh demo|test|setup [args]" >&2; exit 2 ;;
esac
