# Shared by the *_bundled.sh and ablation scripts (sourced, not run): the dataset named by $1, its training and
# validation folders, the held-out images that choose the fusion weight, the work folder ($2, default
# runs/<dataset>) and how to call the package.
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
  qata)    TRAIN="$SHARED/qata_cov19/train $SHARED/qata_cov19/train_rest"; VAL="$SHARED/qata_cov19/valid"
           HELD="--new-patients" ;;
  monuseg) TRAIN="$SHARED/monuseg/Train_Folder"; VAL="$SHARED/monuseg/Val_Folder"; HELD="" ;;
  *) echo "unknown dataset $NAME (qata or monuseg)" >&2; exit 2 ;;
esac
