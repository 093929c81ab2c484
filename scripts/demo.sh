#!/usr/bin/env bash
# The README's first command: install dependencies, build, train the demo models if there
# are none, and run the chat server with the web client on http://127.0.0.1:8080/.
# A second run reuses the build, the models and the store, and starts in seconds.
#   SELFFEED_HOST / SELFFEED_PORT   where to listen (default 127.0.0.1:8080)
#   SELFFEED_SATISFACTION           regex (default), model or auto; see README
#   SELFFEED_PERSONA                the bot's persona, one fact per line (default:
#                                   scripts/demo_persona.txt; empty: none)
#   SELFFEED_ADMIN_TOKEN            turns the admin API on, and the operator's page
#                                   http://127.0.0.1:8080/admin.html (default: off)
set -euo pipefail
source "$(dirname "$0")/common.sh"
# The browser is only needed by the tests.
SELFFEED_WITH_BROWSER="${SELFFEED_WITH_BROWSER:-0}" "$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
if [[ ! -f "$root/models/demo/bundle.json" ]]; then
  "$root/scripts/train_demo_model.sh" "$root/models/demo"
fi
host="${SELFFEED_HOST:-127.0.0.1}"
port="${SELFFEED_PORT:-8080}"
echo
echo "selffeed: open http://$host:$port/ in a browser to chat (Ctrl-C stops the server)."
echo "          Conversations and harvested examples are kept in $root/selffeed-data."
admin_token="${SELFFEED_ADMIN_TOKEN:-}"
if [[ -n "$admin_token" ]]; then
  echo "          The operator's page: http://$host:$port/admin.html (the token in SELFFEED_ADMIN_TOKEN)."
fi
persona="${SELFFEED_PERSONA-$root/scripts/demo_persona.txt}"
status=0
"$selffeed" serve --bundle "$root/models/demo" --store "$root/selffeed-data" --host "$host" --port "$port" \
  --web-root "$root/clients/web" --satisfaction "${SELFFEED_SATISFACTION:-regex}" ${persona:+--persona "$persona"} \
  ${admin_token:+--admin-token "$admin_token"} ||
  status=$?
if ((status != 0 && status != 130)); then
  echo "selffeed: the server stopped with status $status. If port $port is taken, try SELFFEED_PORT=8081 $0" >&2
fi
exit $status
