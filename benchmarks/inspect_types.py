"""Detect, then group (issues 12, 21), measured: the type stage on NEU on crops and on whole images, and the whole
pipeline on synthetic piles with the types from the crops' starting features beside k-means on the same features.

    python benchmarks/inspect_types.py neu DATA_ROOT OUT_DIR [--whole-run RUN_DIR] [--crop-share S] [--profile P]
                                                             [--pooling mean|map|region] [--rescore S] [--seed S]
    python benchmarks/inspect_types.py synthetic OUT_DIR [--seeds 1 2 0] [--n-images N] [--image-size S]
                                                         [--profile P] [--pooling mean|map|both] [--whole]

neu: every NEU image is defective (6 types, no defect-free class), so the type stage groups all of them
(`inspect_pile(..., only_flagged=False)`): detection only says where each crop is centred. Crops and whole images
are grouped by the same joint method (the profile's settings, --seed, 6 types given). The whole-image row trains
here too, unless --whole-run names a finished `steelnb train --profile cpu --dataset neu` run folder whose
metrics.json is read instead (say so in the README). Beside them: the number of types the data would choose
(silhouette on the crops' starting features), which costs no training.
synthetic: for each seed a synthetic pile (default: 600 images at 512 px, 20 % defective), detected once, then
grouped (issue 21) with the types chosen and with 6 given (`steelnb inspect`'s defaults: one crop per separate
anomalous region, at most 3; training only on 300 crops or more), with one crop per image (--regions 1), and
with the training forced (--train-min-crops 2: what the label-free signal says and what each answer scores).
Each row: types ACC among the flagged defective images (their strongest region's type) beside k-means (sklearn,
10 inits, mean of 5 seeds) on the starting features of the same crops into the same k (their plain mean
pooling, whatever --pooling the type stage uses: TypesConfig.pooling); the 5-cluster style (defect-free + types).
--whole adds the joint method trained on the whole images, clustered into 7.

Writes OUT_DIR/<name>.csv and .md (caption: data, profile, seed, machine, weights) and <name>.run.json;
synthetic: one table per seed, synthetic_types_seed<S>.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from steelnb.data import UNKNOWN, ImageSet, load_dataset
from steelnb.detect import DetectConfig
from steelnb.inspection import TypesConfig, inspect_pile
from steelnb.inspection.choice import choose_types
from steelnb.inspection.config import POOLINGS
from steelnb.inspection.grouping import clustering, starting_points, train_config
from steelnb.inspection.run import detect_pile
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
    profile, seed = args.profile, args.seed
    data = load_dataset("neu", args.data_root, get_profile(profile).train.get("image_size"))
    detect_config = DetectConfig(dataset="neu", data_root=args.data_root, device="cpu", overlays=0, seed=seed,
                                 rescore=args.rescore)
    types_config = TypesConfig(types=6, profile=profile, crop_share=args.crop_share, pooling=args.pooling)
    started = time.perf_counter()
    found = inspect_pile(detect_config, types_config, data, only_flagged=False)
    seconds = time.perf_counter() - started
    stage = found.metrics["type_stage"]
    training, every = stage.get("training", {}), np.ones(len(data), bool)
    crop_set = ImageSet("neu-crops", found.crops, np.full(len(found.crops), UNKNOWN), np.full(len(found.crops), UNKNOWN,
                        np.int8), (), data.paths)
    settings = train_config(types_config, len(crop_set), 2, seed, "cpu")
    chosen = choose_types(starting_points(crop_set, settings).last, 2, 8, "silhouette",
                          lambda points, k: clustering(points, k, settings).labels)
    crops = evaluate(data.labels, found.table["type"].to_numpy())
    rows = [{"images": f"crops around the anomaly peak ({stage['crop']['side_px']} px of {data.images.shape[-1]}, "
                       f"share {stage['crop']['share_of_shorter_side']}, {stage['crop']['how']}, resized to "
                       f"{stage['crop']['resized_to']})",
             "acc": crops["acc"], "nmi": crops["nmi"], "n": len(data), "k": 6,
             "k_chosen_by_silhouette": chosen.k, "pooling": args.pooling, "detect_rescore": args.rescore,
             "answered_by": f"{training.get('used')}: {training.get('why')}",
             "starting_acc": evaluate(data.labels, found.grouping.starting[main_rows(found, every)])["acc"],
             "seconds": round(seconds, 1),
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
    name = f"neu_types_seed{seed}" if seed else "neu_types"
    _write(args.out_dir, name, pd.DataFrame(rows), caption, args, env, chosen.scores, seed)


KMEANS_SEEDS = 5
VARIANTS = (("types chosen", {}), ("6 types given", {"types": 6}),
            ("6 given, one crop an image (--regions 1)", {"types": 6, "regions": 1}),
            ("6 given, training forced (--train-min-crops 2)", {"types": 6, "train_min_crops": 2}))


def kmeans_on_start(crops: np.ndarray, k: int, profile: str, seed: int) -> list[np.ndarray]:
    """k-means (sklearn, 10 inits) with KMEANS_SEEDS seeds on the crops' starting features (the type stage's:
    its backbone, weights, PCA and L2)."""
    crop_set = ImageSet("crops", crops, np.full(len(crops), UNKNOWN), np.full(len(crops), UNKNOWN, np.int8), (),
                        tuple(map(str, range(len(crops)))))
    points = starting_points(crop_set, train_config(TypesConfig(profile=profile), len(crops), k, seed, "cpu")).last
    return [KMeans(k, n_init=10, random_state=s).fit_predict(points) for s in range(KMEANS_SEEDS)]


def main_rows(found, images: np.ndarray) -> list[int]:
    """The positions (in `found.crops`) of the strongest region's crop of each image of the mask `images`."""
    regions = found.regions.reset_index(drop=True)
    main = regions.index[regions["region"] == 0]
    position = dict(zip(regions.loc[main, "image"], main, strict=True))
    return [position[i] for i in np.flatnonzero(images)]


def synthetic_row(name: str, found, data: ImageSet, profile: str, seed: int, seconds: float) -> dict:
    """One variant's row: types ACC among the flagged defective images beside k-means on the same crops."""
    m, stage = found.metrics, found.metrics["type_stage"]
    training = stage.get("training", {})
    real = (found.table["grouped"] != "").to_numpy() & (data.labels != 0)
    main = found.regions[found.regions["region"] == 0]
    kmeans = []
    if stage["k"] >= 2 and real.any():
        rows = main_rows(found, real)
        for answer in kmeans_on_start(found.crops, stage["k"], profile, seed):
            kmeans.append(evaluate(data.labels[real], answer[rows])["acc"])
    types = m["types"] if isinstance(m["types"], dict) else {}
    answers = {}
    if found.grouping is not None and real.any():
        rows = main_rows(found, real)
        for key in ("starting", "trained"):
            labels = getattr(found.grouping, key)
            if labels is not None:
                answers[key] = evaluate(data.labels[real], labels[rows])["acc"]
    return {"seed": seed, "answer": name, "types_acc": types.get("acc", np.nan),
            "starting_acc": answers.get("starting", np.nan), "trained_acc": answers.get("trained", np.nan),
            "kmeans_start_acc": round(float(np.mean(kmeans)), 4) if kmeans else np.nan,
            "kmeans_std": round(float(np.std(kmeans)), 4) if kmeans else np.nan,
            "types_nmi": types.get("nmi", np.nan), "k": stage["k"], "how": stage["how"],
            "features": training.get("used", ""), "silhouette_start": training.get("silhouette_starting"),
            "silhouette_trained": training.get("silhouette_trained"), "why": training.get("why", ""),
            "flagged": m["label_free"]["flagged"], "false_alarms": types.get("false_alarms", 0),
            "crops": stage["regions"], "multi_region_images": int((found.table["regions"] > 1).sum()),
            "five_acc": m["five_cluster"]["acc"], "five_nmi": m["five_cluster"]["nmi"],
            "decision_acc": m["two_cluster"]["acc"], "auroc": m["auroc"], "seconds": round(seconds, 1),
            "weights": f"detect: {m['run']['weights']}; types: {stage['run']['weights']}",
            "main_crops": len(main)}


def synthetic(args: argparse.Namespace) -> None:
    profile = args.profile
    for seed in args.seeds:
        data = load_dataset("synthetic", image_size=args.image_size, n_images=args.n_images, seed=seed)
        detect_config = DetectConfig(device="cpu", overlays=0, seed=seed)
        started = time.perf_counter()
        detected = detect_pile(detect_config, data)
        detect_s = time.perf_counter() - started
        rows = []
        for name, settings in VARIANTS:
            started = time.perf_counter()
            found = inspect_pile(detect_config, TypesConfig(profile=profile, pooling=args.pooling, **settings), data,
                                 detection=detected[1])
            rows.append(synthetic_row(name, found, data, profile, seed, time.perf_counter() - started))
            print(pd.DataFrame(rows[-1:]).to_string(index=False), flush=True)
        if args.whole:
            result = whole_image_run(data, profile, data.n_classes, seed)
            rows.append({"seed": seed, "answer": f"joint method on whole images ({data.n_classes} clusters)",
                         "five_acc": result["metrics"]["acc"], "five_nmi": result["metrics"]["nmi"],
                         "seconds": round(result["seconds"], 1), "weights": result["run"]["weights"]})
        env = environment("cpu")
        caption = (f"Synthetic pile, seed {seed} ({len(data)} images at {args.image_size} px, "
                   f"{data.summary()['defect_rate']:.0%} defective, 6 types; detected once in {detect_s:.0f} s: "
                   f"{detect_config.method}, {detect_config.backbone} {detect_config.weights}). types_acc: the type "
                   f"stage of steelnb inspect (profile {profile}, pooling {args.pooling}), among the flagged defective "
                   f"images (their strongest region's type); kmeans_start_acc: k-means (sklearn, 10 inits, mean ± std "
                   f"of {KMEANS_SEEDS} seeds) on the plain starting features of the same crops into the same k; "
                   f"features: which answered, with the label-free signal (mean silhouette at that k, starting / "
                   f"trained). Targets: types ACC >= 0.90 and never below k-means. Machine: 2-core CPU shared with "
                   f"other work ({env['machine']}), one thread; commit {env['commit']}.")
        _write(args.out_dir, f"synthetic_types_seed{seed}", pd.DataFrame(rows), caption, args, env, seed=seed)


def _write(out_dir: str, name: str, table: pd.DataFrame, caption: str, args: argparse.Namespace, env: dict,
           choice: pd.DataFrame | None = None, seed: int = 0) -> None:
    write_table(table, out_dir, name, caption)
    if choice is not None:
        write_table(choice, out_dir, f"{name}_type_choice", "Silhouette of each k on the crops' starting features.")
    arguments = {key: value for key, value in vars(args).items() if key != "func"}
    record = {"benchmark": name, "arguments": arguments, "profile": args.profile,
              "profile_settings": asdict(get_profile(args.profile)), "seed": seed, "environment": env}
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
    on_neu.add_argument("--seed", type=int, default=0, help="detection's and the type stage's (written _seed<S> when "
                        "not 0)")
    on_neu.add_argument("--rescore", type=float, default=DetectConfig.rescore,
                        help="detection's second pass (DetectConfig.rescore; 0: one pass)")
    on_neu.add_argument("--pooling", default=TypesConfig.pooling, choices=POOLINGS,
                        help="the type stage's starting features (TypesConfig.pooling)")
    on_neu.set_defaults(func=neu)
    on_synthetic = sets.add_parser("synthetic")
    on_synthetic.add_argument("out_dir")
    on_synthetic.add_argument("--n-images", type=int, default=600)
    on_synthetic.add_argument("--image-size", type=int, default=DetectConfig.max_side)
    on_synthetic.add_argument("--profile", default="cpu")
    on_synthetic.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 0], help="piles, one table each")
    on_synthetic.add_argument("--pooling", default=TypesConfig.pooling, choices=POOLINGS,
                              help="the type stage's starting features (TypesConfig.pooling)")
    on_synthetic.add_argument("--whole", action="store_true", help="also the joint method on the whole images")
    on_synthetic.set_defaults(func=synthetic)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
