"""`ImageSet`: the one in-memory form every data set is turned into."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

UNKNOWN = -1  # label / defect flag of an image whose truth is not known


@dataclass(frozen=True)
class ImageSet:
    """Decoded images with their truth, ready for the network.

    images:      uint8 array (N, C, H, W), mostly square (H = W = S); C = 1 for grayscale sources, 3 for colour.
    labels:      int64 (N,), index into `class_names`, UNKNOWN where not known.
    defective:   int8 (N,), 1 defect, 0 defect-free, UNKNOWN where not known.
    paths:       source file of each image (relative to the data-set root where there is one).
    skipped:     (path, reason) of every file left out: by the listing policy (`folder.scan`) or unreadable.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    defective: np.ndarray
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if not (len(self.labels) == len(self.defective) == len(self.paths) == n):
            raise ValueError(f"{self.name}: images, labels, defective and paths differ in length")
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            got = f"{self.images.dtype} {self.images.shape}"
            raise ValueError(f"{self.name}: images must be uint8 (N, C, H, W), got {got}")
        if n and (self.labels.min() < UNKNOWN or self.labels.max() >= len(self.class_names)):
            raise ValueError(f"{self.name}: labels must be UNKNOWN (-1) or an index into {self.class_names}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_labels(self) -> bool:
        return len(self) > 0 and bool((self.labels != UNKNOWN).all())

    @property
    def has_defect_flags(self) -> bool:
        return len(self) > 0 and bool((self.defective != UNKNOWN).all())

    def subset(self, index: np.ndarray | list[int], name: str | None = None) -> ImageSet:
        """The images at `index` (integer positions, in that order, or a boolean mask of length N)."""
        index = np.asarray(index)
        index = np.flatnonzero(index) if index.dtype == bool else index.astype(np.int64)
        return replace(
            self,
            name=name or self.name,
            images=self.images[index],
            labels=self.labels[index],
            defective=self.defective[index],
            paths=tuple(self.paths[i] for i in index),
            meta=dict(self.meta),
        )

    def relabel(self, labels: np.ndarray, class_names: tuple[str, ...], name: str | None = None) -> ImageSet:
        """The same images under another labelling (e.g. defect / defect-free)."""
        labels = np.asarray(labels, np.int64)
        return replace(self, labels=labels, class_names=class_names, name=name or self.name, meta=dict(self.meta))

    def summary(self) -> dict:
        """Counts per class, defect rate and image form: what `steelnb data info` prints."""
        counts = {c: int((self.labels == i).sum()) for i, c in enumerate(self.class_names)}
        if (self.labels == UNKNOWN).any():
            counts["(unlabelled)"] = int((self.labels == UNKNOWN).sum())
        known = self.defective != UNKNOWN
        rate = float(self.defective[known].mean()) if known.any() else None
        return {
            "name": self.name,
            "images": len(self),
            "classes": counts,
            "defect_rate": rate,
            "array": f"{self.images.dtype} {tuple(self.images.shape)}",
            "source_sizes": self.meta.get("source_sizes", {}),
            "source_modes": self.meta.get("source_modes", {}),
            "skipped": len(self.skipped),
        }
