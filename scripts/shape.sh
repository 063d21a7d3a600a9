#!/usr/bin/env bash
# The core's shape, checked in CI: no import circle among venomqa's modules, no source
# file of venomqa over 900 lines, and at most 3 integration-test binaries in the workspace
# (tests/it, tests/subscriber.rs, examples/tests/it).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/modcycles.py venomqa/src
long=$(find venomqa/src -name '*.rs' -exec wc -l {} + | awk '$2 != "total" && $1 > 900 { print "  " $2 " (" $1 " lines)" }')
if [ -n "$long" ]; then
    echo "shape: files of venomqa/src over 900 lines (split them by concept):" >&2
    echo "$long" >&2
    exit 1
fi
binaries=$(cargo metadata --format-version 1 --no-deps | python3 -c '
import json, sys
meta = json.load(sys.stdin)
print(sum(1 for p in meta["packages"] for t in p["targets"] if "test" in t["kind"]))')
if [ "$binaries" -gt 3 ]; then
    echo "shape: $binaries integration-test binaries in the workspace (at most 3: add a module to tests/it instead)" >&2
    exit 1
fi
echo "shape: no import circle, no file over 900 lines, $binaries integration-test binaries"
