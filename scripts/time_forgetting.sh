#!/usr/bin/env bash
# How long a deleted user's data lives on in the served model (BENCHMARKS.md, "Time to
# forget"): a server on BUNDLE (default models/demo) with the periodic trainer armed for
# forgetting only, simulated users, a retrained model that learned from them made live,
# then one of them deleted; the time until a model without them is live and the alert has
# cleared, with what the gate said.
#   scripts/time_forgetting.sh [BUNDLE] [SEED]     (SIM_CONVERSATIONS, SIM_RETRAIN_STEPS)
set -euo pipefail
source "$(dirname "$0")/common.sh"
bundle=$(cd "${1:-$root/models/demo}" && pwd)
seed="${2:-1}"
conversations="${SIM_CONVERSATIONS:-100}"
steps="${SIM_RETRAIN_STEPS:-300}"
require_data personachat/train_subset1k_self_original_no_cands.txt
require_data personachat/valid_self_original_synthcands20.txt
require_data synthetic_persona_chat/Synthetic-Persona-Chat_valid.csv
hh="$data/personachat/train_subset1k_self_original_no_cands.txt"
work="$root/runs/forgetting-s$seed"
rm -rf "$work" && mkdir -p "$work"
log() { echo "time_forgetting: $*" >&2; }
now() { date +%s.%N; }

"$selffeed" --log-level warn --log-file "$work/serve.log" serve --bundle "$bundle" --store "$work/store" \
  --port 0 --port-file "$work/port" --satisfaction regex --admin-token sim --rate 1000 --burst 1000 \
  --gate-valid "$data/personachat/valid_self_original_synthcands20.txt" --gate-examples 1000 \
  --retrain-every-examples 1000000000 --retrain-personachat "$hh" --retrain-dir "$work/auto" \
  --retrain-args "--steps $steps --seed $seed" --web-root /nonexistent >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port=$(cat "$work/port")
url="http://127.0.0.1:$port"
admin() { curl -fsS -X "$1" -H "Authorization: Bearer sim" "$url$2" "${@:3}"; }

log "simulating $conversations conversations"
"$selffeed" --log-level warn simulate "ws://127.0.0.1:$port/ws" \
  --dialogues "$data/synthetic_persona_chat/Synthetic-Persona-Chat_valid.csv" \
  --complaints "$data/convai2_wild_eval/data_volunteers.json" "$data/convai2_wild_eval/data_intermediate.json" \
  --conversations "$conversations" --seed "$seed" --user-prefix sim --conversation-prefix "forget-s$seed" \
  --json "$work/simulate.json" >/dev/null
log "retraining on the harvest ($steps steps)"
"$selffeed" --log-level warn retrain --store "$work/store" --out "$work/learned" --personachat "$hh" \
  --steps "$steps" --seed "$seed" --version "learned-s$seed" > "$work/learned.json" 2> "$work/learned.log"
admin POST /admin/models/load -d "{\"bundle\": \"$work/learned/bundle\"}" > "$work/load.json"
if ! python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['promoted'] else 1)" "$work/load.json"; then
  log "the gate refused it; promoting it anyway, so that the live model learned from the users"
  admin POST /admin/models/promote -d "{\"version\": \"learned-s$seed\"}" > "$work/promote.json"
fi

# The user with the most examples in the model's snapshot.
user=$(admin GET /admin/export | python3 -c "
import collections, json, sys
counts = collections.Counter(json.loads(l)['user_id'] for l in sys.stdin if json.loads(l)['kind'] in ('HB', 'FB'))
print(counts.most_common(1)[0][0])")
log "deleting $user"
start=$(now)
admin DELETE "/admin/users/$user" > "$work/delete.json"
deleted=$(now)
live="learned-s$seed"
while [[ "$live" == "learned-s$seed" ]]; do
  sleep 2
  live=$(curl -fsS "$url/models" | python3 -c "import json,sys; print(json.load(sys.stdin)['live_model'])")
  if grep -q "retraining .* failed\|gating .* failed" "$work/serve.log"; then log "the retraining failed"; break; fi
  if curl -fsS "$url/metrics" | grep -q 'selffeed_trainer_runs_total{outcome="refused"} 1'; then
    log "the gate refused the model without $user"; break
  fi
done
end=$(now)
admin GET /admin/alerts > "$work/alerts.json"
curl -fsS "$url/models" > "$work/models.json"
python3 - "$work" "$user" "$start" "$deleted" "$end" "$live" <<'PY' | tee "$work/forgetting.md"
import json, sys
work, user, start, deleted, end, live = sys.argv[1:]
d = json.load(open(f"{work}/delete.json"))
models = json.load(open(f"{work}/models.json"))["models"]
alerts = [a["alert"] for a in json.load(open(f"{work}/alerts.json"))["alerts"]]
# The model the periodic trainer retrained without the user: the newest "auto-" version.
retrained = [m for m in models if m["version"].startswith("auto-")]
gate = retrained[-1]["metrics"].get("gate", {}) if retrained else {}
clean = live if not any(m["version"] == live and m["learned_from_deleted_users"] for m in models) else "none"
print("| deleted | examples | live model then | replies withdrawn | DELETE ms | until the end (s) | live model after | "
      "the retrained model's gate | alerts after |")
print("|---|---:|---|---:|---:|---:|---|---|---|")
print(f"| {user} | {d['examples']} | {', '.join(d['models_trained_on_them'])} | {d['live_replies_withdrawn']} | "
      f"{1000 * (float(deleted) - float(start)):.0f} | {float(end) - float(start):.0f} | {live} (clean: {clean != 'none'}) | "
      f"{gate.get('reason', '-')} | {', '.join(alerts) or 'none'} |")
PY
