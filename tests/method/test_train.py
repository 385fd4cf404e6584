"""The joint loop: outputs, resume, divergence, the alternation and the heads."""

import json
import time

import numpy as np
import pandas as pd
import pytest
import torch

import steelnb.method.train as train_module
from steelnb.backbones import extract_features
from steelnb.data import synthetic
from steelnb.method.cluster import cluster
from steelnb.method.config import TrainConfig
from steelnb.method.model import TrainedRun
from steelnb.method.train import Trainer, TrainingDiverged, train
from steelnb.metrics import evaluate


@pytest.fixture(scope="module")
def tiny_data():
    return synthetic.load(image_size=32, n_images=40, defect_rate=0.5, seed=1)


def tiny_config(out_dir, **overrides) -> TrainConfig:
    values = dict(image_size=32, global_size=32, local_size=16, n_global=1, n_local=1, epochs=2, batch_size=8,
                  steps_per_epoch=2, backbone="resnet18", pca_dim=8, n_clusters=3, clusterer="kmeans",
                  extractor_every=2, out_dir=str(out_dir), device="cpu")
    return TrainConfig(**{**values, **overrides})


def test_a_run_writes_its_results(tmp_path, tiny_data):
    result = train(tiny_config(tmp_path), tiny_data)
    assert {p.name for p in tmp_path.iterdir()} >= {"config.json", "history.csv", "assignments.csv",
                                                     "metrics.json", "checkpoint.pt", "model.pt"}
    history = pd.read_csv(tmp_path / "history.csv")
    assert history.epoch.tolist() == [0, 1]
    assert np.isfinite(history.loss).all()
    assignments = pd.read_csv(tmp_path / "assignments.csv")
    assert len(assignments) == len(tiny_data)
    assert assignments.cluster.nunique() == tiny_data.n_classes  # final k = number of classes
    truth = [tiny_data.class_names[label] for label in tiny_data.labels]
    assert assignments.label.tolist() == truth
    assert result["metrics"] == evaluate(tiny_data.labels, assignments.cluster.to_numpy(), normal_label=0)
    assert result["run"]["weights"] == "random" and result["run"]["pretrained"] is False
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["backbone"] == "resnet18" and written["clusterer_options"]["kmeans"] == {"n_init": 10}


def test_the_trainer_keeps_its_answer_and_the_points_it_clustered(tmp_path, tiny_data):
    trainer = Trainer(tiny_config(tmp_path, epochs=1), tiny_data)
    trainer.run()
    assignments = pd.read_csv(tmp_path / "assignments.csv")
    assert trainer.final.labels.tolist() == assignments.cluster.tolist()
    # The kept points are the saved model's features of the images, reduced as its answer reduced them.
    saved = TrainedRun.load(tmp_path)
    again = saved.preprocessor.transform(extract_features(saved.backbone, tiny_data.images, saved.input_size,
                                                          device="cpu"))
    np.testing.assert_allclose(trainer.final_points, again, atol=1e-4)


def test_defect_labels_score_mdr_and_fdr(tmp_path, tiny_data):
    result = train(tiny_config(tmp_path, labels="defect", epochs=1), tiny_data)
    assert result["eval_clusters"] == 2
    assignments = pd.read_csv(tmp_path / "assignments.csv")
    defective = tiny_data.defective == 1
    assert result["metrics"] == evaluate(defective.astype(int), assignments.cluster.to_numpy(), normal_label=0)
    # The label-free decision (largest cluster = defect-free) is scored on its own, from the csv.
    called = assignments.predicted_defective.to_numpy() == 1
    assert (assignments.cluster != result["normal_cluster"]).tolist() == called.tolist()
    assert result["decision"]["mdr"] == pytest.approx((defective & ~called).mean())
    assert result["decision"]["fdr"] == pytest.approx((~defective & called).mean())


def test_unlabelled_data_still_gives_assignments(tmp_path, tiny_data):
    unknown = tiny_data.relabel(np.full(len(tiny_data), -1), ())
    result = train(tiny_config(tmp_path, epochs=1, eval_clusters=2), unknown)
    assert "metrics" not in result
    assert pd.read_csv(tmp_path / "assignments.csv").cluster.nunique() == 2


def test_resume_after_interruption_ends_like_an_uninterrupted_run(tmp_path, tiny_data, monkeypatch):
    train(tiny_config(tmp_path / "whole", epochs=3), tiny_data)

    original = Trainer._run_epoch

    def interrupt_at_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        time.sleep(1.5)  # the interrupted session's time must count in the run's wall time
        original(self, epoch)

    monkeypatch.setattr(Trainer, "_run_epoch", interrupt_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tmp_path / "cut", epochs=3), tiny_data)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)["epoch"] == 2
    monkeypatch.setattr(Trainer, "_run_epoch", original)
    train(tiny_config(tmp_path / "cut", epochs=3), tiny_data, resume=True)

    whole = pd.read_csv(tmp_path / "whole" / "assignments.csv")
    resumed = pd.read_csv(tmp_path / "cut" / "assignments.csv")
    assert (whole.cluster == resumed.cluster).all()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "whole" / "history.csv").drop(columns=_timings()),
                                  pd.read_csv(tmp_path / "cut" / "history.csv").drop(columns=_timings()))
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["run"]["wall_s"] >= 3.0


def _timings():
    return ["extract_s", "cluster_s", "train_s"]


def test_resume_refuses_another_configuration(tmp_path, tiny_data):
    train(tiny_config(tmp_path, epochs=1), tiny_data)
    with pytest.raises(ValueError, match="differs in \\['lr'\\]"):
        train(tiny_config(tmp_path, epochs=1, lr=0.5), tiny_data, resume=True)
    with pytest.raises(ValueError, match="differs in \\['epochs'\\]"):  # the LR schedule depends on it
        train(tiny_config(tmp_path, epochs=2), tiny_data, resume=True)


def test_nan_loss_stops_with_the_last_good_checkpoint_kept(tmp_path, tiny_data, monkeypatch):
    calls = {"n": 0}
    real_loss = train_module.pseudo_label_loss

    def loss_turning_nan(logits, targets):
        calls["n"] += 1
        loss = real_loss(logits, targets)
        return loss * float("nan") if calls["n"] > 2 else loss  # epoch 0 has 2 steps, then NaN

    monkeypatch.setattr(train_module, "pseudo_label_loss", loss_turning_nan)
    with pytest.raises(TrainingDiverged, match="epoch 1, step 0"):
        train(tiny_config(tmp_path, epochs=3), tiny_data)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=False)["epoch"] == 1


def test_extractor_steps_once_every_k_head_steps(tmp_path, tiny_data, monkeypatch):
    trainer = Trainer(tiny_config(tmp_path, epochs=1, steps_per_epoch=7, extractor_every=3), tiny_data)
    steps = []
    real_step = trainer.optimizer.step
    monkeypatch.setattr(trainer.optimizer, "step", lambda *a, **k: steps.append(1) or real_step(*a, **k))
    before = [p.detach().clone() for p in trainer.backbone.model.parameters()]
    trainer.run()
    assert len(steps) == 3  # steps 0, 3, 6 of 7
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.backbone.model.parameters(), strict=True))


def test_the_defect_decision_is_scored_only_where_both_kinds_of_image_exist(tmp_path, tiny_data):
    mixed = train(tiny_config(tmp_path / "mixed", epochs=1), tiny_data)
    assert set(mixed["decision"]) == {"acc", "mdr", "fdr", "eacc"} and "decision_absent" not in mixed
    all_defective = synthetic.load(image_size=32, n_images=24, defect_rate=1.0, seed=1)
    result = train(tiny_config(tmp_path / "all", epochs=1), all_defective)
    assert "decision" not in result
    assert result["decision_absent"].startswith("none: every image of synthetic is defective")
    assert json.loads((tmp_path / "all" / "metrics.json").read_text())["decision_absent"] == result["decision_absent"]


def test_assignments_carry_the_2d_map_of_the_clustered_features(tmp_path, tiny_data):
    train(tiny_config(tmp_path, epochs=1), tiny_data)
    table = pd.read_csv(tmp_path / "assignments.csv")
    assert np.isfinite(table[["map_x", "map_y"]].to_numpy()).all()
    assert table.map_x.var() >= table.map_y.var() > 0  # the first two principal components, in order


def test_a_run_on_two_images_answers_with_a_flat_map(tmp_path, tiny_data):
    two = tiny_data.subset(np.flatnonzero(tiny_data.labels > 0)[:2])  # e.g. two flagged crops, two types
    result = train(tiny_config(tmp_path, epochs=1, n_clusters=2, eval_clusters=2, batch_size=2), two)
    table = pd.read_csv(tmp_path / "assignments.csv")
    assert sorted(table.cluster) == [0, 1] and result["eval_clusters"] == 2
    assert (table.map_y == 0).all() and table.map_x.nunique() == 2  # one principal component for two points


def test_the_component_options_reach_the_clusterer_the_optimiser_and_the_schedule(tmp_path, tiny_data, monkeypatch):
    config = tiny_config(tmp_path, epochs=1, optimizer="sgd", optimizer_options={"sgd": {"momentum": 0.5}},
                         warmup_start_factor=0.5, clusterer_options={"kmeans": {"n_init": 2}})
    trainer = Trainer(config, tiny_data)
    assert trainer.optimizer.defaults["momentum"] == 0.5
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.5 * config.lr)
    seen = []
    monkeypatch.setattr(train_module, "cluster", lambda *args: seen.append(args[-1]) or cluster(*args))
    trainer.run()
    assert seen and all(options == {"n_init": 2} for options in seen)
