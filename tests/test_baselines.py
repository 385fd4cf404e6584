"""Baselines on tiny synthetic textures: a noise texture is normal, the same texture with a bright blob is a defect."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import timm
import torch
from torch import nn

from steelnb.baselines import (
    COLUMNS,
    PCAHBOS,
    PatchCore,
    detect,
    feature_levels,
    fit_with_threshold,
    greedy_coreset,
    lbp_features,
    linear_probe,
    patch_features,
    raw_pixel_features,
    run_baselines,
    split_normals,
    threshold_from_normals,
)
from steelnb.data import ImageSet

SIZE = 64


def textures(n: int, blob: bool, seed: int) -> np.ndarray:
    """uint8 (n, 1, SIZE, SIZE) noise around mid-gray; with `blob`, a bright disc at a random place."""
    rng = np.random.default_rng(seed)
    images = rng.integers(100, 156, (n, 1, SIZE, SIZE)).astype(np.uint8)
    if blob:
        yy, xx = np.mgrid[:SIZE, :SIZE]
        for image, (cy, cx) in zip(images, rng.integers(12, SIZE - 12, (n, 2)), strict=True):
            image[0][(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 250
    return images


def imageset(n_normal: int, n_defect: int, seed: int) -> ImageSet:
    images = np.concatenate([textures(n_normal, False, seed), textures(n_defect, True, seed + 1)])
    flags = np.r_[np.zeros(n_normal, np.int8), np.ones(n_defect, np.int8)]
    paths = tuple(f"{i}.png" for i in range(len(images)))
    return ImageSet("toy", images, flags.astype(np.int64), flags, ("defect-free", "defective"), paths)


def test_greedy_coreset_picks_far_points_first_and_distinct():
    rng = np.random.default_rng(0)
    far = np.array([[50.0, 0, 0, 0], [0, 50, 0, 0], [0, 0, 50, 0]])
    points = np.concatenate([rng.normal(size=(100, 4)), far]).astype(np.float32)
    assert {100, 101, 102} <= set(greedy_coreset(points, 4, projection_dim=None).tolist())
    chosen = greedy_coreset(np.repeat(points[:5], 3, axis=0), 15, projection_dim=2)
    assert sorted(chosen.tolist()) == list(range(15))


def test_split_and_threshold_rule():
    fit, held = split_normals(10, holdout=0.2, seed=0)
    assert len(held) == 2 and not set(fit) & set(held) and len(fit) + len(held) == 10
    assert threshold_from_normals(np.arange(101.0), 0.99) == pytest.approx(99.0)
    assert threshold_from_normals(np.arange(5.0), 1.0) == 4.0


def test_patchcore_takes_the_papers_levels():
    model = timm.create_model("resnet18", num_classes=0)
    assert [model.feature_info[i]["module"] for i in feature_levels(model)] == ["layer2", "layer3"]


def test_patch_neighbourhood_average_counts_the_zero_padding():
    class TwoLevels(nn.Module):
        def forward_intermediates(self, x, indices, intermediates_only, stop_early):
            return [torch.ones(1, 1, 4, 4), torch.ones(1, 1, 2, 2)]

    patches = patch_features(TwoLevels(), torch.zeros(1), [0, 1]).reshape(4, 4, 2)
    assert patches[0, 0, 0] == pytest.approx(4 / 9) and patches[0, 1, 0] == pytest.approx(6 / 9)
    assert patches[1, 1, 0] == pytest.approx(1.0)


def test_patchcore_scores_blob_above_normal():
    detector = PatchCore("resnet18", "random", coreset_ratio=0.25, input_size=SIZE, device="cpu")
    threshold = fit_with_threshold(detector, textures(10, False, 0), holdout=0.2)
    normal, defect = detector.score(textures(4, False, 1)), detector.score(textures(4, True, 2))
    assert detector.weights == "random"
    assert defect.min() > normal.max()
    assert (defect > threshold).all()


def test_patchcore_anomaly_map_peaks_at_the_defect():
    detector = PatchCore("resnet18", "random", coreset_ratio=0.25, input_size=SIZE, device="cpu")
    detector.fit(textures(8, False, 0))
    image = textures(1, False, 3)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    image[0, 0][(yy - 44) ** 2 + (xx - 16) ** 2 <= 36] = 250  # a blob centred at row 44, column 16
    maps = detector.anomaly_maps(image)
    assert maps.shape == (1, SIZE // 8, SIZE // 8)
    row, column = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert abs(row - 44 / 8) <= 1.5 and abs(column - 16 / 8) <= 1.5


def test_hbos_scores_blob_above_normal():
    detector = PCAHBOS(n_components=16).fit(raw_pixel_features(textures(100, False, 0), size=16))
    normal = detector.score(raw_pixel_features(textures(6, False, 1), size=16))
    defect = detector.score(raw_pixel_features(textures(6, True, 2), size=16))
    assert defect.min() > normal.max()


def test_lbp_of_constant_image_is_one_bin():
    features = lbp_features(np.full((2, 1, 16, 16), 77, np.uint8), radii=(1, 2))
    assert features.shape == (2, 20)
    np.testing.assert_array_equal(features[:, [8, 18]], 1.0)
    assert features.sum() == 4.0


def test_lbp_ignores_global_brightness_and_is_a_histogram():
    images = textures(3, True, 0) // 2  # 50..125, room for a shift
    features = lbp_features(images, radii=(1, 2))
    np.testing.assert_array_equal(features, lbp_features(images + 60, radii=(1, 2)))
    np.testing.assert_allclose(features.reshape(3, 2, 10).sum(2), 1.0, rtol=1e-6)


def test_linear_probe_is_perfect_on_separable_features():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    features = rng.normal(size=(60, 5)) + 10 * np.eye(3, 5)[labels]
    assert (linear_probe(features[::2], labels[::2], features[1::2]) == labels[1::2]).all()


def test_run_baselines_reports_every_method():
    table = run_baselines(imageset(16, 6, 0), imageset(10, 6, 10), "resnet18", "random", input_size=32,
                          patchcore_input_size=32, coreset_ratio=0.25, pca_dim=8, device="cpu")
    assert list(table.columns) == list(COLUMNS)
    assert table.method.tolist() == ["kmeans"] * 3 + ["linear-probe"] + ["pca-hbos"] * 2 + ["patchcore"]
    assert np.isfinite(table[["acc", "nmi", "mdr", "fdr", "eacc", "s_per_image", "fit_s"]].to_numpy()).all()
    detectors = table[table.method.isin(["pca-hbos", "patchcore"])]
    assert np.isfinite(detectors.auroc).all() and (table.note == "").all()
    assert set(table.weights) == {"none", "random"}


def test_run_baselines_skips_detectors_without_defect_flags():
    train, test = imageset(8, 4, 0), imageset(6, 4, 10)
    unflagged = replace(test, defective=np.full(len(test), -1, np.int8))
    table = run_baselines(train, unflagged, methods=("pca-hbos",), device="cpu")
    assert (table.note == "test images have no defect flags").all() and table.acc.isna().all()


def test_run_baselines_adds_the_untrained_backbone_beside_trained_weights(tmp_path):
    weights = tmp_path / "resnet18.pt"
    torch.save(timm.create_model("resnet18", num_classes=0).state_dict(), weights)
    table = run_baselines(imageset(8, 4, 0), imageset(8, 4, 10), "resnet18", str(weights), methods=("kmeans",),
                          input_size=32, pca_dim=4, device="cpu")
    deep = table[table.features == "resnet18"]
    assert deep.weights.tolist() == ["random", f"file:{weights}"]
    assert np.isfinite(deep.acc).all()


def test_detect_fits_on_normals_and_scores_the_inputs():
    normal = raw_pixel_features(textures(100, False, 0), size=16)
    inputs = raw_pixel_features(np.concatenate([textures(6, False, 1), textures(6, True, 2)]), size=16)
    defective = np.r_[np.zeros(6), np.ones(6)].astype(np.int64)
    metrics, scores, fit_s, score_s = detect(PCAHBOS(n_components=16), normal, inputs, defective)
    assert scores.shape == (12,) and scores[6:].min() > scores[:6].max()
    assert metrics["auroc"] == 1.0 and metrics["fdr"] == 0.0 and fit_s > 0 and score_s > 0
