"""Fully unsupervised defect detection in a pile of images: which are defective, and where (`steelnb detect`).

`detect(DetectConfig(...))` scores every image of a pile against the pile itself (no labels, no clean set):
patch features -> a scorer's anomaly maps -> image scores and peaks -> a label-free threshold. `write_detection`
writes scores.csv, metrics.json, config.json and overlays/. See run.py for a runnable example. `detect` and
`write_detection` are imported on first use: run.py imports torch and timm, which `steelnb decide` never needs.
"""

from .config import DetectConfig
from .errors import DetectError
from .pile import load_pile
from .record import DETECT_FILES, Detection

_RUN = ("detect", "write_detection")


def __getattr__(name: str):
    """run.py's `detect` and `write_detection`, imported when first asked for."""
    if name in _RUN:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DETECT_FILES", "DetectConfig", "DetectError", "Detection", "detect", "load_pile", "write_detection"]
