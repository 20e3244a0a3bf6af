# Shared by train_bundled.sh and evaluate_bundled.sh (sourced, not run): the dataset named by $1, its training and
# validation folders, the work folder ($2, default runs/<dataset>) and how to call the package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAME=${1:?give qata or monuseg}
WORK=${2:-runs/$NAME}
SHARED=${SHARED:-../shared/data}
PY=${PY:-.venv/bin/python}
AMVLM="$PY -m napari_amvlm.cli"
export HF_HUB_OFFLINE=1
case "$NAME" in
  qata)    TRAIN="$SHARED/qata_cov19/train $SHARED/qata_cov19/train_rest"; VAL="$SHARED/qata_cov19/valid" ;;
  monuseg) TRAIN="$SHARED/monuseg/Train_Folder"; VAL="$SHARED/monuseg/Val_Folder" ;;
  *) echo "unknown dataset $NAME (qata or monuseg)" >&2; exit 2 ;;
esac
