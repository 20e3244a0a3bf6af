# Shared by the *_bundled.sh and ablation scripts (sourced, not run): the dataset named by $1, its training and
# validation folders, the held-out images that choose the fusion weight, the work folder ($2, default
# runs/<dataset>), how to call the package, and the stage-2 recipe of the bundled model ($STAGE2, every
# `amvlm train` flag but the budget, the thread count and the model folders; $UNET for a U-Net trained from scratch).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAME=${1:?give qata or monuseg}
WORK=${2:-runs/$NAME}
SHARED=${SHARED:-../shared/data}
PY=${PY:-.venv/bin/python}
AMVLM="$PY -m napari_amvlm.cli"
export HF_HUB_OFFLINE=1
case "$NAME" in
  # HELD: which held-out training images choose the fusion weight. QaTa's valid patients are new, while its
  # training patients have up to 10+ images each: only patients with no labeled image stand in for valid.
  # QaTa: the whole official training split (5,716 images, 25 % = 1,429 labeled); predictions averaged with the
  # mirror. MoNuSeg: 24 H&E tiles, 25 % = 6 labeled; nuclei are small at 224 px, so the U-Net works at full size
  # and the clean-up (which removes specks smaller than a nucleus) is off.
  qata)    TRAIN="$SHARED/qata_cov19/train $SHARED/qata_cov19/train_rest"; VAL="$SHARED/qata_cov19/valid"
           HELD="--new-patients"; UNET="--levels 5 --downsample 2"; CLEAN=""
           FLIPS="--vflip 0 --flip-average"; BATCH="--labeled-batch 8 --unlabeled-batch 8" ;;
  monuseg) TRAIN="$SHARED/monuseg/Train_Folder"; VAL="$SHARED/monuseg/Val_Folder"; HELD=""
           UNET="--levels 5 --downsample 1"; CLEAN="--no-cleanup"
           FLIPS="--vflip 0.5"; BATCH="--labeled-batch 4 --unlabeled-batch 4" ;;
  *) echo "unknown dataset $NAME (qata or monuseg)" >&2; exit 2 ;;
esac
STAGE2="--data $TRAIN --val $VAL --labeled-fraction 0.25 --lr 1e-3 --lr-floor 1e-5 --schedule cosine --bce plain
        --budget-clock cpu --keep last --epochs 100000 --device cpu --resume $FLIPS $BATCH $CLEAN"
