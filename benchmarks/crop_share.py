"""How large the type stage's crop should be (issue 12): a fixed share of the shorter side against the share from
the anomaly maps (`steelnb.inspection.crops.map_share`, `CONTEXT` typical defect extents), scored by how well
k-means on untrained features of the crops tells the types apart (a cheap stand-in for the joint method).

    python benchmarks/crop_share.py OUT_DIR [--seeds 1 2] [--neu DATA_ROOT]

Piles: synthetic piles of 600 images at 256 px with the given seeds (default 1 and 2: NOT seed 0, the pile that
`make run` and benchmarks/inspect_types.py measure, so the choice of `CONTEXT` is not made on the data it is
reported on), and NEU (every image, all defective) when --neu is given. Each pile: `steelnb detect`'s defaults
(self, offline EfficientNet-Lite2, stride 16), the flagged images (NEU: every image) cropped around their peaks at
each share, resized to 128 px, offline EfficientNet-Lite0 features at 224 px, PCA 32 + L2, k-means into the
number of types (6) with 5 seeds, as inspect groups them (false alarms included); ACC (Hungarian) among the truly
defective images, mean and std over the seeds. The extent is measured on the grouped images, as inspect does.
Writes OUT_DIR/crop_share.csv / .md and crop_share.run.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from steelnb.backbones import create_backbone, extract_features
from steelnb.data import ImageSet, load_dataset
from steelnb.detect import DetectConfig
from steelnb.inspection.crops import defect_crops, region_extents
from steelnb.inspection.run import detect_pile
from steelnb.metrics import evaluate
from steelnb.study.records import environment, write_table

FIXED = (0.75, 1.0)  # the old default, and the whole shorter side
CONTEXTS = (1.0, 2.0)  # the crop's side in median defect extents: the region alone, and the region with its context
TYPES, CROP_PX, PCA_DIM, KMEANS_SEEDS = 6, 128, 32, 5


def pile_rows(name: str, data: ImageSet, detect_config: DetectConfig, flagged_only: bool) -> list[dict]:
    """One row per crop share on `data`: the share, how it was set, types ACC mean and std over k-means seeds."""
    _, detection = detect_pile(detect_config, data)
    table = detection.table
    chosen = np.flatnonzero(table["defective"] == 1) if flagged_only else np.arange(len(data))  # as inspect groups
    defective = data.defective[chosen] == 1 if data.has_defect_flags else np.ones(len(chosen), bool)
    height, width = data.images.shape[-2:]
    extent = float(np.median(region_extents(detection.maps[chosen], height, width)))
    shares = [(share, "fixed") for share in FIXED]
    shares += [(min(1.0, c * extent), f"{c:g} x median extent {extent:.3f}") for c in CONTEXTS]
    backbone = create_backbone("efficientnet_lite0", "offline")
    rows = []
    for share, how in shares:
        crops = defect_crops(data.images[chosen], table["peak_y"].to_numpy()[chosen],
                             table["peak_x"].to_numpy()[chosen], share, CROP_PX)
        features = PCA(PCA_DIM, random_state=0).fit_transform(extract_features(backbone, crops, 224, device="cpu"))
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        answers = [KMeans(TYPES, n_init=10, random_state=s).fit_predict(features) for s in range(KMEANS_SEEDS)]
        accs = [evaluate(data.labels[chosen][defective], answer[defective])["acc"] for answer in answers]
        rows.append({"pile": name, "grouped": len(chosen), "defective": int(defective.sum()),
                     "share": round(share, 3), "how": how,
                     "types_acc": round(float(np.mean(accs)), 3), "std": round(float(np.std(accs)), 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--neu", metavar="DATA_ROOT", help="also NEU, read from DATA_ROOT/neu")
    args = parser.parse_args()
    rows = []
    for seed in args.seeds:
        data = load_dataset("synthetic", image_size=256, n_images=600, seed=seed)
        rows += pile_rows(f"synthetic seed {seed}", data, DetectConfig(device="cpu", overlays=0), flagged_only=True)
    if args.neu:
        data = load_dataset("neu", args.neu, 200)
        config = DetectConfig(dataset="neu", data_root=args.neu, device="cpu", overlays=0)
        rows += pile_rows("NEU", data, config, flagged_only=False)
    env = environment("cpu")
    caption = ("Types ACC (k-means on untrained offline EfficientNet-Lite0 features of the crops, mean ± std of 5 "
               "k-means seeds) against the crop's share of the shorter side: fixed, or from the maps. Synthetic: the "
               "flagged defective images of 600 at 256 px; NEU: all 1,800 images at 200 px. Detection: steelnb "
               f"detect's defaults. Machine: {env['machine']}, device {env['device']}; commit {env['commit']}.")
    write_table(pd.DataFrame(rows), args.out_dir, "crop_share", caption)
    record = {"benchmark": "crop_share", "arguments": vars(args), "environment": env}
    (Path(args.out_dir) / "crop_share.run.json").write_text(json.dumps(record, indent=2, default=str))
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
