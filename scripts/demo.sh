#!/usr/bin/env bash
# The README's first command: install dependencies, build, prepare a model, run the
# server with the web client.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
echo
echo "selffeed is built: $root/build/app/selffeed --help"
echo "The chat server (selffeed serve) and the demo model are not implemented yet;"
echo "see the open issues. Nothing else to start." >&2
exit 1
