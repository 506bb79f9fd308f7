#!/usr/bin/env bash
# Regenerate the demo leaderboard (JSON + page), tables and plots from the bundled demo:
#   bash leaderboards/regenerate.sh
# The "MedRegA" outputs replayed here are illustrative (models/recorded/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
regbench run --model medrega-demo --task demo --output "$runs" > /dev/null
regbench leaderboard "$runs" -o leaderboards/demo.json --html
regbench export markdown "$runs" -o leaderboards/demo_tables.md
regbench export latex "$runs" -o leaderboards/demo_tables.tex
