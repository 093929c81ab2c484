#!/usr/bin/env bash
# The satisfaction table of EVALUATION.md: baselines, label model and estimators on the
# ConvAI2 ratings (test split), 3 seeds per learned estimator, then the same with every
# fold the test split once (cross-validation, 5 rotations).
#   scripts/eval_satisfaction.sh [DIALOGUE_BUNDLE [FLAGS...]]
# ROTATIONS=1 gives the fixed split alone (a fifth of the time).
set -euo pipefail
source "$(dirname "$0")/common.sh"
bundle="${1:-$root/models/demo}"
shift || true
c="$data/convai2_wild_eval"
require_data convai2_wild_eval/data_volunteers.json
pool=()
for f in "$c"/export_2018-07-0*_train.json; do pool+=(--pool "$f"); done
"$selffeed" --log-level warn eval-satisfaction --labelled "$c/data_volunteers.json" \
  --labelled "$c/data_intermediate.json" "${pool[@]}" --bundle "$bundle" --seeds 3 \
  --rotations "${ROTATIONS:-5}" --json "$build/eval_satisfaction.json" "$@"
