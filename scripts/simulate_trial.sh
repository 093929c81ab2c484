#!/usr/bin/env bash
# An A/B trial with simulated users, through the real server: LIVE is served, TRIAL answers
# half of the users beside it (`selffeed models trial`), the user simulator replays
# Synthetic-Persona-Chat dialogues (complaining and giving a thumbs-down when a reply is
# poor), and `selffeed models report` says how each version did, with 95% intervals.
#   scripts/simulate_trial.sh LIVE_BUNDLE TRIAL_BUNDLE [SEED]
# Environment (defaults in brackets): TRIAL_CONVERSATIONS [300], TRIAL_SHARE [0.5],
# TRIAL_USERS [8] concurrent simulated users, TRIAL_USER_IDS [conversations / 2] distinct
# users (each comes back once on average; a user keeps their version),
# TRIAL_POOR_F1 [0.1] the token F1 against the reference below which a simulated user finds
# a reply poor, TRIAL_THUMBS_RATE [0.2] the share of poor replies that get a thumbs-down,
# TRIAL_THUMBS_UP_RATE [0] the share of the other answers that get a thumbs-up,
# TRIAL_SATISFACTION [regex] the server's estimator (the same judge for both versions;
# model: each version's own), TRIAL_DECIDE_AT [0] conversations a side after which the
# server decides the trial itself (`serve --trial-conversations`; 0: it does not).
set -euo pipefail
source "$(dirname "$0")/common.sh"
[[ $# -ge 2 ]] || { echo "usage: $0 LIVE_BUNDLE TRIAL_BUNDLE [SEED]" >&2; exit 2; }
live=$(realpath "$1")
trial=$(realpath "$2")
seed="${3:-1}"
conversations="${TRIAL_CONVERSATIONS:-300}"
share="${TRIAL_SHARE:-0.5}"
users="${TRIAL_USERS:-8}"
user_ids="${TRIAL_USER_IDS:-$((conversations / 2))}"
satisfaction="${TRIAL_SATISFACTION:-regex}"
poor_f1="${TRIAL_POOR_F1:-0.1}"
thumbs_rate="${TRIAL_THUMBS_RATE:-0.2}"
thumbs_up_rate="${TRIAL_THUMBS_UP_RATE:-0}"
decide_at="${TRIAL_DECIDE_AT:-0}"
require_data synthetic_persona_chat/Synthetic-Persona-Chat_valid.csv
convai2=("$data/convai2_wild_eval/data_volunteers.json" "$data/convai2_wild_eval/data_intermediate.json")
work="$root/runs/trial-s$seed"
rm -rf "$work"
mkdir -p "$work"

"$selffeed" --log-level warn --log-file "$work/serve.log" serve --bundle "$live" --store "$work/store" \
  --port 0 --port-file "$work/port" --satisfaction "$satisfaction" --admin-token trial --rate 1000 --burst 1000 \
  --trial-conversations "$decide_at" --trial-check-seconds 2 --web-root /nonexistent >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do [[ -s "$work/port" ]] && break; sleep 0.1; done
port=$(cat "$work/port")

"$selffeed" --log-level warn models trial "$trial" --share "$share" --server "http://127.0.0.1:$port" \
  --token trial > "$work/trial.json"
"$selffeed" --log-level warn simulate "ws://127.0.0.1:$port/ws" \
  --dialogues "$data/synthetic_persona_chat/Synthetic-Persona-Chat_valid.csv" --complaints "${convai2[@]}" \
  --conversations "$conversations" --users "$users" --user-ids "$user_ids" --poor-f1 "$poor_f1" \
  --thumbs-rate "$thumbs_rate" --thumbs-up-rate "$thumbs_up_rate" --seed "$seed" --json "$work/simulation.json" >/dev/null
[[ "$decide_at" == 0 ]] || sleep 3  # the judge's last look
kill $server && wait $server 2>/dev/null || true
[[ "$decide_at" == 0 ]] || "$selffeed" --log-level warn models list --store "$work/store"
"$selffeed" --log-level warn models report --store "$work/store" --json > "$work/report.json"
"$selffeed" --log-level warn models report --store "$work/store"
