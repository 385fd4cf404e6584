"""TrainConfig: the components' options are checked, filled in and recorded; older configs still load."""

import json
from dataclasses import asdict, replace

import pytest

from steelnb.method.config import TrainConfig
from steelnb.validation import ConfigError


def test_every_component_option_is_recorded_with_its_default():
    values = asdict(TrainConfig())
    assert values["clusterer_options"]["kmeans"] == {"n_init": 10}
    assert values["clusterer_options"]["faiss"] == {"niter": 50, "nredo": 5}
    assert values["clusterer_options"]["minibatch"]["n_init"] == 3
    assert values["clusterer_options"]["birch"] == {"threshold": 0.1}
    assert values["clusterer_options"]["spectral"] == {"n_neighbors": 10}
    assert values["optimizer_options"] == {"sgd": {"momentum": 0.9}} and values["warmup_start_factor"] == 0.1
    assert TrainConfig.from_dict(json.loads(json.dumps(values))) == TrainConfig()  # config.json reads back the same


def test_a_partial_option_keeps_the_other_defaults_and_survives_another_clusterer():
    config = TrainConfig(clusterer="faiss", clusterer_options={"faiss": {"niter": 20}})
    assert config.clusterer_options["faiss"] == {"niter": 20, "nredo": 5}
    assert replace(config, clusterer="birch").clusterer_options["faiss"]["niter"] == 20


@pytest.mark.parametrize(("values", "message"), [
    ({"clusterer_options": {"dbscan": {}}}, r"^run.json: clusterer_options: \['dbscan'\] have no options here"),
    ({"clusterer_options": {"kmeans": {"n_init": 0}}}, r"^run.json: clusterer_options.kmeans: n_init must"),
    ({"clusterer_options": {"kmeans": 3}}, r"^run.json: clusterer_options.kmeans must be an object"),
    ({"optimizer_options": {"sgd": {"nesterov": True}}}, r"^flag: optimizer_options.sgd: unknown option"),
    ({"optimizer_options": {"adam": {}}}, r"^flag: optimizer_options: \['adam'\] have no options here"),
    ({"warmup_start_factor": 1.5}, r"^run.json: warmup_start_factor must be at most 1"),
])
def test_a_bad_option_names_the_field_and_its_source(values, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig.from_dict(values, {"optimizer_options": "flag"}, source="run.json")


def test_a_config_json_written_before_the_options_were_recorded_still_loads():
    older = {k: v for k, v in asdict(TrainConfig(clusterer="kmeans")).items()
             if k not in ("clusterer_options", "optimizer_options", "warmup_start_factor")}
    assert TrainConfig.from_dict(older) == TrainConfig(clusterer="kmeans")
