"""PatchCore on DAGM class 1 at several image sizes: how much the faint smudges need the native 512 px.

Each size decodes the images at that size (the 512 x 512 originals resized once, antialiased) and feeds them
to PatchCore unchanged; everything else as in `anomalib_patchcore.py` (same split, threshold rule, backbone).

    python benchmarks/dagm_resolution.py DATA_ROOT OUT_DIR [SIZES BACKBONE WEIGHTS CORESET_RATIO]

SIZES defaults to "200,224,320,512". 200 px is the cpu profile's image size, but this is not Table 5's setting:
07_dagm feeds those 200 px images to PatchCore upsampled to 224 px, on its own draw (486 of the 575 images).
"""

from __future__ import annotations

import sys

import pandas as pd

from steelnb.baselines import PatchCore, detect
from steelnb.data import load_dataset, protocols
from steelnb.study.records import environment, write_table


def measure(size: int, data_root: str, backbone: str, weights: str, ratio: float) -> dict:
    """One row: PatchCore fitted and scored on DAGM class 1 decoded at `size` px."""
    data = load_dataset("dagm", data_root, size, classes=(1,))
    train, test = protocols.stratified_split(data, 0.5, seed=0)
    normal = train.images[train.defective == 0]
    detector = PatchCore(backbone, weights, ratio, input_size=size, device="cpu", seed=0)
    metrics, _, fit_s, score_s = detect(detector, normal, test.images, test.defective)
    return {"image_size": size, **{k: metrics[k] for k in ("auroc", "acc", "mdr", "fdr", "eacc")}, "fit_s": fit_s,
            "s_per_image": score_s / len(test), "n_test": len(test),
            "n_test_defective": int(test.defective.sum()), "weights": detector.weights}


def main(data_root: str, out_dir: str, sizes: str = "200,224,320,512", backbone: str = "efficientnet_lite0",
         weights: str = "offline", coreset_ratio: str = "0.01") -> None:
    rows = [measure(int(size), data_root, backbone, weights, float(coreset_ratio)) for size in sizes.split(",")]
    table = pd.DataFrame(rows)
    env = environment("cpu")
    caption = (f"PatchCore (steelnb) on DAGM 2007 class 1 (test split only, real images) decoded at each size: "
               f"stratified half split, seed 0; fitted on the defect-free train images (80 % fit, 20 % held out for "
               f"the 0.99-quantile threshold). {backbone}, weights {table.weights[0]}, coreset ratio {coreset_ratio}, "
               f"seed 0. {env['machine']}, device {env['device']}, commit {env['commit']}.")
    write_table(table, out_dir, "dagm_resolution", caption)
    print(caption)
    print(table.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main(*sys.argv[1:])
