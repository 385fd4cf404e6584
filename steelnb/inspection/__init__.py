"""From a pile to a report of defect types: detect the defective images, then group what was found (`steelnb inspect`).

`inspect_pile(DetectConfig(...), TypesConfig(...))` runs `steelnb.detect` on the pile (no labels), crops the
flagged images around their anomaly peaks and clusters the crops into defect types with the paper's joint method;
`write_inspection` writes the run folder. See run.py for a runnable example.
"""

from .config import TypesConfig
from .evaluation import pipeline_scores
from .run import INSPECT_FILES, Inspection, detect_pile, inspect_pile, truth_of, write_inspection

__all__ = ["INSPECT_FILES", "Inspection", "TypesConfig", "detect_pile", "inspect_pile", "pipeline_scores", "truth_of",
           "write_inspection"]
