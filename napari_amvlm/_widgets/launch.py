"""``amvlm-napari``: open napari with the AMVLM widget docked and a sample (or a project) loaded.

The same as ``napari -w napari-amvlm`` followed by ``File > Open Sample > napari-amvlm``, in one command; like
``napari``, it runs the startup script named in napari's settings.
"""

from __future__ import annotations

import argparse
import os
import sys

SAMPLES = {"qata": "qata_chest_xray", "monuseg": "monuseg_tile", "none": None}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="amvlm-napari", description="Open napari with the AMVLM widget docked and "
                                "a sample image (or a project) loaded.")
    p.add_argument("--sample", choices=list(SAMPLES), default="qata",
                   help="sample image to open (default: a QaTa-COV19 chest X-ray with its sentence)")
    p.add_argument("--model", metavar="DIR", help="model folder (default: the bundled models/amvlm-qata)")
    p.add_argument("--project", metavar="DIR", help="annotation project folder to open in the widget")
    return p


def open_viewer(sample: str | None = "qata", model: str | None = None, project: str | None = None,
                show: bool = True):
    """A viewer with the sample opened and the widget docked; returns (viewer, widget)."""
    import napari

    from ._main import AMVLMWidget

    viewer = napari.Viewer(show=show)
    if SAMPLES.get(sample or "none"):
        viewer.open_sample("napari-amvlm", SAMPLES[sample])
    widget = AMVLMWidget(viewer, model_dir=model)
    viewer.window.add_dock_widget(widget, name="AMVLM segmentation", area="right")
    if project:
        widget.open_project(project)
    return viewer, widget


def run_startup_script() -> None:
    """Run the startup script named in napari's settings (Preferences > Application), as ``napari`` does."""
    try:
        from napari.utils._startup_script import _run_configured_startup_script
    except ImportError:  # pragma: no cover - a napari without startup scripts
        return
    _run_configured_startup_script()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time
    import napari

    open_viewer(args.sample, args.model, args.project)
    run_startup_script()
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
