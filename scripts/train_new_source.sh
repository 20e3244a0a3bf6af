#!/usr/bin/env bash
# The starting model of the loop's "new source" scenario (issue 25): trained the way the bundled QaTa model is
# (stage 0, stage 1 without CSS, stage 2 with mirror averaging, lambda 0.6), but only on the covid_* images of
# train + train_rest (25 % of them labeled); QaTa's sub-* images, another hospital's, are never seen.
#
#   bash scripts/train_new_source.sh [WORK]        # WORK defaults to runs/qata-covid; run again to continue
#
# Stage 1 runs $PRETRAIN_EPOCHS epochs (default 2), stage 2 one cycle of $STAGE2_MIN minutes (default 55; the
# bundled model had three). Budgets are CPU time of one thread, so the run leaves the other core free. Stages
# resume where they stopped (keep WORK to continue).
source "$(dirname "$0")/_bundled.sh" qata "${1:-runs/qata-covid}"
mkdir -p "$WORK"
$PY scripts/new_source.py --data $TRAIN --out "$WORK/data"
ALL=$TRAIN
TRAIN="$WORK/data/covid"
STAGE2=${STAGE2/"--data $ALL"/"--data $TRAIN"}
# (every stage keeps its last weights: the per-epoch validation only logs, on 50 images instead of 400 to save
# about a quarter of the wall time)
COMMON="$STAGE2 --threads 1 --val-limit 50"
$AMVLM train $COMMON $UNET --model models/amvlm-qata --out "$WORK/sup0" --supervised-only --time-budget 50
$PY -c "import json, sys; c = json.load(open(sys.argv[1])); c['loss']['w_css'] = 0.0; \
json.dump(c, open(sys.argv[2], 'w'), indent=2)" scripts/amvlm_hybrid.json "$WORK/amvlm.json"
$AMVLM pretrain --data $TRAIN --out "$WORK/amvlm" --epochs ${PRETRAIN_EPOCHS:-2} --batch-size 32 --model-config "$WORK/amvlm.json" \
    --init-stem "$WORK/sup0" --freeze-stem --device cpu --resume
$AMVLM train $COMMON --model "$WORK/amvlm" --init-unet "$WORK/sup0" --out "$WORK/seg" --rampup-epochs 2 \
    --time-budget ${STAGE2_MIN:-55}
$PY -c "import json, sys; p = sys.argv[1]; d = json.load(open(p)); d['segmenter']['fusion_lambda'] = 0.6; \
json.dump(d, open(p, 'w'), indent=2)" "$WORK/seg/segmenter.json"
$AMVLM evaluate --model "$WORK/seg" --data "$VAL" --json "$WORK/seg-valid.json"
$AMVLM evaluate --model "$WORK/seg" --data "$WORK/data/pile" --json "$WORK/seg-pile.json"
