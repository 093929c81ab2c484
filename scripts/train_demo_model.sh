#!/usr/bin/env bash
# Trains the demo models into models/demo (about 10 minutes on 2 cores):
#  1. the dialogue model: PersonaChat (both sides), the paper's encoder shape, an 8-minute
#     budget, early stopping on a held-out tail of the training file. The official
#     PersonaChat training set is used when ParlAI's download can be reached; otherwise the
#     1k-dialogue subset in the data folder.
#  2. the satisfaction estimator on the ConvAI2 human ratings (seconds), when present, with
#     a threshold that calls at most a fifth of the rated valid replies unsatisfied: at the
#     F1-optimal one it would ask for feedback on about two turns in three (EVALUATION.md,
#     "Asking less").
#   scripts/train_demo_model.sh [OUT_BUNDLE]
set -euo pipefail
source "$(dirname "$0")/common.sh"
out="${1:-$root/models/demo}"
run="$root/runs/demo"

official_url="http://parl.ai/downloads/personachat/personachat.tgz"
official_dir="$root/runs/downloads/personachat"
train_file="$data/personachat/train_subset1k_self_original_no_cands.txt"
if [[ -f "$official_dir/train_self_original_no_cands.txt" ]]; then
  train_file="$official_dir/train_self_original_no_cands.txt"
elif curl -fsS --max-time 15 -r 0-0 -o /dev/null "$official_url" 2>/dev/null; then
  echo "selffeed: downloading the official PersonaChat from $official_url"
  mkdir -p "$root/runs/downloads"
  curl -fsS --max-time 600 -o "$root/runs/downloads/personachat.tgz" "$official_url"
  tar -xzf "$root/runs/downloads/personachat.tgz" -C "$root/runs/downloads"
  train_file="$official_dir/train_self_original_no_cands.txt"
else
  echo "selffeed: the official PersonaChat download ($official_url) cannot be reached from this machine;"
  echo "          training on the PersonaChat subset in $data/personachat instead."
  require_data personachat/train_subset1k_self_original_no_cands.txt
fi

echo "selffeed: training the demo dialogue model on $train_file (about 10 minutes; resumable)"
"$selffeed" --log-level warn train --out "$run" --personachat "$train_file" \
  --minutes 8 --steps 5000 --batch 64 --validate-every 100 --patience 6 \
  --context-tokens 48 --candidate-tokens 24 --vocab 8000 --seed 1 --version demo >/dev/null

mkdir -p "$(dirname "$out")"
rm -rf "$out"
convai2="$data/convai2_wild_eval"
if [[ -f "$convai2/data_volunteers.json" && -f "$convai2/data_intermediate.json" ]]; then
  echo "selffeed: training the satisfaction estimator on the ConvAI2 human ratings"
  "$selffeed" --log-level warn train-satisfaction --bundle "$run/bundle" --out "$out" --recipe supervised \
    --max-ask-rate 0.2 --labelled "$convai2/data_volunteers.json" "$convai2/data_intermediate.json" > "$run/satisfaction.json"
else
  echo "selffeed: no ConvAI2 ratings in $convai2; the demo model has no satisfaction estimator"
  cp -r "$run/bundle" "$out"
fi
echo "selffeed: demo model written to $out"
