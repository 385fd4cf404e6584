"""Detect, then group (issue 12), measured: the type stage on NEU on crops and on whole images, and the whole
pipeline on the synthetic pile beside the whole-image clustering of the same pile.

    python benchmarks/inspect_types.py neu DATA_ROOT OUT_DIR [--whole-run RUN_DIR] [--crop-share S] [--profile P]
    python benchmarks/inspect_types.py synthetic OUT_DIR [--n-images N] [--image-size S] [--profile P]

neu: every NEU image is defective (6 types, no defect-free class), so the type stage groups all of them
(`inspect_pile(..., only_flagged=False)`): detection only says where each crop is centred. Crops and whole images
are grouped by the same joint method (the profile's settings, seed 0, 6 types given). The whole-image row trains
here too, unless --whole-run names a finished `steelnb train --profile cpu --dataset neu` run folder whose
metrics.json is read instead (say so in the README). Beside them: the number of types the data would choose
(silhouette on the crops' starting features), which costs no training.
synthetic: a synthetic pile (default: as `steelnb inspect synthetic` reads it, 600 images at 512 px, 20 %
defective) inspected with the number of types chosen and with 6 given, and the joint method trained on the whole
images of the same pile and clustered into 7 (defect-free + 6 types): the 5-cluster-style comparison.

Writes OUT_DIR/<name>.csv and .md (caption: data, profile, seed, machine, weights) and <name>.run.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd

from steelnb.data import UNKNOWN, ImageSet, load_dataset
from steelnb.detect import DetectConfig
from steelnb.inspection import TypesConfig, inspect_pile
from steelnb.inspection.grouping import choose_at_start, train_config
from steelnb.method.config import TrainConfig
from steelnb.method.train import train
from steelnb.metrics import evaluate
from steelnb.profiles import get_profile
from steelnb.study.records import environment, write_table

KEYS = ("nmi", "acc", "mdr", "fdr", "eacc")


def whole_image_run(data: ImageSet, profile: str, k: int, seed: int = 0) -> dict:
    """The joint method on the whole images (the profile's settings, `k` clusters in the answer): metrics.json."""
    settings = {key: v for key, v in get_profile(profile).train.items() if key != "max_per_class"}
    with tempfile.TemporaryDirectory() as scratch:
        config = TrainConfig.from_dict({**settings, "dataset": data.name, "eval_clusters": k, "seed": seed,
                                        "out_dir": scratch})
        started = time.perf_counter()
        result = train(config, data)
        result["seconds"] = time.perf_counter() - started
    return result


def neu(args: argparse.Namespace) -> None:
    profile, seed = args.profile, 0
    data = load_dataset("neu", args.data_root, get_profile(profile).train.get("image_size"))
    detect_config = DetectConfig(dataset="neu", data_root=args.data_root, device="cpu", overlays=0, seed=seed)
    types_config = TypesConfig(types=6, profile=profile, crop_share=args.crop_share)
    started = time.perf_counter()
    found = inspect_pile(detect_config, types_config, data, only_flagged=False)
    seconds = time.perf_counter() - started
    stage = found.metrics["type_stage"]
    crop_set = ImageSet("neu-crops", found.crops, np.full(len(found.crops), UNKNOWN), np.full(len(found.crops), UNKNOWN,
                        np.int8), (), data.paths)
    chosen = choose_at_start(crop_set, replace(types_config, types=None),
                             train_config(types_config, len(crop_set), 2, seed, "cpu"))
    crops = evaluate(data.labels, found.table["type"].to_numpy())
    rows = [{"images": f"crops around the anomaly peak ({stage['crop']['side_px']} px of {data.images.shape[-1]}, "
                       f"share {stage['crop']['share_of_shorter_side']}, {stage['crop']['how']}, resized to "
                       f"{stage['crop']['resized_to']})",
             "acc": crops["acc"], "nmi": crops["nmi"], "n": len(data), "k": 6,
             "k_chosen_by_silhouette": chosen.k, "seconds": round(seconds, 1),
             "weights": f"detect: {found.metrics['run']['weights']}; types: {stage['run']['weights']}"}]
    if args.whole_run:
        result = json.loads((Path(args.whole_run) / "metrics.json").read_text())
        result["seconds"], source = result["run"]["wall_s"], f"read from {args.whole_run}"
    else:
        result, source = whole_image_run(data, profile, 6, seed), "trained here"
    rows.append({"images": f"whole images ({source})", "acc": result["metrics"]["acc"],
                 "nmi": result["metrics"]["nmi"], "n": len(data), "k": 6, "k_chosen_by_silhouette": np.nan,
                 "seconds": round(result["seconds"], 1), "weights": result["run"]["weights"]})
    env = environment("cpu")
    caption = (f"NEU, all {len(data)} images (6 defect types, every image defective): the type stage of steelnb "
               f"inspect (the joint method, profile {profile}, seed {seed}, 6 types given) on crops centred on each "
               f"image's anomaly peak ({detect_config.method} detection, {detect_config.backbone} "
               f"{detect_config.weights}, strides {detect_config.strides}) and on the whole images. Target: ACC >= "
               f"0.95 on crops. Machine: {env['machine']}, device {env['device']}; commit {env['commit']}.")
    _write(args.out_dir, "neu_types", pd.DataFrame(rows), caption, args, env, chosen.scores)


def synthetic(args: argparse.Namespace) -> None:
    profile, seed = args.profile, 0
    data = load_dataset("synthetic", image_size=args.image_size, n_images=args.n_images, seed=seed)
    detect_config = DetectConfig(device="cpu", overlays=0, seed=seed)
    rows = []
    for types in (None, 6):
        started = time.perf_counter()
        found = inspect_pile(detect_config, TypesConfig(types=types, profile=profile), data)
        m, stage = found.metrics, found.metrics["type_stage"]
        types_scores = m["types"] if isinstance(m["types"], dict) else {}
        rows.append({"answer": f"detect, then group (types {'chosen' if types is None else 'given'})",
                     **{key: m["five_cluster"][key] for key in KEYS}, "clusters": stage["k"] + 1,
                     "types_acc": types_scores.get("acc", np.nan), "types_nmi": types_scores.get("nmi", np.nan),
                     "flagged": m["label_free"]["flagged"], "false_alarms": types_scores.get("false_alarms", 0),
                     "decision_acc": m["two_cluster"]["acc"], "decision_mdr": m["two_cluster"]["mdr"],
                     "decision_fdr": m["two_cluster"]["fdr"], "auroc": m["auroc"], "how": stage["how"],
                     "seconds": round(time.perf_counter() - started, 1),
                     "weights": f"detect: {m['run']['weights']}; types: {stage['run']['weights']}"})
    result = whole_image_run(data, profile, data.n_classes, seed)
    whole = result["metrics"]  # scored against the classes, defect-free the normal one (paper's definitions)
    rows.append({"answer": f"joint method on whole images ({data.n_classes} clusters)",
                 **{key: whole[key] for key in KEYS}, "clusters": data.n_classes,
                 "decision_acc": result["decision"]["acc"], "decision_mdr": result["decision"]["mdr"],
                 "decision_fdr": result["decision"]["fdr"], "seconds": round(result["seconds"], 1),
                 "weights": result["run"]["weights"]})
    env = environment("cpu")
    caption = (f"Synthetic pile ({len(data)} images at {args.image_size} px, {data.summary()['defect_rate']:.0%} "
               f"defective, 6 types; seed {seed}; the generator of this commit): defect-free + types (the 5-cluster "
               f"style, NMI/ACC/MDR/FDR/EACC as the paper defines them) of detect-then-group beside the joint method "
               f"clustering the whole images into {data.n_classes}; types_acc: among the flagged defective images. "
               f"Detection: {detect_config.method}, {detect_config.backbone} {detect_config.weights}; type stage and "
               f"whole-image run: profile {profile}. Targets: types ACC >= 0.90; 5-cluster-style above the whole-image "
               f"clustering. Machine: {env['machine']}, device {env['device']}; commit {env['commit']}.")
    _write(args.out_dir, "synthetic_pipeline", pd.DataFrame(rows), caption, args, env)


def _write(out_dir: str, name: str, table: pd.DataFrame, caption: str, args: argparse.Namespace, env: dict,
           choice: pd.DataFrame | None = None) -> None:
    write_table(table, out_dir, name, caption)
    if choice is not None:
        write_table(choice, out_dir, f"{name}_type_choice", "Silhouette of each k on the crops' starting features.")
    arguments = {key: value for key, value in vars(args).items() if key != "func"}
    record = {"benchmark": name, "arguments": arguments, "profile": args.profile,
              "profile_settings": asdict(get_profile(args.profile)), "seed": 0, "environment": env}
    (Path(out_dir) / f"{name}.run.json").write_text(json.dumps(record, indent=2, default=str))
    print(table.to_markdown(index=False, floatfmt=".4f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sets = parser.add_subparsers(dest="set", required=True)
    on_neu = sets.add_parser("neu")
    on_neu.add_argument("data_root")
    on_neu.add_argument("out_dir")
    on_neu.add_argument("--whole-run", help="a finished whole-image run folder to read instead of training one")
    on_neu.add_argument("--crop-share", type=float, help="crop share (default: from the maps)")
    on_neu.add_argument("--profile", default="cpu")
    on_neu.set_defaults(func=neu)
    on_synthetic = sets.add_parser("synthetic")
    on_synthetic.add_argument("out_dir")
    on_synthetic.add_argument("--n-images", type=int, default=600)
    on_synthetic.add_argument("--image-size", type=int, default=DetectConfig.max_side)
    on_synthetic.add_argument("--profile", default="cpu")
    on_synthetic.set_defaults(func=synthetic)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
