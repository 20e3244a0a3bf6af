#!/usr/bin/env bash
# Run the GUI test suite N times in a row, each in a fresh interpreter under a virtual X server, and print
# "N passed, K failed" at the end. Not part of CI: it hunts for rare failures (a crash, an abort at exit, a
# timing-dependent test), so run it on a busy machine too, e.g. beside a training run.
#
#   scripts/soak_gui.sh [N] [extra pytest arguments]      (N defaults to 20)
#
# A run counts as passed only when pytest exits 0 (an interpreter that aborts, even after every test passed,
# exits non-zero). The log of every run is kept in a temporary folder, named at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
shift $(( $# > 0 ? 1 : 0 ))
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
logs="$(mktemp -d "${TMPDIR:-/tmp}/amvlm-soak-XXXXXX")"
passed=0
failed=0
for i in $(seq 1 "$n"); do
    log="$logs/run-$i.log"
    start=$SECONDS
    xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m pytest -q -m gui -p no:cacheprovider "$@" \
        >"$log" 2>&1
    rc=$?
    summary="$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed)' "$log" | tail -n 1)"
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "run $i/$n: ok in $((SECONDS - start)) s (${summary})"
    else
        failed=$((failed + 1))
        echo "run $i/$n: FAILED, exit code $rc, in $((SECONDS - start)) s (${summary:-no summary}); log: $log"
    fi
done
echo "logs: $logs"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
