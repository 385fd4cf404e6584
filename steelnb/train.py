"""The joint loop of Bai et al. (2024): cluster features into pseudo-labels, train on them, repeat.

One epoch:
  1. extract features of every image with the current extractor (one pass, eval mode);
  2. reduce them with PCA, L2-normalise them and cluster into K pseudo-labels (the same pass also gives the
     epoch's NMI to the previous assignment and to the true labels, so nothing is extracted twice);
  3. re-initialise the classifier head and train on multi-crop views against the pseudo-labels,
     drawn evenly over clusters; the head steps every iteration, the extractor once every
     `extractor_every` iterations (paper: 10; 1 is plain DeepCluster), and between those the
     extractor runs forward only;
  4. checkpoint.
After the last epoch the features are clustered once more into `eval_clusters` groups: that is the
answer (`assignments.csv`), scored against the labels where they exist (`metrics.json`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import timm
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA
from torch import nn

from . import metrics, validation
from .backbones import Backbone, create_backbone, device_name, extract_features, resolve_device
from .cluster import METHODS, Clustering, Preprocessor, cluster, uniform_label_sample
from .data import ImageSet, load_dataset, protocols
from .errors import SteelnbError
from .progress import phase, progress
from .runfolder import atomic_path, read_state
from .validation import Above, AtLeast, ConfigError, Matches, NonEmpty, OneOf
from .views import MultiCrop

# Every file a run writes into out_dir; model.pt last of train()'s, so that it means "finished". report.html and
# its pictures (the folder report_files/) follow it in `steelnb train`; `steelnb report` can write them again.
RUN_FILES = ("config.json", "skipped.csv", "history.csv", "checkpoint.pt", "assignments.csv", "metrics.json",
             "model.pt", "report.html", "report_files")
CHECKPOINT_KEYS = ("epoch", "config", "backbone", "optimizer", "scheduler", "history", "previous")
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "radam": torch.optim.RAdam,
              "nadam": torch.optim.NAdam, "sgd": torch.optim.SGD}
HEADS = ("linear", "cosine", "centroid")
DEVICES = Matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda or cuda:N")


def timm_model(name: str) -> str | None:
    """A rule (see steelnb.validation): `name` must be a model timm can create."""
    return None if timm.is_model(name) else "must be a timm model name (see timm.list_models())"


Positive = Annotated[int, AtLeast(1)]
MaybePositive = Annotated[int | None, AtLeast(1)]


@dataclass
class TrainConfig:
    """Everything one run depends on; saved as config.json beside its results.

    Every field is checked on creation against its annotation (type, and the range or choices in
    `Annotated`, see `steelnb.validation`); `from_dict` names the source of a bad value.
    """

    dataset: Annotated[str, NonEmpty] = "synthetic"
    data_root: str | None = None
    image_size: MaybePositive = None  # decode size S; None: the data set's own (NEU 200, DAGM 256, synthetic 128)
    max_per_class: MaybePositive = None  # cap images per class (tiny subsets for CI)
    labels: Annotated[str, OneOf(("classes", "defect"))] = "classes"  # score against classes or defect / defect-free
    backbone: Annotated[str, timm_model] = "resnet18"
    weights: Annotated[str, NonEmpty] = "random"  # random | timm | offline | path to a state dict
    n_clusters: Annotated[int, AtLeast(2)] = 7  # K of the pseudo-labels while training (may exceed the classes)
    eval_clusters: Annotated[int | None, AtLeast(2)] = None  # K of the answer; None: number of classes, else n_clusters
    clusterer: Annotated[str, OneOf(METHODS)] = "minibatch"
    cluster_batch_size: Positive = 256  # Mini-Batch K-Means batch (paper 256; init_size 3x, reassignment_ratio 0.01)
    pca_dim: MaybePositive = 128
    whiten: bool = False  # PCA-whitening (DeepCluster's) hurt k-means on NEU: see cluster.Preprocessor
    n_global: Positive = 2
    global_size: Positive = 112
    eval_size: MaybePositive = None  # input size for feature extraction (None: global_size)
    n_local: Annotated[int, AtLeast(0)] = 4
    local_size: Positive = 48
    head: Annotated[str, OneOf(HEADS)] = "linear"  # linear (the paper's) | cosine (eq. 11) | centroid (see make_head)
    temperature: Annotated[float, Above(0)] = 0.1
    epochs: Positive = 10
    batch_size: Positive = 32
    steps_per_epoch: MaybePositive = None  # None: one pass over the data set
    extractor_every: Positive = 10
    optimizer: Annotated[str, OneOf(tuple(OPTIMIZERS))] = "radam"
    lr: Annotated[float, Above(0)] = 1e-3
    head_lr: Annotated[float, Above(0)] = 1e-2
    weight_decay: Annotated[float, AtLeast(0)] = 1e-4
    warmup_epochs: Annotated[float, AtLeast(0)] = 1.0
    seed: Annotated[int, AtLeast(0)] = 0
    device: Annotated[str, DEVICES] = "auto"
    out_dir: Annotated[str, NonEmpty] = "runs/latest"
    dataset_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        validation.check(self)

    @property
    def feature_size(self) -> int:
        """Input size of the features clustered and scored: `eval_size`, else `global_size`."""
        return self.eval_size or self.global_size

    @classmethod
    def from_dict(cls, values: dict, sources: dict[str, str] | None = None, source: str = "config") -> TrainConfig:
        """A config from `values`; an error names the field and where its value came from: `sources[field]`,
        else `source` (e.g. the --config file)."""
        return validation.from_dict(cls, values, sources, source)


class TrainingDiverged(SteelnbError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


def make_head(num_features: int, n_clusters: int, kind: str, temperature: float,
              features: np.ndarray | None = None, pseudo: np.ndarray | None = None) -> nn.Module:
    """A fresh classifier over pseudo-labels.

    linear: the paper's softmax classifier, one logit (BCE) for K = 2; cosine: eq. 11, random
    prototypes; centroid: eq. 11 with the prototypes set to the pseudo-label centroids of `features`.
    """
    if kind == "linear":
        return nn.Linear(num_features, 1 if n_clusters == 2 else n_clusters)
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}; choose one of {HEADS}")
    head = CosineHead(num_features, n_clusters, temperature)
    if kind == "centroid":
        if features is None or pseudo is None:
            raise ValueError("the centroid head needs the epoch's features and pseudo-labels")
        head.init_from_centroids(features, pseudo)
    return head


class CosineHead(nn.Module):
    """Logits = cos(feature - center, w_k) / temperature (the paper's eq. 11).

    `center` (the mean feature when initialised from centroids, else zero) keeps cosines informative
    for backbones whose features are all positive (after ReLU).
    """

    def __init__(self, num_features: int, outputs: int, temperature: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(outputs, num_features) / math.sqrt(num_features))
        self.register_buffer("center", torch.zeros(num_features))
        self.temperature = temperature

    @torch.no_grad()
    def init_from_centroids(self, features: np.ndarray, pseudo: np.ndarray) -> None:
        """Prototypes = normalised mean of the centred, normalised features of each pseudo-label."""
        x = torch.from_numpy(features).float()
        self.center.copy_(x.mean(0))
        x = F.normalize(x - self.center, dim=1)
        labels = torch.from_numpy(pseudo).long()
        sums = torch.zeros_like(self.weight).index_add_(0, labels, x)
        self.weight.copy_(F.normalize(sums, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x - self.center, dim=1) @ F.normalize(self.weight, dim=1).T / self.temperature


def pseudo_label_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against pseudo-labels; BCEWithLogits when the head has one output (K = 2)."""
    if logits.shape[1] == 1:
        return F.binary_cross_entropy_with_logits(logits[:, 0], targets.float())
    return F.cross_entropy(logits, targets)


def make_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int):
    """LinearLR warm-up, then CosineAnnealingLR to the end (stepped once per extractor update)."""
    warmup_steps = max(1, min(warmup_steps, total_steps - 1))
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warmup_steps)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps))
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


def target_labels(data: ImageSet, config: TrainConfig) -> tuple[np.ndarray | None, tuple[str, ...], int | None]:
    """The truth the run is scored against (or None), its class names, and the defect-free class index."""
    if config.labels == "defect":
        if not data.has_defect_flags:
            return None, (), None
        return (data.defective == 1).astype(np.int64), ("defect-free", "defective"), 0
    if not data.has_labels:
        return None, data.class_names, None
    normal_name = data.meta.get("normal_class") or "defect-free"  # a folder's is named by --normal-class
    normal = data.class_names.index(normal_name) if normal_name in data.class_names else None
    return data.labels, data.class_names, normal if normal in data.labels else None


def decision_absent(data: ImageSet) -> str | None:
    """Why the label-free defect decision (largest cluster = defect-free) is not scored on `data`, or None when
    it is: only data with both defect-free and defective images can score it."""
    if data.has_defect_flags:
        if (data.defective == 1).all():
            return (f"none: every image of {data.name} is defective (it has no defect-free class), so calling the "
                    "largest cluster defect-free would mean nothing")
        if (data.defective == 0).all():
            return f"not scored: every image of {data.name} is defect-free"
        return None
    if data.has_labels:
        return (f"not scored: {data.name} names no defect-free class among {list(data.class_names)}; "
                "--normal-class NAME names one")
    return f"not scored: {data.name} has no labels (assignments.csv calls the largest cluster defect-free)"


class Trainer:
    """Holds one run: data, extractor, optimiser, history; `run()` goes from the last checkpoint to the end."""

    def __init__(self, config: TrainConfig, data: ImageSet) -> None:
        if len(data) < 2:
            raise ValueError(f"{data.name}: {len(data)} image(s); the method needs at least 2")
        self.config = config
        self.data = data
        self.out = Path(config.out_dir)
        self.device = resolve_device(config.device)
        torch.manual_seed(config.seed)
        self.backbone: Backbone = create_backbone(config.backbone, config.weights)
        self.backbone.model.to(self.device)
        self.images = torch.from_numpy(data.images).to(self.device)
        self.views = MultiCrop(n_global=config.n_global, global_size=config.global_size, n_local=config.n_local,
                               local_size=config.local_size, mean=self.backbone.mean, std=self.backbone.std)
        self.truth, self.class_names, self.normal_label = target_labels(data, config)
        self._check_cluster_counts()
        self.steps = config.steps_per_epoch or max(1, len(data) // config.batch_size)
        extractor_steps = config.epochs * math.ceil(self.steps / config.extractor_every)
        self.optimizer = self._optimizer(self.backbone.model.parameters(), config.lr)
        self.scheduler = make_scheduler(
            self.optimizer, int(config.warmup_epochs * extractor_steps / max(config.epochs, 1)), extractor_steps)
        self.epoch = 0
        self.elapsed_s = 0.0  # seconds spent in the epochs done, over every session of a resumed run
        self.history: list[dict] = []
        self.previous: np.ndarray | None = None

    def _check_cluster_counts(self) -> None:
        """ConfigError, before any work, when a cluster count exceeds the number of images."""
        n, name = len(self.data), self.data.name
        if self.config.n_clusters > n:
            raise ConfigError(f"--n-clusters {self.config.n_clusters} is more than the {n} images of {name}: "
                              "lower --n-clusters or add images")
        if self.eval_clusters() > n:
            raise ConfigError(f"the answer's {self.eval_clusters()} clusters (--eval-clusters, default: the number of "
                              f"classes) are more than the {n} images of {name}: lower --eval-clusters or add images")

    def _optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        name = self.config.optimizer
        extra = {"momentum": 0.9} if name == "sgd" else {}
        return OPTIMIZERS[name](params, lr=lr, weight_decay=self.config.weight_decay, **extra)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> dict:
        """Train the remaining epochs, then cluster the final features; returns the final metrics."""
        self.out.mkdir(parents=True, exist_ok=True)
        _write_text(self.out / "config.json", json.dumps(asdict(self.config), indent=2))
        _write_csv(self.out / "skipped.csv", skipped_table(self.data))
        started, before = time.perf_counter(), self.elapsed_s
        for epoch in range(self.epoch, self.config.epochs):
            self._run_epoch(epoch)
            self.epoch, self.elapsed_s = epoch + 1, before + time.perf_counter() - started
            self.save_checkpoint()
        return self.finish(before + time.perf_counter() - started)

    def _run_epoch(self, epoch: int) -> None:
        seed = _epoch_seed(self.config.seed, epoch)
        times = {}
        step = f"epoch {epoch + 1}/{self.config.epochs}"
        t0 = time.perf_counter()
        features = self.features(f"{step}: features")
        times["extract_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        with phase(f"{step}: clustering into {self.config.n_clusters}"):
            points = self.preprocessor(features, seed).transform(features)
            clustering = self.cluster(points, self.config.n_clusters, seed)
        times["cluster_s"] = time.perf_counter() - t0
        row = {"epoch": epoch, **self._agreement(points, clustering.labels, seed)}
        self.previous = clustering.labels
        t0 = time.perf_counter()
        row["loss"] = self._train_on(features, clustering.labels, seed, epoch)
        times["train_s"] = time.perf_counter() - t0
        row.update(times, lr=self.optimizer.param_groups[0]["lr"], reseeded=clustering.reseeded)
        self.history.append(row)
        _write_csv(self.out / "history.csv", pd.DataFrame(self.history))

    def preprocessor(self, features: np.ndarray, seed: int) -> Preprocessor:
        return Preprocessor.fit(features, self.config.pca_dim, whiten=self.config.whiten, seed=seed)

    def cluster(self, points: np.ndarray, k: int, seed: int) -> Clustering:
        return cluster(points, k, self.config.clusterer, seed=seed, batch_size=self.config.cluster_batch_size)

    def features(self, desc: str = "features") -> np.ndarray:
        return extract_features(self.backbone, self.data.images, self.config.feature_size,
                                batch_size=max(self.config.batch_size, 64), device=self.device, desc=desc)

    def _agreement(self, points: np.ndarray, labels: np.ndarray, seed: int) -> dict:
        """NMI of the pseudo-labels to the previous epoch's; where the truth is known, NMI/ACC of the
        answer the run would give if it stopped here (the features clustered into `eval_clusters`)."""
        row = {"nmi_prev": metrics.evaluate(self.previous, labels)["nmi"] if self.previous is not None else np.nan}
        if self.truth is not None:
            k = self.eval_clusters()
            answer = labels if k == self.config.n_clusters else self.cluster(points, k, seed).labels
            scores = metrics.evaluate(self.truth, answer)
            row.update(nmi=scores["nmi"], acc=scores["acc"])
        return row

    def _train_on(self, features: np.ndarray, pseudo: np.ndarray, seed: int, epoch: int) -> float:
        """One epoch of head + (every k steps) extractor updates; returns the mean loss."""
        config = self.config
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same views on any device
        head = make_head(self.backbone.num_features, config.n_clusters, config.head, config.temperature,
                         features, pseudo).to(self.device)
        head_optimizer = self._optimizer(head.parameters(), config.head_lr)
        order = uniform_label_sample(pseudo, self.steps * config.batch_size, rng)
        targets = torch.from_numpy(pseudo).to(self.device)
        model = self.backbone.model.train()
        losses = []
        for step in progress(range(self.steps), f"epoch {epoch + 1}/{config.epochs}: training", unit="step"):
            index = torch.from_numpy(order[step * config.batch_size:(step + 1) * config.batch_size]).to(self.device)
            crops = self.views(self.images[index], generator)
            update_extractor = step % config.extractor_every == 0
            # Between extractor updates the extractor runs forward only (no graph kept); it stays in train
            # mode, so batch-norm statistics follow every batch, as they would with k = 1.
            with torch.set_grad_enabled(update_extractor):
                features = [model(batch) for batch in _group_by_size(crops)]
            logits = head(torch.cat(features))
            loss = pseudo_label_loss(logits, targets[index].repeat(len(crops)))
            if not torch.isfinite(loss):
                kept = (f"the last good checkpoint {self.out / 'checkpoint.pt'} (after epoch {epoch - 1}) is kept"
                        if epoch else "no epoch finished, so there is no checkpoint")
                raise TrainingDiverged(f"loss became {loss.item()} at epoch {epoch}, step {step}; {kept}. "
                                       "Lower --lr or --head-lr.")
            head_optimizer.zero_grad(set_to_none=True)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            head_optimizer.step()
            if update_extractor:
                self.optimizer.step()
                self.scheduler.step()
            losses.append(loss.item())
        return float(np.mean(losses))

    # -- the answer -------------------------------------------------------------------------------
    def eval_clusters(self) -> int:
        if self.config.eval_clusters:
            return self.config.eval_clusters
        return len(self.class_names) if self.truth is not None else self.config.n_clusters

    def finish(self, wall_s: float) -> dict:
        """Cluster the final features into the answer; write assignments, metrics and the model."""
        features = self.features("final features")
        with phase(f"final clustering into {self.eval_clusters()}"):
            preprocessor = self.preprocessor(features, self.config.seed)
            points = preprocessor.transform(features)
            final = self.cluster(points, self.eval_clusters(), self.config.seed)
        normal_cluster = int(final.sizes.argmax())
        self._write_assignments(final, normal_cluster, points)
        result = {"run": run_info(self.backbone, self.device, wall_s), "n_images": len(self.data),
                  "eval_clusters": self.eval_clusters(), "normal_cluster": normal_cluster}
        if self.truth is not None:
            result["metrics"] = metrics.evaluate(self.truth, final.labels, normal_label=self.normal_label)
        absent = decision_absent(self.data)
        if absent is None:
            # What a user without labels gets from assignments.csv (largest cluster = defect-free).
            called = (final.labels != normal_cluster).astype(float)
            rates = metrics.defect_scores_metrics(self.data.defective, called, threshold=0.5)
            result["decision"] = {k: rates[k] for k in ("acc", "mdr", "fdr", "eacc")}
        else:
            result["decision_absent"] = absent
        result["skipped"] = len(self.data.skipped)
        _write_text(self.out / "metrics.json", json.dumps(result, indent=2, default=float))
        model = {"config": asdict(self.config), "backbone": self.backbone.model.state_dict(),
                 "preprocessor_mean": torch.from_numpy(preprocessor.mean),
                 "preprocessor_projection": torch.from_numpy(preprocessor.projection),
                 "preprocessor_l2": preprocessor.l2, "centroids": torch.from_numpy(final.centroids),
                 "normal_cluster": normal_cluster, "backbone_weights": self.backbone.weights,
                 "image_size": int(self.data.images.shape[-1]), "channels": int(self.data.images.shape[1])}
        with atomic_path(self.out / "model.pt") as path:  # written last: its presence means the run finished
            torch.save(model, path)
        return result

    def _write_assignments(self, final: Clustering, normal_cluster: int, points: np.ndarray) -> None:
        """assignments.csv: one row per image, with `map_x`, `map_y` (2-D PCA of the clustered features, the
        report's feature map)."""
        coords = PCA(2, random_state=self.config.seed).fit_transform(points)
        table = pd.DataFrame({"path": self.data.paths, "cluster": final.labels, "distance": final.distances,
                              "predicted_defective": (final.labels != normal_cluster).astype(int),
                              "map_x": coords[:, 0].round(5), "map_y": coords[:, 1].round(5)})
        if self.truth is not None:
            table["label"] = [self.class_names[t] for t in self.truth]
        _write_csv(self.out / "assignments.csv", table)

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Atomically replace checkpoint.pt with the state after `self.epoch` epochs."""
        state = {"epoch": self.epoch, "config": asdict(self.config), "backbone": self.backbone.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "history": self.history, "previous": self.previous, "elapsed_s": self.elapsed_s}
        with atomic_path(self.out / "checkpoint.pt") as path:
            torch.save(state, path)

    def resume(self) -> None:
        """Continue from `out_dir/checkpoint.pt` (a run with the same config)."""
        path = self.out / "checkpoint.pt"
        if not path.is_file():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        state = read_state(path, CHECKPOINT_KEYS, "start the run again with --overwrite",
                           map_location=self.device, weights_only=False)
        saved, current = state["config"], asdict(self.config)
        if saved != current:
            changed = sorted(k for k in current if saved.get(k) != current[k])
            raise ValueError(f"{path} was written by another configuration (differs in {changed})")
        self.backbone.model.load_state_dict(state["backbone"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.history, self.previous = state["epoch"], state["history"], state["previous"]
        self.elapsed_s = state.get("elapsed_s", 0.0)  # 0: a checkpoint that predates the record


def skipped_table(data: ImageSet) -> pd.DataFrame:
    """The files of `data` that were left out, and why (skipped.csv)."""
    return pd.DataFrame(list(data.skipped), columns=["path", "reason"])


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text)


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as partial:
        table.to_csv(partial, index=False)


def _group_by_size(crops: list[torch.Tensor]) -> list[torch.Tensor]:
    """Concatenate crops of equal size so that each resolution is one forward pass (as SwAV does)."""
    sizes = sorted({c.shape[-1] for c in crops}, reverse=True)
    return [torch.cat([c for c in crops if c.shape[-1] == s]) for s in sizes]


def run_info(backbone: Backbone, device: torch.device, wall_s: float) -> dict:
    """What a result must say about how it was produced."""
    return {"backbone": backbone.name, "weights": backbone.weights, "pretrained": backbone.pretrained,
            "device": device_name(device),
            "machine": f"{platform.machine()}, {os.cpu_count()} cpu", "torch": torch.__version__,
            "timm": timm.__version__, "wall_s": round(wall_s, 1)}


def prepare_data(config: TrainConfig) -> ImageSet:
    """The ImageSet a config names (capped per class if asked)."""
    data = load_dataset(config.dataset, config.data_root, config.image_size, **config.dataset_options)
    if config.max_per_class:
        data = protocols.cap_per_class(data, config.max_per_class, seed=config.seed)
    return data


def train(config: TrainConfig, data: ImageSet, resume: bool = False) -> dict:
    """Run (or resume) one joint-training run into `config.out_dir`; returns what metrics.json holds.

    The caller owns the folder: `steelnb train` claims it first (`runfolder.claim_run_folder`: lock, no
    earlier run's files beside this one's); notebooks and experiments write into folders of their own.
    """
    trainer = Trainer(config, data)
    if resume:
        trainer.resume()
    return trainer.run()
