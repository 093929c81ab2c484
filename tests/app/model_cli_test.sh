#!/usr/bin/env bash
# `selffeed train` then `selffeed eval` end to end on a tiny ParlAI file written here.
set -euo pipefail
selffeed=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

objects=(car house bike boat kite lamp door shoe)
colours=(red blue green yellow black white pink grey)
{
  for i in "${!objects[@]}"; do
    echo "1 your persona: i like ${colours[$i]} things."
    echo "2 hello ! what colour is your ${objects[$i]} ?	my ${objects[$i]} is ${colours[$i]} ."
    echo "3 nice . where is it ?	it is in the garden ."
  done
} > "$work/train.txt"
{
  n=1
  for i in "${!objects[@]}"; do
    cands="my ${objects[$i]} is ${colours[$i]} ."
    for j in 1 2 3; do k=$(( (i + j) % 8 )); cands="$cands|my ${objects[$k]} is ${colours[$k]} ."; done
    echo "1 hello ! what colour is your ${objects[$i]} ?	my ${objects[$i]} is ${colours[$i]} .		$cands"
  done
} > "$work/valid.txt"

"$selffeed" --log-level warn train --out "$work/run" --personachat "$work/train.txt" --holdout 0.25 \
  --steps 30 --validate-every 10 --batch 8 --d-model 32 --heads 2 --layers 1 --ffn 16 --vocab 100 \
  --version cli-test --seed 4 > "$work/train.json" 2> "$work/train.log"
grep -q '"best_valid_hits@1"' "$work/train.json"
grep -q "ex/s" "$work/train.log"
[[ -f "$work/run/bundle/bundle.json" && -f "$work/run/bundle/candidates.pt" ]]
grep -Eq '^  "steps": [1-9]' "$work/run/bundle/bundle.json"  # the steps behind its weights, not its optimizer's (none)

"$selffeed" --log-level warn eval --bundle "$work/run/bundle" --file "$work/valid.txt" --json "$work/eval.json" \
  > "$work/eval.txt"
cat "$work/eval.txt"
grep -q "| cli-test" "$work/eval.txt"
grep -q "| TF-IDF baseline" "$work/eval.txt"
grep -q '"candidates": 4' "$work/eval.json"
grep -q '"official_candidates": true' "$work/eval.json"
grep -q "repeats (the first" "$work/eval.txt"
grep -q '"top_as_served"' "$work/eval.json"
grep -q "asking back (the" "$work/eval.txt"
grep -q '"asking_back"' "$work/eval.json"
grep -q '"lexical_weight"' "$work/train.json"

# A bundle's lexical weight can be refitted into a new bundle; eval then shows both rows.
"$selffeed" --log-level warn fit-lexical --bundle "$work/run/bundle" --personachat "$work/train.txt" --holdout 0.25 \
  --out "$work/lex" > "$work/lex.json"
grep -q '"held_out_with_lexical"' "$work/lex.json"
grep -A4 '"lexical_weight_fitted"' "$work/lex/bundle.json" | grep -q '"seed": 4'  # training's distractors
"$selffeed" --log-level warn eval --bundle "$work/lex" --file "$work/valid.txt" > "$work/eval-lex.txt"
grep -q "| cli-test ($work/lex), lexical weight" "$work/eval-lex.txt"
# An operator's persona weight instead of the fitted one, in the new bundle's config.
"$selffeed" --log-level warn fit-lexical --bundle "$work/run/bundle" --personachat "$work/train.txt" --holdout 0.25 \
  --persona-weight 7 --out "$work/lex-persona" > "$work/lex-persona.json"
grep -q '"persona_weight": 7.0' "$work/lex-persona/bundle.json"

# The satisfaction estimator goes into a new bundle beside the dialogue model.
{
  echo "["
  for i in $(seq 0 39); do
    [[ $i -gt 0 ]] && echo ","
    echo "{\"dialog\": ["
    echo " {\"sender_class\": \"Human\", \"text\": \"hi\", \"evaluation_score\": null},"
    echo " {\"sender_class\": \"Bot\", \"text\": \"my car is red .\", \"evaluation_score\": 1},"
    echo " {\"sender_class\": \"Human\", \"text\": \"haha cool , mine too\", \"evaluation_score\": null},"
    echo " {\"sender_class\": \"Bot\", \"text\": \"the moon is a kite .\", \"evaluation_score\": 0},"
    echo " {\"sender_class\": \"Human\", \"text\": \"what ? that makes no sense\", \"evaluation_score\": null}"
    echo "]}"
  done
  echo "]"
} > "$work/ratings.json"
"$selffeed" --log-level warn train-satisfaction --labelled "$work/ratings.json" --bundle "$work/run/bundle" \
  --out "$work/with-sat" --epochs 3 > "$work/sat.json"
grep -q '"test"' "$work/sat.json"
[[ -f "$work/with-sat/satisfaction.json" && -f "$work/with-sat/satisfaction.pt" && -f "$work/with-sat/dialogue.pt" ]]
# An ask budget: the threshold flags at most a fifth of valid, where best F1 flags more.
valid_ask_rate() { grep -o '"valid_ask_rate": [0-9.e-]*' "$1" | awk '{ print $2 }'; }
"$selffeed" --log-level warn train-satisfaction --labelled "$work/ratings.json" --bundle "$work/run/bundle" \
  --out "$work/asks-less" --epochs 3 --max-ask-rate 0.2 > "$work/sat-budget.json"
awk -v free="$(valid_ask_rate "$work/sat.json")" -v capped="$(valid_ask_rate "$work/sat-budget.json")" \
  'BEGIN { exit !(free > 0.2 && capped <= 0.2) }'
# The satisfaction report: the fixed split, then every fold the test split once.
"$selffeed" --log-level warn eval-satisfaction --labelled "$work/ratings.json" --pool "$work/ratings.json" \
  --bundle "$work/run/bundle" --seeds 1 --epochs 1 --weak-sample 20 --rotations 2 --json "$work/sat-eval.json" \
  > "$work/sat-eval.txt" 2> /dev/null
grep -q "| naive Bayes, bag of words (ST train) |.*|$" "$work/sat-eval.txt"
# "always unsatisfied" asks for feedback on every test reply.
grep -qE '^\| always unsatisfied \(trivial\) \| [0-9.]+ \| 1\.000 \| [0-9.]+ \| 0\.500 \| [0-9.]+ \| 1\.000 \| 0\.500 \| 0\.500 \|$' \
  "$work/sat-eval.txt"
grep -q "^| method | r0 | r1 | mean AUC | mean F1 |$" "$work/sat-eval.txt"
# One cross-validated row per method (6 baselines, 3 estimator recipes), one AUC per rotation.
[[ $(grep -cE '^\| [^|]+ \| [0-9.]+ \| [0-9.]+ \| \*\*[0-9.]+\*\* \| [0-9.]+ \|$' "$work/sat-eval.txt") -eq 9 ]]
grep -q "^| always unsatisfied (trivial) | 0.500 | 0.500 | \*\*0.500\*\* |" "$work/sat-eval.txt"
grep -q '"rotations"' "$work/sat-eval.json"
# Gains over naive Bayes with bootstrap intervals: one row per other method, low <= high.
gain_rows=$(grep -E '^\| [^|]+ \| [+-][0-9.]+ \| \[[+-][0-9.]+, [+-][0-9.]+\] \| [0-9]+% \| [+-][0-9.]+ \| \[[+-][0-9.]+, [+-][0-9.]+\] \| [0-9]+% \|$' \
  "$work/sat-eval.txt")
[[ $(echo "$gain_rows" | wc -l) -eq 8 ]]
echo "$gain_rows" | awk -F'[][,]' '{ if ($2 + 0 > $3 + 0 || $5 + 0 > $6 + 0) exit 1 }'
grep -q '"gains_over_naive_bayes"' "$work/sat-eval.json"
[[ $(grep -c '"valid_auc' "$work/sat-eval.json") -eq 9 ]]
# Asking less, on the fixed split and cross-validated: every method at three ask budgets;
# "always unsatisfied" can only flag nothing.
[[ $(grep -c '^| method | ≤10%: precision | recall | asks | ≤20%: precision | recall | asks | ≤30%: precision | recall | asks |$' \
  "$work/sat-eval.txt") -eq 2 ]]
[[ $(grep -c '^| always unsatisfied (trivial) | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 |$' \
  "$work/sat-eval.txt") -eq 2 ]]
grep -q '"rotations_asking_less"' "$work/sat-eval.json"
[[ $(grep -c '"max_ask_rate_valid"' "$work/sat-eval.json") -eq 54 ]]
# Drift alerts on replies as they came: happy ones, then "hm". The pool keeps the train
# split's dialogues, about 60%: blocks 1 and 2 are happy, 4 is "hm".
{
  echo "["
  for i in $(seq 0 799); do
    [[ $i -gt 0 ]] && echo ","
    reply="haha cool , mine too"
    [[ $i -ge 400 ]] && reply="hm"
    echo "{\"dialog\": [{\"sender_class\": \"Human\", \"text\": \"hi\"},"
    echo " {\"sender_class\": \"Bot\", \"text\": \"my car is red .\"},"
    echo " {\"sender_class\": \"Human\", \"text\": \"$reply\"}]}"
  done
  echo "]"
} > "$work/pool.json"
# An operator's own labeling function beside the built-ins.
printf '# replies that say nothing\nsays_hm unsatisfied reply ^hm$\n' > "$work/functions.txt"
"$selffeed" --log-level error lf-drift --labelled "$work/ratings.json" --pool "$work/pool.json" --block 100 \
  --repeats 2 --labeling-functions "$work/functions.txt" > "$work/drift.txt"
grep -qE "^1. The [0-9]+ unrated replies in file order, blocks of 100" "$work/drift.txt"
grep -q "^| 2 | pool.json | - |$" "$work/drift.txt"
grep -qE "^\| 4 \| pool.json \| .*labeling_function_coverage minimal_reply.*labeling_function_coverage says_hm" \
  "$work/drift.txt"
grep -qE "^The same replies shuffled \(2 shuffles\): [0-9]+ of [0-9]+ blocks" "$work/drift.txt"
grep -q "^2. Unhappier users" "$work/drift.txt"
"$selffeed" --log-level error lf-report --labelled "$work/ratings.json" --pool "$work/pool.json" \
  --labeling-functions "$work/functions.txt" > "$work/lf.txt"
grep -qE "^\| says_hm \| unsat \| 0\.[0-9]+ \|" "$work/lf.txt"
grep -qE "^The label model's ROC-AUC on the [0-9]+ rated VALID replies: [0-9.]+\.$" "$work/lf.txt"
grep -qE "^Contested replies \(one function votes satisfied, another unsatisfied\): [01]\.[0-9]{3} of the pool\.$" \
  "$work/lf.txt"
grep -qE "^\| contested \| [0-9]+ \| [01]\.[0-9]{3} \| ([01]\.[0-9]{4}|-) \|$" "$work/lf.txt"
# The weak labels relearned with it.
"$selffeed" --log-level warn train-satisfaction --labelled "$work/ratings.json" --pool "$work/pool.json" \
  --bundle "$work/run/bundle" --out "$work/own-functions" --recipe weak --weak-sample 50 --epochs 1 \
  --labeling-functions "$work/functions.txt" > /dev/null
[[ -f "$work/own-functions/satisfaction.pt" ]]
# A broken function file: a clear error, from the reports and from the server.
printf 'says_hm unsatisfied reply (hm\n' > "$work/bad-functions.txt"
if "$selffeed" lf-report --labelled "$work/ratings.json" --labeling-functions "$work/bad-functions.txt" \
     2> "$work/err"; then
  echo "lf-report took a broken labeling function" >&2; exit 1
fi
grep -q "bad-functions.txt:1: labeling function says_hm: bad pattern" "$work/err"
if "$selffeed" serve --bundle "$work/run/bundle" --store "$work/serve-store" --port 0 \
     --labeling-functions "$work/bad-functions.txt" 2> "$work/err"; then
  echo "serve took a broken labeling function" >&2; exit 1
fi
grep -q "bad-functions.txt:1: labeling function says_hm: bad pattern" "$work/err"
if "$selffeed" eval-satisfaction --labelled "$work/ratings.json" --rotations 6 2> "$work/err"; then
  echo "six rotations of five folds were accepted" >&2; exit 1
fi
if "$selffeed" --log-level warn train-satisfaction --labelled "$work/ratings.json" --bundle "$work/run/bundle" \
     --out "$work/with-sat" 2> "$work/err"; then
  echo "overwrote an existing bundle"; exit 1
fi
grep -q "immutable" "$work/err"

# A missing bundle is a clear error, not a crash.
if "$selffeed" --log-level warn eval --bundle "$work/nope" --file "$work/valid.txt" 2> "$work/err"; then
  echo "eval of a missing bundle succeeded"; exit 1
fi
grep -q "does not exist" "$work/err"
echo "model_cli_test: ok"
