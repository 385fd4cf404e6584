"""The pile a detection run scores, read as `DetectConfig` names it: at the pile's own aspect, the longer side at
most `max_side`, on a grid every stride divides."""

from __future__ import annotations

from ..data import READERS, Fit, ImageSet, load_dataset
from .config import DetectConfig
from .errors import DetectError


def load_pile(config: DetectConfig) -> ImageSet:
    """The pile `config` names, each image read at the pile's own aspect with the longer side <= max_side."""
    options = {}
    if config.normal_class is not None:
        if config.dataset in READERS:
            raise DetectError(f"--normal-class names a sub-folder of an image folder; {config.dataset} knows its own "
                              "classes")
        options["normal_class"] = config.normal_class
    multiple = max(32, *config.stride_list)
    return load_dataset(config.dataset, config.data_root, Fit(config.max_side, multiple), **options)
