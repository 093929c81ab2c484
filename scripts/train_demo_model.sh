#!/usr/bin/env bash
# Trains the small demo dialogue model into models/demo (at most ~10 minutes on 2 cores):
# PersonaChat (both sides of the train subset), the paper's encoder shape, an 8-minute
# training budget, early stopping on a held-out tail of the training file.
#   scripts/train_demo_model.sh [OUT_BUNDLE]
set -euo pipefail
source "$(dirname "$0")/common.sh"
out="${1:-$root/models/demo}"
require_data personachat/train_subset1k_self_original_no_cands.txt
run="$root/runs/demo"
echo "selffeed: training the demo model (about 10 minutes; progress below, resumable)"
"$selffeed" --log-level warn train --out "$run" \
  --personachat "$data/personachat/train_subset1k_self_original_no_cands.txt" \
  --minutes 8 --steps 5000 --batch 64 --validate-every 100 --patience 6 \
  --context-tokens 48 --candidate-tokens 24 --vocab 8000 --seed 1 --version demo >/dev/null
mkdir -p "$(dirname "$out")"
rm -rf "$out"
cp -r "$run/bundle" "$out"
echo "selffeed: demo model written to $out"
