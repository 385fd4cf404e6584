"""model.pt: TrainedRun writes it and reads it back, field for field."""

from dataclasses import fields

import numpy as np
import pytest
import torch

from steelnb.backbones import create_backbone
from steelnb.data import synthetic
from steelnb.method.cluster import Preprocessor
from steelnb.method.config import TrainConfig
from steelnb.method.model import TrainedRun
from steelnb.method.train import train
from steelnb.runfolder import RunFolderError
from tests.method.test_train import tiny_config


def _run(**overrides) -> TrainedRun:
    rng = np.random.default_rng(0)
    values = dict(config=TrainConfig(backbone="resnet18", global_size=40, eval_size=48, clusterer="kmeans"),
                  backbone=create_backbone("resnet18", "random"),
                  preprocessor=Preprocessor(rng.normal(size=512).astype(np.float32),
                                            rng.normal(size=(512, 6)).astype(np.float32), l2=False),
                  centroids=rng.normal(size=(3, 6)).astype(np.float32), normal_cluster=2, image_size=64, channels=3)
    return TrainedRun(**{**values, **overrides})


def test_save_then_load_gives_the_same_run(tmp_path):
    run = _run()
    run.save(tmp_path)
    again = TrainedRun.load(tmp_path)
    assert again.config == run.config and again.input_size == 48
    assert (again.normal_cluster, again.image_size, again.channels) == (2, 64, 3)
    assert again.started_from == "random" and again.backbone.weights == "trained from random"
    np.testing.assert_array_equal(again.centroids, run.centroids)
    np.testing.assert_array_equal(again.preprocessor.mean, run.preprocessor.mean)
    np.testing.assert_array_equal(again.preprocessor.projection, run.preprocessor.projection)
    assert again.preprocessor.l2 is False
    for name, tensor in run.backbone.model.state_dict().items():
        assert torch.equal(again.backbone.model.state_dict()[name], tensor), name
    # Every field survives, and saving a loaded run keeps where its training started.
    again.save(tmp_path / "again")
    twice = TrainedRun.load(tmp_path / "again")
    assert twice.started_from == "random" and twice.backbone.weights == "trained from random"
    # A field added to TrainedRun but not to model.pt fails here, not at `steelnb predict`.
    assert {f.name for f in fields(TrainedRun)} - set(run.state()) == {"preprocessor", "started_from"}


def test_a_model_pt_without_the_channels_record_still_loads(tmp_path):
    state = _run().state()
    del state["channels"]
    torch.save(state, tmp_path / "model.pt")
    assert TrainedRun.load(tmp_path).channels is None


def test_weights_of_another_architecture_are_named(tmp_path):
    state = _run().state()
    state["config"]["backbone"] = "resnet34"
    torch.save(state, tmp_path / "model.pt")
    with pytest.raises(RunFolderError, match=r"(?s)do not fit resnet34.*train the run again"):
        TrainedRun.load(tmp_path)


def test_loading_a_missing_run_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="train a run first"):
        TrainedRun.load(tmp_path)


def test_a_finished_run_loads_as_the_trainer_left_it(tmp_path):
    data = synthetic.load(image_size=32, n_images=24, defect_rate=0.5, seed=1)
    train(tiny_config(tmp_path, epochs=1), data)
    run = TrainedRun.load(tmp_path)
    assert run.config == tiny_config(tmp_path, epochs=1) and (run.image_size, run.channels) == (32, 1)
    assert run.centroids.shape == (data.n_classes, run.preprocessor.projection.shape[1])
