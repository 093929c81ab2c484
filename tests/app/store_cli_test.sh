#!/usr/bin/env bash
# `selffeed store import|export|transcripts|stats` end to end on a real store directory.
set -euo pipefail
selffeed=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/in.jsonl" <<'JSONL'
{"context": "__null__", "response": "hi, how are you today?"}
{"context": "__p2__ hi __p1__ i am good", "response": "great to hear", "kind": "HB", "user_id": "alice", "satisfaction": 0.9}
{"context": "__p2__ lol __p1__ what?", "response": "0", "kind": "ST", "user_id": "bob"}
JSONL

"$selffeed" --log-level warn store import --store "$work/db" --in "$work/in.jsonl"
"$selffeed" --log-level warn store export --store "$work/db" --out "$work/out1.jsonl"
"$selffeed" --log-level warn store import --store "$work/db2" --in "$work/out1.jsonl"
"$selffeed" --log-level warn store export --store "$work/db2" --out "$work/out2.jsonl"
cmp "$work/out1.jsonl" "$work/out2.jsonl"
[[ $(wc -l < "$work/out1.jsonl") -eq 3 ]]
grep -q '"kind":"HB"' "$work/out1.jsonl"

# Imported examples belong to no stored conversation: no transcripts (the serve tests fill some).
"$selffeed" --log-level warn store transcripts --store "$work/db" --out "$work/transcripts.jsonl" 2> "$work/err"
[[ ! -s "$work/transcripts.jsonl" ]]
grep -q "exported 0 conversations" "$work/err"

stats=$("$selffeed" --log-level warn store stats --store "$work/db")
echo "$stats"
grep -Eq "examples HB +1" <<<"$stats"
grep -Eq "last seq +3" <<<"$stats"

# Errors are clear and non-zero: a bad line, a missing store.
echo '{"context": 1}' > "$work/bad.jsonl"
if "$selffeed" --log-level warn store import --store "$work/db" --in "$work/bad.jsonl" 2> "$work/err"; then
  echo "import of a bad file succeeded"; exit 1
fi
grep -q "line 1" "$work/err"
if "$selffeed" --log-level warn store stats --store "$work/nope" 2> "$work/err"; then
  echo "stats of a missing store succeeded"; exit 1
fi
grep -q "does not exist" "$work/err"
echo "store_cli_test: ok"
