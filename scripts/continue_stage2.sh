#!/usr/bin/env bash
# Another cycle of stage 2 for a trained QaTa segmenter and, at the same compute, for its supervised-only floor:
# each is continued from its own weights for another MIN CPU minutes (one thread each, so both can share a 2-core
# machine), with a fresh cosine from lr 1e-3. It answers whether more stage-2 compute moves the model, and by how
# much more than it moves the floor.
#
#   bash scripts/continue_stage2.sh SEG SUP OUT [MIN]    # e.g. runs/qata-pos/ablation-no-css/seg runs/qata-pos/sup runs/qata-pos/cont 55
#   bash scripts/continue_stage2.sh SEG - OUT [MIN]      # the model only (how the shipped segmenter's cycles 2-4 were made)
#
# Run it again to continue a cycle that was stopped (--resume). Scores the result on valid at the segmenter's stored
# lambda and compares it with the cycle before (and the two floors, and model with floor; paired t-tests,
# scripts/compare_runs.py).
source "$(dirname "$0")/_bundled.sh" qata "${3:?give SEG SUP OUT [MIN]}"
SEG=${1:?}; SUP=${2:?}; MIN=${4:-55}
COMMON="$STAGE2 --threads 1 --time-budget $MIN"
mkdir -p "$WORK"
# The teacher is trained already, so its pseudo-labels count in full from the first step (no ramp-up).
$AMVLM train $COMMON --model "$SEG" --init "$SEG" --out "$WORK/seg" --rampup-epochs 0 > "$WORK/seg.log" 2>&1 &
if [ "$SUP" != - ]; then
  $AMVLM train $COMMON --model "$SEG" --init "$SUP" --out "$WORK/sup" --supervised-only > "$WORK/sup.log" 2>&1 &
fi
wait
$AMVLM evaluate --model "$WORK/seg" --data "$VAL" --mode fused --per-image "$WORK/seg.csv" --json "$WORK/seg.json"
$AMVLM evaluate --model "$SEG" --data "$VAL" --mode fused --per-image "$WORK/seg-before.csv"
if [ "$SUP" != - ]; then
  $AMVLM evaluate --model "$WORK/sup" --data "$VAL" --mode segmenter --per-image "$WORK/sup.csv" --json "$WORK/sup.json"
  $AMVLM evaluate --model "$SUP" --data "$VAL" --mode segmenter --per-image "$WORK/sup-before.csv"
fi
# the new cycle against the one before and, with a floor, the floor's cycles and the model against the floor
{ $PY scripts/compare_runs.py "$WORK/seg-before.csv" "$WORK/seg.csv"
  if [ "$SUP" != - ]; then
    $PY scripts/compare_runs.py "$WORK/sup-before.csv" "$WORK/sup.csv"
    $PY scripts/compare_runs.py "$WORK/sup.csv" "$WORK/seg.csv"
  fi; } | tee "$WORK/compare.txt"
