#!/usr/bin/env bash
# `selffeed store import|export|transcripts|stats|index-conversations` end to end on a real store directory.
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

# Every export prints the SHA-256 of what it wrote.
"$selffeed" --log-level warn store export --store "$work/db" --out "$work/out3.jsonl" 2> "$work/err"
grep -q "exported 3 examples, sha256 $(sha256sum < "$work/out3.jsonl" | cut -d' ' -f1)" "$work/err"

# A model's snapshot: the examples its lineage lists, checked against the hash it pinned.
pin() {  # pin NAME SHA256 SEQ...: a bundle directory whose lineage pins those examples
  local name=$1 sha=$2; shift 2
  mkdir -p "$work/$name"
  local seqs; seqs=$(IFS=,; echo "$*")
  echo "{\"lineage\": {\"harvested\": {\"example_seqs\": [$seqs], \"snapshot_sha256\": \"$sha\"}}}" > "$work/$name/bundle.json"
}
sed -n '1p;3p' "$work/out1.jsonl" > "$work/expected.jsonl"
pin good "$(sha256sum < "$work/expected.jsonl" | cut -d' ' -f1)" 1 3
"$selffeed" --log-level warn store export --store "$work/db" --snapshot-of "$work/good" --out "$work/snap.jsonl" 2> "$work/err"
cmp "$work/snap.jsonl" "$work/expected.jsonl"
grep -q "the snapshot it pinned, to the byte" "$work/err"
pin tampered "$(sha256sum < "$work/out1.jsonl" | cut -d' ' -f1)" 1 3
if "$selffeed" --log-level warn store export --store "$work/db" --snapshot-of "$work/tampered" --out "$work/snap.jsonl" 2> "$work/err"; then
  echo "a snapshot that differs from its pin passed"; exit 1
fi
grep -q "differ from the snapshot it pinned" "$work/err"
pin gone "$(sha256sum < "$work/expected.jsonl" | cut -d' ' -f1)" 1 3 99
"$selffeed" --log-level warn store export --store "$work/db" --snapshot-of "$work/gone" --out "$work/snap.jsonl" 2> "$work/err"
grep -q "1 of the 3 examples it was trained on are no longer in the store" "$work/err"
if "$selffeed" --log-level warn store export --store "$work/db" --snapshot-of nope --out "$work/snap.jsonl" 2> "$work/err"; then
  echo "a snapshot of nothing passed"; exit 1
fi
grep -q "neither a bundle directory nor a version in the registry" "$work/err"

# Exports that leave the machine: redacted, pseudonymised, the same pseudonyms for the same key.
cat > "$work/personal.jsonl" <<'JSONL'
{"context": "__p2__ how can i reach you ? __p1__ mail me", "response": "jane@example.com or 555-123-4567", "kind": "FB", "user_id": "jane", "conversation_id": "c1"}
JSONL
"$selffeed" --log-level warn store import --store "$work/db" --in "$work/personal.jsonl"
echo "a secret of more than sixteen bytes" > "$work/key"
echo "another secret of sixteen bytes or more" > "$work/key2"
anon() {  # anon KEY OUT
  "$selffeed" --log-level warn store export --store "$work/db" --kind FB --redact --pseudonym-key-file "$1" --out "$2"
}
anon "$work/key" "$work/anon1.jsonl"
anon "$work/key" "$work/anon2.jsonl"
anon "$work/key2" "$work/anon3.jsonl"
cmp "$work/anon1.jsonl" "$work/anon2.jsonl"
if cmp -s "$work/anon1.jsonl" "$work/anon3.jsonl"; then echo "another key gave the same pseudonyms"; exit 1; fi
grep -q '"response":"\[email address\] or \[phone number\]"' "$work/anon1.jsonl"
grep -Eq '"conversation_id":"anon-[0-9a-f]{20}"' "$work/anon1.jsonl"
grep -Eq '"user_id":"anon-[0-9a-f]{20}"' "$work/anon1.jsonl"
if grep -q 'jane\|555\|"c1"' "$work/anon1.jsonl"; then echo "personal data left in the export"; exit 1; fi
echo short > "$work/short.key"
if anon "$work/short.key" "$work/anon4.jsonl" 2> "$work/err"; then echo "a short key was taken"; exit 1; fi
grep -q "needs at least 16" "$work/err"

# Imported examples belong to no stored conversation: no transcripts (the serve tests fill some).
"$selffeed" --log-level warn store transcripts --store "$work/db" --out "$work/transcripts.jsonl" 2> "$work/err"
[[ ! -s "$work/transcripts.jsonl" ]]
grep -q "exported 0 conversations" "$work/err"

stats=$("$selffeed" --log-level warn store stats --store "$work/db")
echo "$stats"
grep -Eq "examples HB +1" <<<"$stats"
grep -Eq "last seq +4" <<<"$stats"
# A store this build wrote indexes its examples by conversation as it goes.
[[ "$("$selffeed" --log-level warn store index-conversations --store "$work/db")" == "indexed 0 examples by conversation" ]]

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
