"""Every benchmark of issue 6 in one run: prompt latency, the SAM ViT-B reference, training throughput, and
retraining rounds in a real viewer (round time, event-loop stalls, memory). Prints a table, writes JSON and,
with ``--markdown``, the results block of docs/PERFORMANCE.md, so that the figures there always come from
this command::

    .venv/bin/python benchmarks/run_all.py --json benchmarks/results/results.json --markdown docs/PERFORMANCE.md

``--quick`` runs a short version (a few repetitions, a tiny round) that only checks everything works. The
viewer part runs in a child process under ``xvfb-run -a`` when no X server is set.

The rounds beside a CPU-bound process (``ui_max_stall_ms_loaded``) are short ones (``ui_round.py --quick
--load``: 4 labeled + 8 unlabeled images, one epoch), as many as ``--rounds``: the round's training process runs
at niceness 10 and gets about a tenth of the CPU beside the load, so a full round would take half an hour.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import REPO, busy_warning, machine_info, print_table, segmenter_folder, write_json

# (JSON key, figure, goal operator, goal, unit) — the goals of issue 6 (2 CPU cores, 224x224, the shipped model)
GOALS = [
    ("cold_s", "prompt → mask on a new image (image + text encoders + heads + fusion)", "≤", 0.2, "s"),
    ("warm_s", "new prompt on the same image (cached image embedding)", "≤", 0.02, "s"),
    ("sam_vitb_embed_s", "SAM ViT-B image embedding of one 1024² image (random weights, same architecture)",
     None, None, "s"),
    ("speedup_vs_sam", "`sam_vitb_embed_s / cold_s`", "≥", 40, "×"),
    ("round_s", "one retraining round: 32 labeled + 200 unlabeled QaTa images, the plugin's default settings",
     "≤", 300, "s"),
    ("train_img_per_s", "training throughput, CPU (engine loop, median over steps)", None, None, "img/s"),
    ("train_img_per_s_gpu", "training throughput, GPU (when one is present)", None, None, "img/s"),
    ("ui_max_stall_ms", "largest event-loop gap in a real viewer while a round runs", "≤", 50, "ms"),
    ("ui_max_stall_ms_loaded", "the same, short rounds beside a CPU-bound process on every core "
                               "(`ui_round.py --quick --load`)", "≤",
     100, "ms"),
    ("peak_rss_mb", "peak resident memory of viewer + training process", "≤", 4000, "MB"),
]
BEGIN, END = "<!-- results:begin (written by benchmarks/run_all.py) -->", "<!-- results:end -->"


def _ui(model: Path, quick: bool, rounds: int | None, out: Path, load: bool = False
        ) -> tuple[dict | None, str | None]:  # fmt: skip
    """Run ui_round.py in a child process (under xvfb-run when there is no display)."""
    cmd = [sys.executable, str(HERE / "ui_round.py"), "--model", str(model), "--json", str(out)]
    cmd += ["--quick"] * quick + (["--rounds", str(rounds)] if rounds else []) + ["--load"] * load
    if not os.environ.get("DISPLAY"):
        if not shutil.which("xvfb-run"):
            return None, "no X server and no xvfb-run: the viewer benchmarks were skipped"
        cmd = ["xvfb-run", "-a"] + cmd
    print(f"\n== retraining rounds in a viewer: {' '.join(cmd)}", flush=True)
    rc = subprocess.run(cmd, check=False).returncode
    if rc != 0 or not out.is_file():
        return None, f"ui_round.py failed (exit code {rc})"
    return json.loads(out.read_text()), None


def run(args: argparse.Namespace, work: Path) -> dict:
    import prompt_latency
    import sam_baseline
    import torch
    import train_throughput

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine_info()
    warnings = [w for w in [busy_warning(info)] if w]
    model, weights = segmenter_folder(work)
    q = args.quick
    print(f"model: {model} (segmenter weights: {weights}); quick: {q}", flush=True)

    print("\n== prompt latency", flush=True)
    prompt = prompt_latency.measure(model, *((3, 5, 1) if q else (30, 50, 2)))
    print_table(prompt_latency.rows(prompt), ("figure", "median s", "min s", "max s", "n"))

    print("\n== SAM ViT-B reference", flush=True)
    sam = sam_baseline.measure(*((1, 1) if q else (5, 2)))

    print("\n== training throughput", flush=True)
    sizes = (4, 8, 3, 1) if q else (32, 200, 40, 3)
    train = {"cpu": train_throughput.measure(model, *sizes, device="cpu")}
    if torch.cuda.is_available():
        train["cuda"] = train_throughput.measure(model, *sizes, device="cuda")
    for res in train.values():
        print_table(train_throughput.rows(res), ("figure", "median img/s", "min", "max", "n steps"))

    ui, why = (None, "skipped (--skip-ui)") if args.skip_ui else _ui(model, q, args.rounds, work / "ui.json")
    if why:
        warnings.append(why)
    loaded, why = ((None, None) if args.skip_ui else
                   _ui(model, True, args.rounds or (1 if q else 3), work / "ui_load.json", load=True))
    if why:
        warnings.append(f"with --load: {why}")

    figures = {"cold_s": prompt["cold_s"], "warm_s": prompt["warm_s"], "sam_vitb_embed_s": sam["sam_vitb_embed_s"],
               "train_img_per_s": train["cpu"]["engine"]["img_per_s"]}
    if "cuda" in train:
        figures["train_img_per_s_gpu"] = train["cuda"]["engine"]["img_per_s"]
    cold, ref = prompt["cold_s"]["median"], sam["sam_vitb_embed_s"]["median"]
    figures["speedup_vs_sam"] = {"median": round(ref / cold, 1) if cold and ref else None, "min": None,
                                 "max": None, "n": None, "note": "ratio of the two medians, same run"}
    if ui:
        figures["round_s"] = ui["round_s"]
        figures["ui_max_stall_ms"] = ui["ui_max_stall_ms"]
        figures["peak_rss_mb"] = {"median": ui["peak_rss_mb"], "min": None, "max": None,
                                  "n": len(ui["rounds"]), "note": "viewer peak + training-process peak"}
    if loaded:
        figures["ui_max_stall_ms_loaded"] = loaded["ui_max_stall_ms"]
    out = {k: figures[k]["median"] if k in figures else None for k, *_ in GOALS}
    if "train_img_per_s_gpu" not in figures:
        out.pop("train_img_per_s_gpu")
    return {
        **out,
        "stats": figures,
        "goals": {k: {"goal": f"{op} {g}", "met": _met(out.get(k), op, g)} for k, _, op, g, _ in GOALS if op},
        "quick": q, "segmenter_weights": weights, "model": str(model),
        "command": "python benchmarks/run_all.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(), "machine": info, "warnings": warnings,
        "details": {"prompt": prompt, "sam": sam, "train": train, "ui": ui, "ui_loaded": loaded},
    }


def _met(value, op, goal) -> bool | None:
    if value is None or op is None:
        return None
    return value <= goal if op == "≤" else value >= goal


def _git_commit() -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, check=False,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("+local changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def table_rows(res: dict) -> list[tuple]:
    rows = []
    for key, name, op, goal, unit in GOALS:
        if key not in res:
            continue
        s = res["stats"].get(key, {})
        spread = f"{_fmt(s.get('min'))}–{_fmt(s.get('max'))}" if s.get("min") is not None else "–"
        met = {True: "yes", False: "**no**", None: "–"}[_met(res[key], op, goal)]
        rows.append((name, f"`{key}`", f"{_fmt(res[key])} {unit}" if res[key] is not None else "not measured",
                     _fmt(s.get("n")), spread, f"{op} {goal:,} {unit}" if op else "reported", met))
    return rows


def markdown_block(res: dict) -> str:
    m = res["machine"]
    lines = [BEGIN, ""]
    if res["quick"]:
        lines += ["**Quick run (`--quick`): a smoke test with tiny repetition counts. These are not the figures.**",
                  ""]
    lines += [f"Measured {res['date']} at commit `{res['git_commit']}` with:", "", "```",
              res["command"].replace("python ", ".venv/bin/python ", 1), "```", "",
              f"Segmenter weights: **{res['segmenter_weights']}**"
              + (" (the shipped model has no trained segmenter yet: a segmenter of the default config with random "
                 "weights was timed; the compute is the same)" if res["segmenter_weights"] == "random" else ""), ""]
    lines += [f"> Warning: {w}" for w in res["warnings"]] + ([""] if res["warnings"] else [])
    lines += ["| figure | JSON key | median | n | min–max | goal | met |", "|---|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(res)]
    ui, tr = res["details"]["ui"], res["details"]["train"]["cpu"]
    lines += ["", f"Engine loop / plain PyTorch loop (CPU, same batch): {tr['engine_vs_plain']}."]
    if "cuda" in res["details"]["train"]:
        lines.append(f"Engine loop / plain PyTorch loop (GPU, same batch): "
                     f"{res['details']['train']['cuda']['engine_vs_plain']}.")
    if ui:
        r = ui["rounds"][0]
        lines += [(f"Rounds ran {r['steps']} steps on {r['device']} with {r['labeled']} labeled + {r['unlabeled']} "
                   f"unlabeled images, settings {r['settings']}; training process throughput "
                   f"{_fmt(ui['round_img_per_s']['median'])} img/s. Peak memory: viewer {ui['viewer_peak_rss_mb']} "
                   f"MB + training process {ui['training_peak_rss_mb']} MB (sampled simultaneous peak "
                   f"{ui['sampled_simultaneous_peak_mb']} MB)."), ""]
        lines += _phase_table(ui["rounds"], "")
    if res["details"].get("ui_loaded"):
        lines += ["", *_phase_table(res["details"]["ui_loaded"]["rounds"], ", beside a CPU-bound process (`--load`)")]
    lines += ["", "### Machine", "", "| | |", "|---|---|"]
    for key, label in (("cpu_model", "CPU"), ("cores", "cores (logical)"), ("cores_usable", "cores usable"),
                       ("memory_gb", "memory (GB)"), ("cuda", "GPU"), ("os", "OS"), ("python", "Python"),
                       ("torch", "torch"), ("torch_threads", "torch threads (this process)"),
                       ("transformers", "transformers"), ("napari", "napari"),
                       ("load_avg_1m_at_start", "1-min load average before the run")):
        lines.append(f"| {label} | {_fmt(m.get(key))} |")
    return "\n".join(lines + ["", END])


def _phase_table(rounds: list[dict], when: str) -> list[str]:
    """Markdown lines: the largest event-loop gap of each phase of each round, and round 1's wall times."""
    lines = [(f"Largest event-loop gap of each phase{when} (a gap counts in the phase where the viewer got "
              "control back):"), "",
             "| round phase | wall s (round 1) | " + " | ".join(f"gap ms (round {k})"
                                                               for k in range(1, len(rounds) + 1)) + " |",
             "|---|---|" + "---|" * len(rounds)]
    return lines + [f"| {k} | {v['wall_s']} | " + " | ".join(str(rr["phases"][k]["max_gap_ms"]) for rr in rounds)
                    + " |" for k, v in rounds[0]["phases"].items()]


def write_markdown(path: Path, res: dict) -> None:
    """Replace the results block of ``path`` (between the markers), or append one."""
    text = path.read_text() if path.is_file() else "# Performance\n"
    block = markdown_block(res)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", type=Path, required=True, help="where to write every figure")
    p.add_argument("--quick", action="store_true", help="short version: checks that everything runs")
    p.add_argument("--markdown", type=Path, help="update the results block of this file (docs/PERFORMANCE.md)")
    p.add_argument("--rounds", type=int, help="retraining rounds in the viewer (default 3, --quick 1)")
    p.add_argument("--threads", type=int, help="torch threads of this process (default: torch's)")
    p.add_argument("--skip-ui", action="store_true", help="skip the viewer part (round, stalls, memory)")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="amvlm-bench-"))
    try:
        res = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n== summary" + (" (QUICK: not the figures)" if res["quick"] else ""))
    print_table([(r[1].strip("`"), r[2], r[3], r[4], r[5], r[6]) for r in table_rows(res)],
                ("key", "median", "n", "min–max", "goal", "met"))
    for w in res["warnings"]:
        print(f"warning: {w}")
    print(f"written: {write_json(args.json, res)}")
    if args.markdown:
        write_markdown(args.markdown, res)
        print(f"written: {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
