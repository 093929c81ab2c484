#!/usr/bin/env bash
# The README's second command: install dependencies, build, and run the test suite.
#   scripts/test.sh                 every test label
#   SELFFEED_TEST_LABELS=unit scripts/test.sh   only the fast unit label
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build="${SELFFEED_BUILD_DIR:-$root/build}"
labels=()
if [[ -n "${SELFFEED_TEST_LABELS:-}" ]]; then labels=(-L "$SELFFEED_TEST_LABELS"); fi
cd "$build"
ctest --output-on-failure --timeout 900 "${labels[@]}"
