#!/usr/bin/env bash
# Copies the project's alerting rules and Grafana dashboards into the chart, which can only read
# files inside its own directory (.Files.Get):
#   alerts/synthetic-exporter.rules.yml -> helm/synthetic-exporter/files/synthetic-exporter.rules.yml
#   grafana/dashboards/*.json           -> helm/synthetic-exporter/files/dashboards/*.json
# Run it after changing either; tests/test_chart.py fails while the copies differ.
# With --check, changes nothing and exits 1 when a copy is missing, stale or extra.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
rules_src="$root/alerts/synthetic-exporter.rules.yml"
dash_src="$root/grafana/dashboards"
files="$root/helm/synthetic-exporter/files"
rules_dst="$files/synthetic-exporter.rules.yml"
dash_dst="$files/dashboards"

[ -f "$rules_src" ] || { echo "sync-files.sh: $rules_src does not exist" >&2; exit 1; }
shopt -s nullglob
sources=("$dash_src"/*.json)
[ ${#sources[@]} -gt 0 ] || { echo "sync-files.sh: no $dash_src/*.json" >&2; exit 1; }

if [ "${1:-}" = "--check" ]; then
  status=0
  cmp -s "$rules_src" "$rules_dst" || { echo "stale: $rules_dst" >&2; status=1; }
  for src in "${sources[@]}"; do
    dst="$dash_dst/$(basename "$src")"
    cmp -s "$src" "$dst" || { echo "stale: $dst" >&2; status=1; }
  done
  for dst in "$dash_dst"/*.json; do
    [ -f "$dash_src/$(basename "$dst")" ] || { echo "extra: $dst" >&2; status=1; }
  done
  exit "$status"
fi

mkdir -p "$dash_dst"
cp "$rules_src" "$rules_dst"
for dst in "$dash_dst"/*.json; do
  [ -f "$dash_src/$(basename "$dst")" ] || rm -f "$dst"
done
cp "${sources[@]}" "$dash_dst/"
echo "sync-files.sh: copied $(basename "$rules_src") and ${#sources[@]} dashboards into $files"
