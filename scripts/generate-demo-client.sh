#!/usr/bin/env bash
# Regenerate the typed client of the demo API (synthetic_exporter/demo/client) from its OpenAPI
# document: generated code lives beside the demo it comes from, not among the hand-written checks.
#
#   scripts/generate-demo-client.sh [OUTPUT_DIR]
#
# The document is written by the demo module itself (no server needed), then fed to
# openapi-python-client with --path, and kept beside the client as openapi.json. The output is
# formatted with ruff in isolated mode, so the result is the same wherever it is generated
# (tests/demo/test_client.py relies on that to check that the committed client is up to date).
# Never edit synthetic_exporter/demo/client by hand. It needs attrs: the `demo` extra.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-$VENV/bin/python}"
OUTPUT="${1:-$ROOT/synthetic_exporter/demo/client}"
export PATH="$(dirname "$PYTHON"):$PATH" # ruff, for the post hooks

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m synthetic_exporter.demo --openapi "$work/openapi.json"
cat >"$work/config.yaml" <<'YAML'
content_type_overrides: # binary bodies, returned as File objects
  application/pdf: application/octet-stream
post_hooks:
  - "ruff check . --isolated --fix-only --extend-select=I --line-length=100 --quiet --no-cache"
  - "ruff format . --isolated --line-length=100 --quiet --no-cache"
YAML
"$PYTHON" -m openapi_python_client generate \
    --path "$work/openapi.json" \
    --config "$work/config.yaml" \
    --meta none \
    --output-path "$work/client" \
    --fail-on-warning >"$work/log" 2>&1 || { cat "$work/log" >&2; exit 1; }
cp "$work/openapi.json" "$work/client/openapi.json" # what it was generated from
rm -rf "$OUTPUT"
mkdir -p "$(dirname "$OUTPUT")"
mv "$work/client" "$OUTPUT"
echo "generated $OUTPUT"
