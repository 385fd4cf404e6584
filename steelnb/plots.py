"""Figures of one run's images and features: a gallery per cluster and a 2-D map of features (the notebooks and
a run folder's report.html draw them), and `wrap` for the long captions every figure carries.

Every function returns a matplotlib `Figure` (made with `pyplot`, so a notebook shows it; a script or
test may close it) and leaves the backend alone. The figures of the experiments' tables are `steelnb.study.figures`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

_UNKNOWN = -1
MAP_METHODS = {"pca": "PCA", "tsne": "t-SNE"}  # embed_2d methods and their names in titles


def wrap(title: str, width: int = 100) -> str:
    """A long caption broken into lines of at most `width` characters (titles carry data, profile, seeds); its own
    line breaks are kept. The one wrapper of every figure title (`steelnb.study.figures` too).

    >>> print(wrap("Table 2 · resnet18 on DAGM class 1\\nprofile ci; seeds 0, 1", 20))
    Table 2 · resnet18
    on DAGM class 1
    profile ci; seeds 0,
    1
    """
    return "\n".join(textwrap.fill(part, width) for part in title.split("\n"))


def _tile(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """uint8 (C, S, S) -> what imshow takes, and the colour map (grey for one channel)."""
    if image.shape[0] == 1:
        return image[0], "gray"
    return np.transpose(image[:3], (1, 2, 0)), None


def _name(value: int, names: Sequence[str] | None) -> str:
    if value == _UNKNOWN:
        return "?"
    return names[value] if names is not None and 0 <= value < len(names) else str(value)


def pick_members(groups: np.ndarray, per_group: int, scores: np.ndarray | None = None,
                 seed: int = 0) -> dict[int, np.ndarray]:
    """Up to `per_group` member indices of each group: the lowest `scores` (e.g. distance to the
    centroid: the most typical members) when given, a seeded random draw otherwise."""
    groups = np.asarray(groups)
    rng = np.random.default_rng(seed)
    picked = {}
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        if scores is not None:
            members = members[np.argsort(np.asarray(scores)[members], kind="stable")][:per_group]
        elif len(members) > per_group:
            members = np.sort(rng.choice(members, per_group, replace=False))
        picked[int(group)] = members
    return picked


def montage(images: np.ndarray, groups: np.ndarray, labels: np.ndarray | None = None,
            label_names: Sequence[str] | None = None, per_group: int = 8, scores: np.ndarray | None = None,
            group_name: str = "cluster", title: str | None = None, seed: int = 0) -> Figure:
    """A gallery: one row per group (cluster), up to `per_group` sample images in it.

    `images` uint8 (N, C, S, S). Each row is headed by the group, its size and (given `labels`) its
    majority label; each image is captioned with its own label. `scores`: see `pick_members`.
    """
    images, groups = np.asarray(images), np.asarray(groups)
    if images.ndim != 4 or len(images) != len(groups):
        raise ValueError(f"montage: images must be (N, C, S, S) with one group each, got {images.shape} "
                         f"and {len(groups)} groups")
    if len(images) == 0:
        raise ValueError("montage: no images")
    picked = pick_members(groups, per_group, scores, seed)
    columns = max(len(m) for m in picked.values())
    figure, axes = plt.subplots(len(picked), columns, figsize=(1.3 * columns + 1.2, 1.45 * len(picked)),
                                squeeze=False)
    for row, (group, members) in enumerate(picked.items()):
        size = int((groups == group).sum())
        heading = f"{group_name} {group}\nn={size}"
        if labels is not None:
            known = np.asarray(labels)[groups == group]
            known = known[known != _UNKNOWN]
            if len(known):
                majority = np.bincount(known).argmax()
                share = (known == majority).mean()
                heading += f"\n{_name(int(majority), label_names)} {share:.0%}"
        for column in range(columns):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_visible(False)
            if column >= len(members):
                continue
            pixels, cmap = _tile(images[members[column]])
            axis.imshow(pixels, cmap=cmap, vmin=0, vmax=255)
            if labels is not None:
                axis.set_title(_name(int(labels[members[column]]), label_names), fontsize=6, pad=2)
        axes[row, 0].set_ylabel(heading, rotation=0, ha="right", va="center", fontsize=8)
    if title:
        figure.suptitle(wrap(title), fontsize=8)
    figure.tight_layout()
    return figure


def embed_2d(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(N, 2) coordinates of (N, D) features: "pca" (linear, fast) or "tsne" (neighbourhoods kept)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features = np.asarray(features, np.float32)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"embed_2d: needs (N, D) features with N >= 2, got shape {features.shape}")
    if method == "pca":
        coords = PCA(n_components=min(2, *features.shape), random_state=seed).fit_transform(features)
        return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    if method == "tsne":
        perplexity = float(min(30.0, max(1.0, (len(features) - 1) / 3)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    raise ValueError(f"embed_2d: unknown method {method!r}; choose pca or tsne")


def feature_map(coords: np.ndarray, colourings: dict[str, tuple[np.ndarray, Sequence[str] | None]],
                title: str | None = None) -> Figure:
    """Scatter of 2-D `coords`, one panel per colouring: {"cluster": (ids, None), "label": (ids, names)}.

    Ids are integers; -1 (unknown) is drawn in light grey. Legends name the ids (by `names` if given).
    """
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"feature_map: coords must be (N, 2), got {coords.shape}")
    if not colourings:
        raise ValueError("feature_map: give at least one colouring")
    figure, axes = plt.subplots(1, len(colourings), figsize=(4.6 * len(colourings), 4.2), squeeze=False)
    palette = plt.get_cmap("tab10" if max(len(np.unique(v)) for v, _ in colourings.values()) <= 10 else "tab20")
    for axis, (what, (values, names)) in zip(axes[0], colourings.items(), strict=True):
        values = np.asarray(values)
        if len(values) != len(coords):
            raise ValueError(f"feature_map: {what!r} has {len(values)} values for {len(coords)} points")
        for index, value in enumerate(np.unique(values)):
            mask = values == value
            colour = "lightgrey" if value == _UNKNOWN else palette(index % palette.N)
            axis.scatter(coords[mask, 0], coords[mask, 1], s=14, color=colour, label=_name(int(value), names),
                         edgecolors="none", alpha=0.85)
        axis.set_title(f"coloured by {what}", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
        axis.legend(fontsize=6, markerscale=0.8, loc="best", frameon=False)
    if title:
        figure.suptitle(wrap(title), fontsize=8)
    figure.tight_layout()
    return figure






