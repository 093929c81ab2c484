#!/usr/bin/env bash
# The web client in a real browser: run_browser_test.sh SELFFEED SOURCE_DIR ARTIFACT_DIR.
# Trains the toy bundle, then web_client_test.mjs starts `selffeed serve` itself (it also
# restarts it) and drives Debian's Chromium through playwright-core.
set -euo pipefail
selffeed=$1
source_dir=$2
artifacts=$3
here=$(cd "$(dirname "$0")" && pwd)
if [[ ! -d "$here/node_modules/playwright-core" ]] || [[ ! -x /usr/bin/chromium ]]; then
  echo "web client test: playwright-core or /usr/bin/chromium is missing; run scripts/install-deps.sh" >&2
  exit 1
fi
work=$(mktemp -d /tmp/selffeed-browser.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$source_dir/tests/testing/make_toy_bundle.sh" "$selffeed" "$work/toy"
rm -rf "$artifacts"
mkdir -p "$artifacts"
status=0
node "$here/web_client_test.mjs" "$selffeed" "$work/toy/run/bundle" "$source_dir/clients/web" "$work" "$artifacts" || status=$?
cp "$work/serve.log" "$artifacts/" 2>/dev/null || true
exit $status
