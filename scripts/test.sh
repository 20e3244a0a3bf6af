#!/usr/bin/env bash
# Run the whole test suite offline under a virtual X server (napari needs a real one for its GUI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest -q -ra "$@"
