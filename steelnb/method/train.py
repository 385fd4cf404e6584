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

Under torchrun (`steelnb.distributed`) every process extracts the features of its shard of the images, and
the features are gathered so that rank 0 clusters all of them and hands the pseudo-labels to the others; each
training batch is the batch a single process would draw, cut into one shard a process (each image with the
views it would get whole), and DistributedDataParallel averages the gradients, weighted so that the step is
the whole batch's; batch-norm layers (ResNet, EfficientNet) are synchronised
(`distributed.synchronise_batch_norm`), so that their statistics are the whole batch's too and their running
statistics equal on every process. Rank 0 alone writes the run's files (model.pt and checkpoints hold the plain
layers' names: they load in one process). So a run on N processes is a run on one up to the order of float sums,
with batch norm or layer norm (ConvNeXt V2, the paper's); over several epochs the clustering can amplify those
(results/scale). Feature passes are in eval mode (running statistics): they need no synchronisation.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from torch import nn

from .. import distributed, metrics
from ..backbones import Backbone, create_backbone, extract_features, resolve_device
from ..data import ImageSet
from ..errors import SteelnbError
from ..progress import phase, progress
from ..runfolder import RunFolderError, atomic_path, read_state
from ..validation import ConfigError
from ..views import MultiCrop
from .cluster import Clustering, Preprocessor, cluster, uniform_label_sample
from .config import TrainConfig
from .heads import make_head
from .inputs import decision_absent, skipped_table, target_labels
from .losses import pseudo_label_loss
from .model import TrainedRun
from .optim import make_optimizer, make_scheduler
from .runfiles import run_info, write_csv, write_text

CHECKPOINT_KEYS = ("epoch", "config", "backbone", "optimizer", "scheduler", "history", "previous")


class TrainingDiverged(SteelnbError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch


class Trainer:
    """Holds one run: data, extractor, optimiser, history; `run()` goes from the last checkpoint to the end."""

    def __init__(self, config: TrainConfig, data: ImageSet) -> None:
        if len(data) < 2:
            raise ValueError(f"{data.name}: {len(data)} image(s); the method needs at least 2")
        self.config = config
        self.data = data
        self.out = Path(config.out_dir)
        self.world = distributed.world()
        if config.batch_size < self.world.size:
            raise ConfigError(f"--batch-size {config.batch_size} cannot be shared by {self.world.size} processes: "
                              "raise it to at least the number of processes")
        self.device = distributed.local_device(resolve_device(config.device))  # ValueError naming a missing GPU
        torch.manual_seed(config.seed)
        self.backbone: Backbone = create_backbone(config.backbone, config.weights)
        self.backbone.model.to(self.device)
        # Under torchrun the batch-norm layers take the whole batch's statistics, as one process does.
        self.batch_norm_synced = distributed.synchronise_batch_norm(self.backbone.model)
        # The set on the device: on the CPU a view of the array (of the decode cache's memory map: pages are read
        # as batches touch them), on a GPU a copy when it takes under a quarter of the free memory; otherwise
        # each batch is read from the host (`batch`).
        on_device = self.device.type == "cpu" or data.images.nbytes < 0.25 * torch.cuda.mem_get_info(self.device)[0]
        self.images = torch.from_numpy(data.images).to(self.device) if on_device else None
        self.crop_features = CropFeatures(self.backbone.model)
        self.parallel_crop_features = distributed.parallel(self.crop_features, self.device)
        self.views = MultiCrop(n_global=config.n_global, global_size=config.global_size, n_local=config.n_local,
                               local_size=config.local_size, mean=self.backbone.mean, std=self.backbone.std)
        self.truth, self.class_names, self.normal_label = target_labels(data, config)
        self._check_cluster_counts()
        self.steps = config.steps_per_epoch or max(1, len(data) // config.batch_size)
        extractor_steps = config.epochs * math.ceil(self.steps / config.extractor_every)
        self.optimizer = self._optimizer(self.backbone.model.parameters(), config.lr)
        warmup_steps = int(config.warmup_epochs * extractor_steps / max(config.epochs, 1))
        self.scheduler = make_scheduler(self.optimizer, warmup_steps, extractor_steps, config.warmup_start_factor)
        self.epoch = 0
        self.elapsed_s = 0.0  # seconds spent in the epochs done, over every session of a resumed run
        self.history: list[dict] = []
        self.previous: np.ndarray | None = None
        # The answer's clustering and the points it clustered (the final features, reduced), once `run` ends, on
        # the main process: what `steelnb inspect`'s type stage compares with its starting features.
        self.final: Clustering | None = None
        self.final_points: np.ndarray | None = None

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
        return make_optimizer(name, params, lr, self.config.weight_decay, self.config.optimizer_options.get(name))

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> dict:
        """Train the remaining epochs, then cluster the final features; returns the final metrics."""
        if self.world.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text(self.out / "config.json", json.dumps(asdict(self.config), indent=2))
            write_csv(self.out / "skipped.csv", skipped_table(self.data))
        started, before = time.perf_counter(), self.elapsed_s
        for epoch in range(self.epoch, self.config.epochs):
            self._run_epoch(epoch)
            self.epoch, self.elapsed_s = epoch + 1, before + time.perf_counter() - started
            if self.world.main:
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
        # Rank 0 clusters (every process holds the same features) and hands the pseudo-labels to the others.
        labels, row = distributed.on_main(self._pseudo_labels, features, seed, epoch)
        times["cluster_s"] = time.perf_counter() - t0
        self.previous = labels
        reseeded = row.pop("reseeded")
        t0 = time.perf_counter()
        row["loss"] = self._train_on(features, labels, seed, epoch)
        times["train_s"] = time.perf_counter() - t0
        row.update(times, lr=self.optimizer.param_groups[0]["lr"], reseeded=reseeded)
        self.history.append(row)
        if self.world.main:
            write_csv(self.out / "history.csv", pd.DataFrame(self.history))

    def _pseudo_labels(self, features: np.ndarray, seed: int, epoch: int) -> tuple[np.ndarray, dict]:
        """The epoch's pseudo-labels and its history row so far (agreement with the previous epoch and the truth)."""
        with phase(f"epoch {epoch + 1}/{self.config.epochs}: clustering into {self.config.n_clusters}"):
            points = self.preprocessor(features, seed).transform(features)
            clustering = self.cluster(points, self.config.n_clusters, seed)
        row = {"epoch": epoch, **self._agreement(points, clustering.labels, seed), "reseeded": clustering.reseeded}
        return clustering.labels, row

    def preprocessor(self, features: np.ndarray, seed: int) -> Preprocessor:
        return Preprocessor.fit(features, self.config.pca_dim, whiten=self.config.whiten, seed=seed)

    def cluster(self, points: np.ndarray, k: int, seed: int) -> Clustering:
        config = self.config
        return cluster(points, k, config.clusterer, seed, config.cluster_batch_size,
                       config.clusterer_options[config.clusterer])

    def features(self, desc: str = "features") -> np.ndarray:
        """Features of every image (each process extracts its shard; all are gathered on every process)."""
        distributed.broadcast_buffers(self.backbone.model)  # rank 0's batch-norm statistics, as it saves them
        mine = extract_features(self.backbone, self.data.images[distributed.share(len(self.data))],
                                self.config.feature_size, batch_size=max(self.config.batch_size, 64),
                                device=self.device, desc=desc)
        features = distributed.gather(mine)
        if not np.isfinite(features).all():  # the weights went to inf / NaN in the last steps, the loss still finite
            raise TrainingDiverged(f"training diverged: the extractor's features became NaN or infinite ({desc}); "
                                   f"lower --lr (now {self.config.lr:g}) or --head-lr and rerun with --overwrite")
        return features

    def batch(self, index: np.ndarray) -> torch.Tensor:
        """The uint8 images at `index` on the device."""
        if self.images is not None:
            return self.images[torch.from_numpy(index).to(self.device)]
        return torch.from_numpy(self.data.images[index]).to(self.device, non_blocking=True)

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
        parallel_head = distributed.parallel(head, self.device)
        order = uniform_label_sample(pseudo, self.steps * config.batch_size, rng)
        targets = torch.from_numpy(pseudo).to(self.device)
        self.backbone.model.train()
        losses = []
        for step in progress(range(self.steps), f"epoch {epoch + 1}/{config.epochs}: training", unit="step"):
            whole = order[step * config.batch_size:(step + 1) * config.batch_size]
            rows = distributed.share(len(whole))  # this process's shard of the batch
            index = whole[rows]
            crops = self.views(self.batch(index), generator, rows=rows, total=len(whole))
            update_extractor = step % config.extractor_every == 0
            # Between extractor updates the extractor runs forward only (no graph kept, outside DDP); it stays
            # in train mode, so batch-norm statistics follow every batch, as they would with k = 1.
            with torch.set_grad_enabled(update_extractor):
                extractor = self.parallel_crop_features if update_extractor else self.crop_features
                features = extractor(crops)
            logits = parallel_head(features)
            loss = pseudo_label_loss(logits, targets[torch.from_numpy(index).to(self.device)].repeat(len(crops)))
            # The shard's mean loss, weighted so that DDP's average over the processes is the whole batch's mean.
            weight = len(index) / len(whole)
            batch_loss = distributed.sum_all(loss.detach() * weight)
            if not torch.isfinite(batch_loss):
                kept = (f"the last good checkpoint {self.out / 'checkpoint.pt'} (after epoch {epoch - 1}) is kept"
                        if epoch else "no epoch finished, so there is no checkpoint")
                raise TrainingDiverged(f"training diverged: the loss became {batch_loss.item()} at epoch {epoch}, "
                                       f"step {step}; {kept}. "
                                       "Lower --lr or --head-lr.")
            head_optimizer.zero_grad(set_to_none=True)
            self.optimizer.zero_grad(set_to_none=True)
            (loss * (weight * self.world.size)).backward()
            head_optimizer.step()
            if update_extractor:
                self.optimizer.step()
                self.scheduler.step()
            losses.append(batch_loss.item())
        return float(np.mean(losses))

    # -- the answer -------------------------------------------------------------------------------
    def eval_clusters(self) -> int:
        if self.config.eval_clusters:
            return self.config.eval_clusters
        return len(self.class_names) if self.truth is not None else self.config.n_clusters

    def finish(self, wall_s: float) -> dict:
        """Cluster the final features into the answer; write assignments, metrics and the model (rank 0; every
        process returns the metrics)."""
        features = self.features("final features")
        return distributed.on_main(self._answer, features, wall_s)

    def _answer(self, features: np.ndarray, wall_s: float) -> dict:
        with phase(f"final clustering into {self.eval_clusters()}"):
            preprocessor = self.preprocessor(features, self.config.seed)
            points = preprocessor.transform(features)
            final = self.cluster(points, self.eval_clusters(), self.config.seed)
        self.final, self.final_points = final, points
        normal_cluster = int(final.sizes.argmax())
        self._write_assignments(final, normal_cluster, points)
        result = {"run": {**run_info(self.backbone, self.device, wall_s, self.config.clusterer),
                          "batch_norm_synced": self.batch_norm_synced},
                  "n_images": len(self.data), "eval_clusters": self.eval_clusters(), "normal_cluster": normal_cluster}
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
        write_text(self.out / "metrics.json", json.dumps(result, indent=2, default=float))
        images = self.data.images
        run = TrainedRun(self.config, self.backbone, preprocessor, final.centroids, normal_cluster,
                         image_size=int(images.shape[-1]), channels=int(images.shape[1]))
        run.save(self.out)  # written last: its presence means the run finished
        return result

    def _write_assignments(self, final: Clustering, normal_cluster: int, points: np.ndarray) -> None:
        """assignments.csv: one row per image, with `map_x`, `map_y` (2-D PCA of the clustered features, the
        report's feature map)."""
        coords = np.zeros((len(points), 2))
        dims = min(2, *points.shape)  # a tiny run (2 images: 1 PCA dimension) keeps its map flat
        if dims:
            coords[:, :dims] = PCA(dims, random_state=self.config.seed).fit_transform(points)
        table = pd.DataFrame({"path": self.data.paths, "cluster": final.labels, "distance": final.distances,
                              "predicted_defective": (final.labels != normal_cluster).astype(int),
                              "map_x": coords[:, 0].round(5), "map_y": coords[:, 1].round(5)})
        if self.truth is not None:
            table["label"] = [self.class_names[t] for t in self.truth]
        write_csv(self.out / "assignments.csv", table)

    # -- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Atomically replace checkpoint.pt with the state after `self.epoch` epochs."""
        state = {"epoch": self.epoch, "config": asdict(self.config), "backbone": self.backbone.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "history": self.history, "previous": self.previous, "elapsed_s": self.elapsed_s,
                 "paths": list(self.data.paths), "resolved": _resolved(asdict(self.config))}
        with atomic_path(self.out / "checkpoint.pt") as path:
            torch.save(state, path)

    def resume(self) -> None:
        """Continue from `out_dir/checkpoint.pt` (a run with the same config; rank 0 reads it for every process,
        so a run may resume on another number of processes)."""
        state = distributed.on_main(self._read_checkpoint)
        self.backbone.model.load_state_dict(state["backbone"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.history, self.previous = state["epoch"], state["history"], state["previous"]
        self.elapsed_s = state.get("elapsed_s", 0.0)  # 0: a checkpoint that predates the record

    def _read_checkpoint(self) -> dict:
        path = self.out / "checkpoint.pt"
        if not path.is_file():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        where = "cpu" if distributed.active() else self.device  # sent to the other processes: no device in it
        state = read_state(path, CHECKPOINT_KEYS, "start the run again with --overwrite",
                           map_location=where, weights_only=False)
        # The saved config as this version reads it: options added since take their defaults. Paths are compared
        # resolved (an absolute path or a trailing / is the same folder); the run folder may have moved.
        saved, current = asdict(TrainConfig.from_dict(state["config"], source=str(path))), asdict(self.config)
        saved.update(state.get("resolved") or _resolved(saved))
        current.update(_resolved(current))
        changed = sorted(k for k in current if saved.get(k) != current[k] and k != "out_dir")
        if changed:
            raise ValueError(f"{path} was written by another configuration (differs in {changed})")
        _check_same_pile(state.get("paths"), self.data.paths, self.data.name, path)
        return state


PATH_FIELDS = ("dataset", "data_root")


def _resolved(config: dict) -> dict:
    """`config`'s path fields resolved, where they name a folder (a named set's name stays as it is)."""
    return {key: os.path.realpath(os.path.expanduser(config[key])) for key in PATH_FIELDS
            if isinstance(config.get(key), str) and os.path.isdir(os.path.expanduser(config[key]))}


def _check_same_pile(saved: list[str] | None, paths: tuple[str, ...], name: str, checkpoint: Path) -> None:
    """RunFolderError saying what changed when the images differ from those the checkpoint was trained on."""
    if saved is None or list(saved) == list(paths):  # None: a checkpoint that predates the record
        return
    added, removed = sorted(set(paths) - set(saved)), sorted(set(saved) - set(paths))

    def listed(names: list[str]) -> str:
        return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

    change = "; ".join(f"{len(names)} image{'s' * (len(names) != 1)} {what} ({listed(names)})"
                       for names, what in ((added, "added"), (removed, "gone")) if names) or "the images' order"
    raise RunFolderError(f"{name} changed since {checkpoint} was written: {change}; --resume needs the images it "
                         "was trained on: put them back, or start again with --overwrite")


def group_by_size(crops: list[torch.Tensor]) -> list[torch.Tensor]:
    """Concatenate crops of equal size so that each resolution is one forward pass (as SwAV does)."""
    sizes = sorted({c.shape[-1] for c in crops}, reverse=True)
    return [torch.cat([c for c in crops if c.shape[-1] == s]) for s in sizes]


class CropFeatures(nn.Module):
    """The extractor over a step's crops: one forward pass per crop size, the features concatenated in the
    crops' order. One module call a step, so that DistributedDataParallel sees one forward per backward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.model(batch) for batch in group_by_size(crops)])


def train(config: TrainConfig, data: ImageSet, resume: bool = False) -> dict:
    """Run (or resume) one joint-training run into `config.out_dir`; returns what metrics.json holds.

    The caller owns the folder: `steelnb train` claims it first (`runfolder.claim_run_folder`: lock, no
    earlier run's files beside this one's); notebooks and experiments write into folders of their own.

    >>> import tempfile
    >>> from steelnb.data import load_dataset
    >>> data = load_dataset("synthetic", image_size=32, n_images=24, defect_rate=0.5, seed=1)
    >>> config = TrainConfig(image_size=32, global_size=32, n_global=1, n_local=0, epochs=1, batch_size=8,
    ...                      steps_per_epoch=1, pca_dim=8, n_clusters=3, clusterer="kmeans", device="cpu",
    ...                      out_dir=tempfile.mkdtemp())
    >>> result = train(config, data)
    >>> result["eval_clusters"], sorted(result["metrics"])[:3]
    (7, ['acc', 'ari', 'eacc'])
    >>> sorted(p.name for p in Path(config.out_dir).iterdir())[:4]
    ['assignments.csv', 'checkpoint.pt', 'config.json', 'history.csv']
    """
    trainer = Trainer(config, data)
    if resume:
        trainer.resume()
    return trainer.run()
