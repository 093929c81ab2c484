#!/usr/bin/env bash
# Trains a toy dialogue bundle (colour/place questions, a tiny model, 40 steps, seconds on
# 2 cores) for the tests that need a real server: make_toy_bundle.sh SELFFEED WORK_DIR
# [more `selffeed train` flags]. The bundle ends up in WORK_DIR/run/bundle, version "toy-v1".
set -euo pipefail
selffeed=$1
work=$2
mkdir -p "$work"
objects=(car house bike boat kite lamp door shoe)
colours=(red blue green yellow black white pink grey)
for i in "${!objects[@]}"; do
  next=${objects[$(( (i + 1) % 8 ))]}
  printf '1 hello ! what colour is your %s ?\tmy %s is %s .\n' "${objects[$i]}" "${objects[$i]}" "${colours[$i]}"
  printf '2 nice . where is it ?\tit is in the garden , near the %s .\n' "$next"
done > "$work/train.txt"
"$selffeed" --log-level warn train --out "$work/run" --personachat "$work/train.txt" --holdout 0.25 \
  --steps 40 --validate-every 20 --batch 8 --d-model 32 --heads 2 --layers 1 --ffn 16 --vocab 100 \
  --version toy-v1 "${@:3}" > "$work/train.json" 2> "$work/train.log"
[[ -f "$work/run/bundle/bundle.json" ]]
