#!/usr/bin/env bash
# Installs Schemathesis 4.x (PyPI) into a virtualenv for the peer comparison
# (bench/peers/schemathesis_run.py). Idempotent: pip runs only when the executable is
# missing. The venv lives at ${VENOMQA_PEERS:-<repo>/target/peers}/venv. Prints the path
# of the `schemathesis` executable as its last line on stdout; everything else goes to
# stderr.
set -euo pipefail

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=${VENOMQA_PEERS:-$REPO/target/peers}
VENV=$PEERS/venv
EXE=$VENV/bin/schemathesis

if [ ! -x "$EXE" ]; then
    mkdir -p "$PEERS"
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv $VENV"
        if ! python3 -m venv "$VENV" >&2; then
            rm -rf "$VENV"
            log "ERROR: 'python3 -m venv' failed (on Debian's own python3, apt-get install python3-venv)"
            exit 1
        fi
    fi
    log "installing schemathesis>=4.0,<5 into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input 'schemathesis>=4.0,<5' >&2
    [ -x "$EXE" ] || { log "ERROR: pip finished but $EXE is missing"; exit 1; }
fi

log "$("$EXE" --version 2>&1 | head -n 1)"
printf '%s\n' "$EXE"
