#!/usr/bin/env bash
# The figures of a bundled model's card (issue 12), from the folders scripts/train_bundled.sh leaves in WORK:
# the fusion weight chosen on held-out training images, validation Dice in each mode (with and without the clean-up,
# the text mask also without its position prior), the paired t-test against the supervised-only baseline, and for
# QaTa the position words (one-sided images, true vs swapped sentence; zones) and stage-1 retrieval.
#
#   bash scripts/evaluate_bundled.sh qata|monuseg [WORK]     # WORK defaults to runs/<dataset>; writes WORK/figures/
#
# SEG=FOLDER scores another stage 2 against the same baselines (e.g. a row of scripts/ablation_losses.sh), writing
# its figures next to it (FOLDER/../figures).
source "$(dirname "$0")/_bundled.sh"
SEG=${SEG:-$WORK/seg}
OUT="$(dirname "$SEG")/figures"
mkdir -p "$OUT"

# The fusion weight, chosen on held-out unlabeled training images (training never read their masks); for QaTa only
# patients with no labeled image ($HELD). LAMBDA (optional) stores that weight instead of the best one.
$PY scripts/fusion_lambda.py --model "$SEG" --data $TRAIN --labeled-fraction 0.25 --limit 600 $HELD --write \
    ${LAMBDA:+--choose "$LAMBDA"} | tee "$OUT/fusion.txt"
for m in fused segmenter textmask; do
    $AMVLM evaluate --model "$SEG" --data "$VAL" --mode $m --per-image "$OUT/seg-$m.csv" --json "$OUT/seg-$m.json"
done
$AMVLM evaluate --model "$SEG" --data "$VAL" --no-postprocess --json "$OUT/seg-fused-raw.json"
$AMVLM evaluate --model "$SEG" --data "$VAL" --mode textmask --no-position-prior --json "$OUT/seg-textmask-noprior.json"
$AMVLM evaluate --model "$WORK/sup" --data "$VAL" --mode segmenter --per-image "$OUT/sup.csv" --json "$OUT/sup.json"
$AMVLM evaluate --model "$WORK/sup0" --data "$VAL" --mode segmenter --per-image "$OUT/sup0.csv" --json "$OUT/sup0.json"
$PY scripts/compare_runs.py "$OUT/seg-fused.csv" "$OUT/sup.csv" | tee "$OUT/compare.txt"
$PY scripts/compare_runs.py "$OUT/seg-fused.csv" "$OUT/sup0.csv" | tee -a "$OUT/compare.txt"
if [ "$NAME" = qata ]; then
    $AMVLM evaluate --model "$SEG" --data "$VAL" --one-side-only --json "$OUT/side-true.json"
    $AMVLM evaluate --model "$SEG" --data "$VAL" --one-side-only --swap-sides --json "$OUT/side-swapped.json"
    $AMVLM evaluate --model "$SEG" --data "$VAL" --zones --json "$OUT/zones.json" | tee "$OUT/zones.md"
    $AMVLM retrieval --model "$SEG" --data "$VAL" --reference "$SHARED/qata_cov19/train" --json "$OUT/retrieval.json" \
        | tee "$OUT/retrieval.txt"
fi
