"""How long a Retrain round takes with the plugin's settings: a project of real QaTa validation images, some of
them corrected with their expert masks, one :class:`~napari_amvlm.training.rounds.RetrainJob` (export, training
process, guard, install) as the widget runs it. Prints a table of its phases and saves JSON.

    python benchmarks/round_time.py --corrected 50 --others 350        # the goal: <= 120 s on 2 idle CPU cores

Run it on an otherwise idle machine (it warns when the load was high at the start).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO, busy_warning, children_peak_rss_mb, machine_info, print_table, write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "amvlm-qata"))
    ap.add_argument("--pile", default=str(REPO.parent / "shared" / "data" / "qata_cov19" / "valid"))
    ap.add_argument("--corrected", type=int, default=50)
    ap.add_argument("--others", type=int, default=350)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "round_time.json"))
    args = ap.parse_args(argv)
    from annotation_loop import _load_pile, make_project

    from napari_amvlm.training.rounds import JobState, RetrainJob, RetrainSettings

    info = machine_info()
    records = _load_pile(args.pile, args.corrected + args.others, seed=0)
    with tempfile.TemporaryDirectory(prefix="amvlm-round-time-") as tmp:
        project, truth = make_project(Path(tmp) / "project", records)
        with project.transaction():
            for image_id in list(truth)[: args.corrected]:
                project.mark_corrected(image_id, truth[image_id], author="benchmark")
        settings = RetrainSettings(device="cpu")
        t0 = time.perf_counter()
        job = RetrainJob(project, args.model, settings)
        job.prepare()
        t1 = time.perf_counter()
        job.launch()
        if job.wait() is not JobState.SUCCEEDED:
            raise SystemExit(f"the round failed: {job.message}")
        t2 = time.perf_counter()
        result = job.finalize("cpu")
        t3 = time.perf_counter()
    steps = job.last_step.step if job.last_step else 0
    rows = [("export the project", f"{t1 - t0:.1f}"), (f"training process ({steps} steps)", f"{t2 - t1:.1f}"),
            (f"guard and install ({len(job.heldback)} held back)", f"{t3 - t2:.1f}"), ("round", f"{t3 - t0:.1f}")]
    print(f"{args.corrected} corrected + {args.others} other images, settings {settings}")
    print_table(rows, ("phase", "wall s"))
    print(f"guard: {result.message}")
    warn = busy_warning(info)
    if warn:
        print(f"warning: {warn}")
    write_json(args.out, {"machine": info, "corrected": args.corrected, "others": args.others, "steps": steps,
                          "export_s": t1 - t0, "train_s": t2 - t1, "guard_s": t3 - t2, "round_s": t3 - t0,
                          "peak_child_rss_mb": children_peak_rss_mb(), "warning": warn})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
