#!/usr/bin/env bash
# Regenerates proto/python/mch_events from proto/mch/events/v1/*.proto (tests check it is current).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-proto/python}
mkdir -p "$out"
PATH="$PWD/.venv/bin:$PATH" .venv/bin/python -m grpc_tools.protoc -Iproto --python_out="$out" --mypy_out="$out" proto/mch/events/v1/*.proto
# make the generated tree importable as the package mch (namespace dirs need __init__ for setuptools)
for d in "$out/mch" "$out/mch/events" "$out/mch/events/v1"; do touch "$d/__init__.py"; done
