#!/usr/bin/env bash
# The bundled QaTa model, end to end, and its supervised-only baseline at the same compute (issue 12).
# Every stage resumes where it stopped when run again (finished stages are skipped).
#
#   bash scripts/train_qata.sh [DATA] [WORK]      # DATA defaults to ../shared/data/qata_cov19, WORK to runs/qata
#
# Budgets are CPU time of one thread (--budget-clock cpu --threads 1), so the two stage-2 runs can share a
# 2-core machine and still get exactly the same compute; on 2 idle cores one CPU minute is about half a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/qata_cov19}
WORK=${2:-runs/qata}
PY=${PY:-.venv/bin/python}
AMVLM="$PY -m napari_amvlm.cli"
TRAIN="$DATA/train $DATA/train_rest"      # the whole official training split: 5,716 images, 25 % = 1,429 labeled
export HF_HUB_OFFLINE=1
mkdir -p "$WORK"

# 1. Supervised U-Net on the 1,429 labeled images (the recipe-study row half-res-aug: 50 CPU minutes).
$PY scripts/recipe_study.py --data $TRAIN --val "$DATA/valid" --model models/amvlm-qata --cpu-min 50 \
    --rows half-res-aug --work "$WORK/recipe" --results "$WORK/recipe.md"
SUP="$WORK/recipe/half-res-aug"

# 2. Stage 1: the hybrid AMVLM. Its stem is the U-Net encoder of step 1 (fixed); the transformer, the text
#    layers and the heads learn from the 5,716 image-sentence pairs (no masks).
$AMVLM pretrain --data $TRAIN --out "$WORK/amvlm" --epochs "${PRETRAIN_EPOCHS:-3}" --batch-size 32 \
    --model-config scripts/amvlm_hybrid.json --init-stem "$SUP" --freeze-stem --device cpu --resume

# 3. Stage 2: Mean Teacher + text from the U-Net of step 1, over the AMVLM of step 2 (CPU minutes: STAGE2_MIN).
STAGE2_MIN=${STAGE2_MIN:-100}
COMMON="--data $TRAIN --val $DATA/valid --labeled-fraction 0.25 --init-unet $SUP --lr 1e-3 --lr-floor 1e-5
        --schedule cosine --bce plain --budget-clock cpu --threads 1 --keep last --epochs 1000 --device cpu --resume"
$AMVLM train $COMMON --model "$WORK/amvlm" --out "$WORK/seg" --rampup-epochs 2 --time-budget "$STAGE2_MIN" &
# 4. Baseline: the same U-Net continued supervised-only for the same CPU time plus stage 1's.
#    PRETRAIN_MIN: the CPU minutes stage 1 took (its log's wall time x threads), so that both sides get equal compute.
BASE_MIN=$((STAGE2_MIN + ${PRETRAIN_MIN:-40}))
$AMVLM train $COMMON --model "$WORK/amvlm" --out "$WORK/sup" --supervised-only --time-budget "$BASE_MIN" &
wait

# 5. The fusion weight, chosen on 600 unlabeled training images whose masks training never read.
$PY scripts/fusion_lambda.py --model "$WORK/seg" --data $TRAIN --labeled-fraction 0.25 --limit 600 --write
for m in fused segmenter textmask; do
    $AMVLM evaluate --model "$WORK/seg" --data "$DATA/valid" --mode $m --per-image "$WORK/seg-$m.csv"
done
$AMVLM evaluate --model "$WORK/sup" --data "$DATA/valid" --mode segmenter --per-image "$WORK/sup.csv"
$PY - "$WORK" <<'PYEOF'
import csv, sys
from napari_amvlm.metrics import paired_t_test
work = sys.argv[1]
read = lambda name: [float(r["dice"]) for r in csv.DictReader(open(f"{work}/{name}.csv"))]
ours, base = read("seg-fused"), read("sup")
t, p = paired_t_test(ours, base)
print(f"fused {100 * sum(ours) / len(ours):.2f} vs supervised-only {100 * sum(base) / len(base):.2f} Dice, "
      f"paired t-test p = {p:.3g} over {len(ours)} images")
PYEOF
