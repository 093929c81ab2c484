#!/usr/bin/env bash
# The README's first command: install dependencies, build, prepare a model if none
# exists, run the server with the web client.
set -euo pipefail
source "$(dirname "$0")/common.sh"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
if [[ ! -f "$root/models/demo/bundle.json" ]]; then
  "$root/scripts/train_demo_model.sh" "$root/models/demo"
fi
echo
echo "selffeed is built and the demo model is in $root/models/demo:"
"$root/scripts/eval_personachat.sh" "$root/models/demo" || true
echo
echo "The chat server (selffeed serve) and the web client are not implemented yet (see the" >&2
echo "open issues), so there is nothing to start." >&2
exit 1
