#!/usr/bin/env bash
# `selffeed train-satisfaction --store`: the users' thumbs (ST examples) in a store join the
# labelled ConvAI2 set. Tiny data written here; a toy bundle lends its tokenizer.
set -euo pipefail
selffeed=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$source_dir/tests/testing/make_toy_bundle.sh" "$selffeed" "$work/toy"

# 60 rated dialogues in the ConvAI2 wild-evaluation format: a good and a bad bot turn each.
{
  echo "["
  for i in $(seq 1 60); do
    [[ $i -gt 1 ]] && echo ","
    cat <<JSON
{"dialog": [
 {"id": 0, "sender": "a", "sender_class": "Human", "text": "hi, my car is red $i", "evaluation_score": null},
 {"id": 1, "sender": "b", "sender_class": "Bot", "text": "nice, red cars are fast", "evaluation_score": 1},
 {"id": 2, "sender": "a", "sender_class": "Human", "text": "yes they are!", "evaluation_score": null},
 {"id": 3, "sender": "b", "sender_class": "Bot", "text": "the moon is cheese", "evaluation_score": 0},
 {"id": 4, "sender": "a", "sender_class": "Human", "text": "what? that makes no sense", "evaluation_score": null}]}
JSON
  done
  echo "]"
} > "$work/wild.json"

# Three thumbs in the store, as the server writes them.
{
  echo '{"context": "__p2__ the sky is green __p1__ huh?", "response": "0", "kind": "ST", "user_id": "u1", "source": "thumbs"}'
  echo '{"context": "__p2__ i love dogs too __p1__ great!", "response": "1", "kind": "ST", "user_id": "u1", "source": "thumbs"}'
  echo '{"context": "__p2__ bananas fly __p1__ no", "response": "0", "kind": "ST", "user_id": "u2", "source": "thumbs"}'
  echo '{"context": "__p2__ hi __p1__ hello", "response": "my bike is blue .", "kind": "HB", "user_id": "u2"}'
  for i in 1 2 3; do
    echo "{\"context\": \"__p2__ hi __p1__ nice, red cars are fast\", \"response\": \"yes they are! $i\", \"kind\": \"HB\", \"user_id\": \"u3\"}"
    echo "{\"context\": \"__p2__ hi __p1__ the moon is cheese\", \"response\": \"what? that makes no sense $i\", \"kind\": \"HB\", \"user_id\": \"u4\"}"
  done
} > "$work/harvested.jsonl"
"$selffeed" --log-level warn store import --store "$work/store" --in "$work/harvested.jsonl" >/dev/null

"$selffeed" --log-level warn train-satisfaction --bundle "$work/toy/run/bundle" --out "$work/sat" \
  --labelled "$work/wild.json" --store "$work/store" --epochs 2 > "$work/out.json"
cat "$work/out.json"
grep -q '"thumbs_from_store": 3' "$work/out.json"
[[ -f "$work/sat/satisfaction.pt" && -f "$work/sat/bundle.json" ]]

# retrain's SATISFACTION task: the estimator of --init-bundle is fine-tuned on the rated
# train split, the store's thumbs and 50 weak labels from the label model; the thumbs used
# are in the new bundle's lineage.
# The weak labels also hear the operator's own labeling functions.
printf 'says_meh unsatisfied reply \\bmeh\\b\n' > "$work/functions.txt"
"$selffeed" --log-level warn retrain --store "$work/store" --init-bundle "$work/sat" --out "$work/re" \
  --personachat "$work/toy/train.txt" --holdout 0.25 --steps 10 --validate-every 5 --batch 8 --warmup 2 \
  --satisfaction-labelled "$work/wild.json" --satisfaction-pool "$work/wild.json" --satisfaction-weak-sample 50 \
  --satisfaction-epochs 2 --labeling-functions "$work/functions.txt" > "$work/re.json"
cat "$work/re.json"
tr -d ' \n' < "$work/re/bundle/bundle.json" | grep -q "\"labeling_functions\":\"$work/functions.txt\""
printf 'says_meh maybe reply meh\n' > "$work/bad-functions.txt"
if "$selffeed" --log-level warn retrain --store "$work/store" --init-bundle "$work/sat" --out "$work/re-bad" \
     --personachat "$work/toy/train.txt" --holdout 0.25 --steps 1 --batch 8 --satisfaction-labelled "$work/wild.json" \
     --satisfaction-pool "$work/wild.json" --labeling-functions "$work/bad-functions.txt" 2> "$work/bad.err" > /dev/null; then
  echo "a retraining with a broken labeling function file succeeded"; exit 1
fi
grep -q "bad-functions.txt" "$work/bad.err" || { cat "$work/bad.err"; exit 1; }
grep -q '"thumbs": 3' "$work/re.json"
grep -q '"weak_labels": 50' "$work/re.json"
grep -q "\"fine_tuned_from\": \"$work/sat\"" "$work/re.json"
[[ -f "$work/re/bundle/satisfaction.pt" ]]
tr -d ' \n' < "$work/re/bundle/bundle.json" | grep -q '"ST":3'
# An estimator saved by an older version (one pooled vector, no "pooling" in its config)
# cannot be fine-tuned: retrain says so and trains a new one instead of failing.
cp -r "$work/sat" "$work/old"
sed -i 's/"pooling": *"per_speaker"/"pooling_was": "none"/' "$work/old/satisfaction.json"
if grep -q '"pooling"' "$work/old/satisfaction.json"; then echo "the old format still has pooling" >&2; exit 1; fi
"$selffeed" --log-level warn retrain --store "$work/store" --init-bundle "$work/old" --out "$work/re-old" \
  --personachat "$work/toy/train.txt" --holdout 0.25 --steps 10 --validate-every 5 --batch 8 --warmup 2 \
  --satisfaction-labelled "$work/wild.json" --satisfaction-epochs 2 > "$work/re-old.json" 2> "$work/re-old.log"
cat "$work/re-old.log"
grep -q "older selffeed" "$work/re-old.log"
grep -q '"fine_tuned_from": null' "$work/re-old.json"
grep -q '"pooling": "per_speaker"' "$work/re-old/bundle/satisfaction.json"
# --rejudge-harvest: the estimator of the bundle trained from judges the 7 harvested HB
# again; what it calls unsatisfied is left out, and the lineage says how many and by whom.
"$selffeed" --log-level warn retrain --store "$work/store" --init-bundle "$work/sat" --out "$work/rejudged" \
  --personachat "$work/toy/train.txt" --holdout 0.25 --steps 4 --validate-every 2 --batch 8 --warmup 2 \
  --rejudge-harvest > "$work/rejudged.json"
lineage=$(tr -d ' \n' < "$work/rejudged/bundle/bundle.json")
kept=$(grep -o '"HB":[0-9]*' <<< "$lineage" | head -1 | cut -d: -f2)
left_out=$(grep -o '"HB_rejudged_unsatisfied":[0-9]*' <<< "$lineage" | cut -d: -f2)
echo "re-judged: $kept HB kept, $left_out left out"
[[ $((kept + left_out)) -eq 7 ]]
grep -q "\"rejudged_by\":\"$work/sat\"" <<< "$lineage"
# A bundle without an estimator cannot judge: a clear error, nothing trained.
if "$selffeed" --log-level warn retrain --store "$work/store" --init-bundle "$work/toy/run/bundle" \
     --out "$work/not-judged" --personachat "$work/toy/train.txt" --steps 2 --rejudge-harvest 2> "$work/err"; then
  echo "retrain judged the harvest without an estimator" >&2; exit 1
fi
cat "$work/err"
[[ ! -e "$work/not-judged" ]]
echo "satisfaction_store_test: ok"
