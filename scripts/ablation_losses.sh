#!/usr/bin/env bash
# The stage-1 rows of the QaTa ablation at the current recipe (issue 12): does CSS help, does ICL help?
#
#   bash scripts/ablation_losses.sh [WORK] [ROW...]   # WORK: a finished `train_bundled.sh qata` folder (runs/qata)
#                                                     # ROW: all, no-css, no-icl (default: all three)
#
# Row "all" runs stage 2 again over WORK's own stage 1 (every loss). Rows no-css and no-icl pre-train stage 1 again
# with the shipped configuration (scripts/amvlm_hybrid.json, the same stem, epochs, batch and seed) and one loss
# weight set to 0. Every row then runs stage 2 the same way (the stage-0 U-Net of WORK, 55 CPU minutes on 2
# threads, mirror averaging, lambda 0.7) and is scored on valid; no-css and no-icl are compared with "all" by a
# paired t-test over the images. Stage-1 retrieval (side test included) is written next to each row.
# Budgets are CPU time: run it on an otherwise idle machine, since threads that wait for a busy core still count
# CPU time and the run then takes fewer steps. Rows run one after the other; run again to continue.
source "$(dirname "$0")/_bundled.sh" qata "${1:-runs/qata}"
shift || true
ROWS=("$@")
[ ${#ROWS[@]} -eq 0 ] && ROWS=(all no-css no-icl)
for f in "$WORK/sup0" "$WORK/amvlm"; do
    [ -e "$f" ] || { echo "$f is missing: run scripts/train_bundled.sh qata $WORK first" >&2; exit 2; }
done
for ROW in "${ROWS[@]}"; do
    case "$ROW" in
      all) WEIGHT= ;;
      no-css) WEIGHT=w_css ;;
      no-icl) WEIGHT=w_icl ;;
      *) echo "unknown row $ROW (all, no-css or no-icl)" >&2; exit 2 ;;
    esac
    OUT="$WORK/ablation-$ROW"
    mkdir -p "$OUT"
    STAGE1="$OUT/amvlm"
    [ "$ROW" = all ] && STAGE1="$WORK/amvlm"
    [ "$ROW" = all ] || { $PY -c "import json, sys; c = json.load(open(sys.argv[1])); c['loss'][sys.argv[2]] = 0.0; \
json.dump(c, open(sys.argv[3], 'w'), indent=2)" scripts/amvlm_hybrid.json "$WEIGHT" "$OUT/amvlm.json"
    $AMVLM pretrain --data $TRAIN --out "$OUT/amvlm" --epochs 2 --batch-size 32 --model-config "$OUT/amvlm.json" \
        --init-stem "$WORK/sup0" --freeze-stem --device cpu --resume
    $AMVLM retrieval --model "$OUT/amvlm" --data "$VAL" --reference "$SHARED/qata_cov19/train" \
        --json "$OUT/retrieval.json" | tee "$OUT/retrieval.txt"; }
    $AMVLM train $STAGE2 --threads 2 --model "$STAGE1" --init-unet "$WORK/sup0" --out "$OUT/seg" --rampup-epochs 2 \
        --time-budget 55
    $PY -c "import json, sys; p = sys.argv[1]; d = json.load(open(p)); d['segmenter']['fusion_lambda'] = 0.7; \
json.dump(d, open(p, 'w'), indent=2)" "$OUT/seg/segmenter.json"
    $AMVLM evaluate --model "$OUT/seg" --data "$VAL" --mode fused --per-image "$OUT/seg-fused.csv" \
        --json "$OUT/seg-fused.json"
    if [ "$ROW" != all ] && [ -e "$WORK/ablation-all/seg-fused.csv" ]; then
        $PY scripts/compare_runs.py "$WORK/ablation-all/seg-fused.csv" "$OUT/seg-fused.csv" | tee "$OUT/compare.txt"
    fi
done
