"""NEU clustering baselines on the paper's 1500 / 300 split: k-means on pixels, LBP and backbone features,
and the supervised linear probe (the ceiling). The anomaly detectors need defect-free images: NEU has none.

    python benchmarks/neu_baselines.py DATA_ROOT OUT_DIR [BACKBONE WEIGHTS]
"""

from __future__ import annotations

import sys
import time

from steelnb.baselines import run_baselines
from steelnb.data import load_dataset, protocols
from steelnb.study.records import environment, write_table


def main(data_root: str, out_dir: str, backbone: str = "efficientnet_lite0", weights: str = "offline") -> None:
    started = time.perf_counter()
    train, test = protocols.neu_split(load_dataset("neu", data_root, 200), seed=0)
    table = run_baselines(train, test, backbone, weights, methods=("kmeans", "linear-probe"), input_size=224,
                          seed=0, device="cpu")
    env = environment("cpu")
    caption = (f"NEU, the paper's split (1500 train / 300 test, seed 0); k-means clusters the 300 test images into "
               f"k = 6, the probe trains on the 1500; features at 224 px. {env['machine']}, {env['device']}; "
               f"{time.perf_counter() - started:.0f} s.")
    write_table(table.drop(columns=["mdr", "fdr", "eacc", "auroc"]), out_dir, "neu_baselines", caption)
    print(table.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main(*sys.argv[1:])
