"""Fully unsupervised defect detection in a pile of images: which are defective, and where (`steelnb detect`).

`detect(DetectConfig(...))` scores every image of a pile against the pile itself (no labels, no clean set):
patch features -> a scorer's anomaly maps -> image scores and peaks -> a label-free threshold. `write_detection`
writes scores.csv, metrics.json, config.json and overlays/. See run.py for a runnable example.
"""

from .config import DetectConfig
from .errors import DetectError
from .run import DETECT_FILES, Detection, detect, load_pile, write_detection

__all__ = ["DETECT_FILES", "DetectConfig", "DetectError", "Detection", "detect", "load_pile", "write_detection"]
