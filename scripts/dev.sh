#!/usr/bin/env bash
# The one entry point on a fresh machine: installs what is missing, then runs the job.
#   bash scripts/dev.sh demo [--scale N] [--keep]   # throwaway PostgreSQL, data, migrate, refresh
#   bash scripts/dev.sh test [pytest args]          # the test suite on throwaway servers
#   bash scripts/dev.sh setup                       # only the setup
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=15

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
    echo "==> Installing bioloupe-views and its test dependencies into .venv"
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
}

command="${1:-}"
shift || true
case "$command" in
    setup) setup ;;
    demo)  setup; exec .venv/bin/bioloupe-views demo "$@" ;;
    test)  setup; exec .venv/bin/pytest "$@" ;;
    *) echo "usage: bash scripts/dev.sh demo|test|setup [args]" >&2; exit 2 ;;
esac
