#!/usr/bin/env bash
# hits@1/20, hits@5/20 and MRR of a bundle on PersonaChat valid, beside TF-IDF.
#   scripts/eval_personachat.sh [BUNDLE] [FILE]
# Defaults: models/demo and personachat/valid_self_original_synthcands20.txt (synthetic
# distractors, NOT the official candidates; a file with official ones works unchanged).
set -euo pipefail
source "$(dirname "$0")/common.sh"
bundle="${1:-$root/models/demo}"
file="${2:-$data/personachat/valid_self_original_synthcands20.txt}"
[[ -f "$file" ]] || require_data personachat/valid_self_original_synthcands20.txt
json="${SELFFEED_EVAL_JSON:-$build/eval_personachat.json}"
"$selffeed" --log-level warn eval --bundle "$bundle" --file "$file" --json "$json"
echo "JSON report: $json"
