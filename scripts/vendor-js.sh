#!/usr/bin/env bash
# Copies the pinned htmx files from node_modules into static/js so they are
# committed and embedded (no CDN, no Node at run time). Versions come from
# package.json / package-lock.json; run `npm ci` first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# source (under node_modules) -> destination (under static/js)
files=(
  "htmx.org/dist/htmx.min.js:static/js/htmx.min.js"
  "htmx-ext-ws/dist/ws.js:static/js/ext/ws.js"
  "htmx-ext-sse/dist/sse.js:static/js/ext/sse.js"
)

for pair in "${files[@]}"; do
  src="node_modules/${pair%%:*}"
  dst="${pair#*:}"
  if [[ ! -s "$src" ]]; then
    echo "vendor-js: missing $src (run 'npm ci' first)" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dst")"
  cp "$src" "$dst"
  echo "vendor-js: $src -> $dst"
done

# Guard against an accidental htmx 4 (its extensions API differs; see DESIGN.md).
ver="$(node -p 'require("./node_modules/htmx.org/package.json").version')"
case "$ver" in
  2.*) ;;
  *) echo "vendor-js: htmx.org $ver is not 2.x; the ws/sse extensions need htmx 2" >&2; exit 1 ;;
esac
