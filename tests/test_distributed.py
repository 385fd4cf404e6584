"""Several processes under torchrun: the helpers alone, then `steelnb train`, `predict` and `detect` on 2 CPU
processes (gloo) against the same commands on one.

The 2-process runs are launched as a user would, `python -m torch.distributed.run --standalone --nproc-per-node 2
-m steelnb.cli ...`, in a subprocess with a timeout. Training uses ConvNeXt V2-atto: its layer norm makes the
arithmetic independent of how a batch is cut, so the 2-process run must end with the very assignments of the
1-process run, distances within float rounding. With batch norm (the `ci` profile's resnet18) the layers are
synchronised over the processes; the sums' order differs, and the run must end with the same clusters (ARI >= 0.95).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import adjusted_rand_score

from steelnb import distributed
from steelnb.cli import main
from steelnb.method.model import TrainedRun
from tests.test_cli import image_folder

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300  # a launch takes ~20 s on 2 busy cores; a hang must fail, not block the suite
TRAIN = ["train", "--profile", "ci", "--backbone", "convnextv2_atto", "--quiet"]
TRAIN_BATCH_NORM = ["train", "--profile", "ci", "--dataset", "synthetic", "--seed", "0", "--quiet"]  # resnet18
DETECT = ["detect", "--dataset", "synthetic", "--max-side", "64", "--backbone", "resnet18", "--weights", "random",
          "--device", "cpu", "--bank-images", "16", "--overlays", "2", "--quiet"]


# -- the helpers ------------------------------------------------------------------------------------
def test_one_process_is_the_identity():
    assert not distributed.active() and distributed.world() == distributed.World(0, 1, 0)
    array = np.arange(12).reshape(4, 3)
    assert distributed.gather(array) is array
    assert distributed.share(7) == slice(0, 7) and distributed.shard(np.array([5, 3])).tolist() == [5, 3]
    assert distributed.on_main(lambda x: x + 1, 1) == 2 and distributed.main_first(lambda: "a") == "a"
    assert distributed.broadcast({"a": 1}) == {"a": 1}
    tensor = torch.ones(2)
    assert distributed.sum_all(tensor) is tensor
    module = torch.nn.Linear(2, 2)
    assert distributed.parallel(module, torch.device("cpu")) is module
    batch_norm = torch.nn.Sequential(torch.nn.BatchNorm2d(2))
    assert not distributed.synchronise_batch_norm(batch_norm) and type(batch_norm[0]) is torch.nn.BatchNorm2d
    with distributed.session("cpu") as world:
        assert world.main and world.size == 1
    with distributed.main_context(lambda: open(os.devnull)) as handle:
        assert not handle.closed


@pytest.mark.parametrize("n", [0, 1, 5, 8, 13])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_the_shares_cut_a_range_in_order_as_array_split_does(monkeypatch, n, size):
    parts = []
    for rank in range(size):
        monkeypatch.setattr(distributed, "world", lambda rank=rank: distributed.World(rank, size, rank))
        parts.append(distributed.shard(n))
    assert [p.tolist() for p in parts] == [p.tolist() for p in np.array_split(np.arange(n), size)]


def test_the_device_is_this_processs_gpu_under_torchrun(monkeypatch):
    assert distributed.local_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert distributed.local_device("cuda") == torch.device("cuda", 3)  # needs no GPU to be named
    assert distributed.local_device("cuda:0") == torch.device("cuda", 3)
    assert distributed.local_device("cpu") == torch.device("cpu")


def test_the_group_is_nccls_only_where_cuda_is(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert not any(map(distributed._wants_cuda, ["cuda", "cuda:1", "auto", "cpu"]))  # the command names the GPU
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert [distributed._wants_cuda(d) for d in ["cuda", "cuda:1", "auto", "cpu"]] == [True, True, True, False]


def test_commands_that_do_not_shard_refuse_torchrun(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["data", "info", "synthetic", "--image-size", "16"]) == 2
    assert main(["inspect", "synthetic", "--out-dir", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.count("only train, detect and predict run on several processes") == 2
    assert main(["predict", "--run", str(tmp_path / "none"), "--dataset", "synthetic"]) == 2  # runs: no run there
    assert "does not exist: train a run first" in capsys.readouterr().err


# -- two processes ----------------------------------------------------------------------------------
def torchrun(*args, processes: int = 2) -> subprocess.CompletedProcess:
    """`steelnb ARGS` on `processes` CPU processes, as a user launches it."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "steelnb.cli", *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)


def succeeded(done: subprocess.CompletedProcess) -> bool:
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-6000:])
    return done.returncode == 0


@pytest.mark.slow
def test_the_helpers_across_two_processes(tmp_path):
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
                           str(REPO / "tests" / "two_processes.py"), str(tmp_path)], capture_output=True, text=True,
                          timeout=TIMEOUT_S, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert succeeded(done)
    found = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [f["rank"] for f in found] == [0, 1] and {f["size"] for f in found} == {2}
    expected = {n: (np.arange(n * 6, dtype=np.float16).reshape(n, 2, 3) + 0.5).tolist() for n in (5, 1)}
    for f in found:
        assert f["gather_5"] == expected[5] and f["gather_1"] == expected[1] and f["shares"] == [3, 2]
        assert f["on_main"] == "from rank 0" and f["sum"] == 3.0
        assert f["main_first_error"] == "no pile here (rank 0)" and f["on_main_error"] == "no pile here (rank 0)"
        assert f["weight"] == [[0.0, 0.0, 0.0]] and f["grad"] == [[3.0, 3.0, 3.0]]  # (2 + 4) / 2
    assert [f["first"] for f in found] == [0, 1]
    for f in found:  # batch norm over a batch cut in 3 + 2 images: the whole batch's, as in one process
        assert f["bn_synced"] and f["bn_keys_kept"]
        assert f["bn_types"] == ["Conv2d", "GroupBatchNorm", "Conv2d", "GroupBatchNorm", "Flatten"]
        assert f["bn_output"] < 1e-5 and f["bn_grad"] < 1e-5 and f["bn_running"] < 1e-5, f


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The ci run trained by one process."""
    out = tmp_path_factory.mktemp("one") / "run"
    assert main([*TRAIN, "--out-dir", str(out)]) == 0
    return out


def _same_run(one: Path, two: Path) -> None:
    """The same answer: assignments, distances within float rounding, the same history."""
    a, b = pd.read_csv(one / "assignments.csv"), pd.read_csv(two / "assignments.csv")
    assert a.path.tolist() == b.path.tolist()
    assert (a.cluster == b.cluster).all()
    np.testing.assert_allclose(a.distance, b.distance, atol=1e-4)
    history_a, history_b = pd.read_csv(one / "history.csv"), pd.read_csv(two / "history.csv")
    for column in ("epoch", "nmi_prev", "nmi", "acc", "reseeded"):
        np.testing.assert_allclose(history_a[column], history_b[column])
    np.testing.assert_allclose(history_a.loss, history_b.loss, rtol=1e-4)


@pytest.mark.slow
def test_train_on_two_processes_ends_with_the_assignments_of_one(one_process, tmp_path):
    out = tmp_path / "two"
    done = torchrun(*TRAIN, "--out-dir", out)
    assert succeeded(done)
    _same_run(one_process, out)
    assert "on 2 processes" in done.stdout and done.stdout.count("report:") == 1  # rank 0 alone speaks
    assert json.loads((out / "metrics.json").read_text())["run"]["processes"] == 2
    assert not list(out.glob("*.partial")) and not (out / ".steelnb.lock").exists()
    assert TrainedRun.load(out).centroids.shape[0] == 7
    # Rank 0's refusal to claim a folder holding a run ends every process with its message, none left waiting.
    again = torchrun(*TRAIN, "--out-dir", out)
    assert again.returncode != 0 and "holds a finished run" in again.stderr


@pytest.mark.slow
def test_train_with_batch_norm_on_two_processes_clusters_as_one(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*TRAIN_BATCH_NORM, "--out-dir", str(one)]) == 0
    assert succeeded(torchrun(*TRAIN_BATCH_NORM, "--out-dir", two))
    a, b = pd.read_csv(one / "assignments.csv"), pd.read_csv(two / "assignments.csv")
    assert a.path.tolist() == b.path.tolist()
    assert adjusted_rand_score(a.cluster, b.cluster) >= 0.95  # 0.60 with each shard's own statistics
    runs = [json.loads((run / "metrics.json").read_text())["run"] for run in (one, two)]
    assert [r["processes"] for r in runs] == [1, 2] and [r["batch_norm_synced"] for r in runs] == [False, True]
    # model.pt holds plain batch norm's names: one process loads it
    model = TrainedRun.load(two).backbone.model
    assert {type(m).__name__ for m in model.modules() if "Norm" in type(m).__name__} == {"BatchNorm2d"}


@pytest.mark.slow
def test_a_run_cut_on_one_process_resumes_on_two_to_the_same_end(one_process, tmp_path, interrupt_training):
    out = tmp_path / "cut"
    interrupt_training(1)
    assert main([*TRAIN, "--out-dir", str(out)]) == 130
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 1
    assert succeeded(torchrun(*TRAIN, "--resume", "--out-dir", out))
    _same_run(one_process, out)


@pytest.mark.slow
def test_predict_on_two_processes_assigns_as_one(one_process, tmp_path, capsys):
    folder = image_folder(tmp_path / "parts", {"good": 8, "dent": 5})  # 13 images: shards of 7 and 6
    # --run-dir: torchrun itself refuses --run (ambiguous with its --run-path)
    command = ["predict", "--run-dir", str(one_process), "--dataset", str(folder), "--calibrate", str(folder)]
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert main([*command, "--out", str(one)]) == 0
    printed = capsys.readouterr().out
    done = torchrun(*command, "--out", two)
    assert succeeded(done)
    assert "assigning: features of 7 images" in done.stderr and "of 13 images" not in done.stderr  # rank 0's shard
    a, b = pd.read_csv(one), pd.read_csv(two)
    assert len(a) == 13 and a.path.tolist() == b.path.tolist()
    assert (a.cluster == b.cluster).all() and (a.predicted_defective == b.predicted_defective).all()
    np.testing.assert_allclose(b[["distance", "normal_distance"]], a[["distance", "normal_distance"]], atol=1e-4)
    assert (tmp_path / "two.skipped.csv").is_file() and not list(tmp_path.glob("*.partial"))
    # Rank 0 alone prints: the threshold, the summary and the rates once, as one process does.
    assert printed.count("predicted defective") == 1 and done.stdout.replace(str(two), str(one)) == printed


# self: the default's scorer alone (the discriminator off); bank: references prepared by each process; discriminator:
# the default, self with the discriminator (its patch samples gathered, both halves' models trained by every process)
@pytest.mark.slow
@pytest.mark.parametrize("method", ["self", "bank", "discriminator"])
def test_detect_on_two_processes_scores_as_one(tmp_path, method):
    flags = {"self": ["--discriminator", "0"], "bank": ["--method", "bank"], "discriminator": []}
    command = [*DETECT, *flags[method]]
    assert main([*command, "--out-dir", str(tmp_path / "one")]) == 0
    done = torchrun(*command, "--out-dir", tmp_path / "two")
    assert succeeded(done)
    one, two = (pd.read_csv(tmp_path / name / "scores.csv").sort_values("path") for name in ("one", "two"))
    assert len(one) == len(two) == 600 and one.path.tolist() == two.path.tolist()
    for run in ("one", "two"):
        ran = json.loads((tmp_path / run / "metrics.json").read_text())["discriminator"]["used"]
        assert ran == (method == "discriminator")
    # The discriminator's 300 training steps amplify the rounding of the features each process's threads extract
    # (0.08 % of a score at most between 1 and 2 threads, one pair of runs; training on one thread keeps its own sums
    # out of it: discriminator.py).
    np.testing.assert_allclose(one.score, two.score, rtol=5e-3 if method == "discriminator" else 1e-3, atol=1e-5)
    # The bank's searches run through BLAS (scorers/bank.py), whose sums round by the shape of each search, and each
    # process searches its own shard: the scores agree to about 1e-4 (the squared distances cancel), and images
    # whose scores tie to that rounding may swap places. Two processes' ranking still sorts one's scores, up to it.
    in_twos_order = one.score.to_numpy()[np.argsort(two["rank"].to_numpy())]
    assert (np.diff(in_twos_order) <= 1e-3 * in_twos_order[1:]).all()
    metrics = [json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("one", "two")]
    assert metrics[1]["run"]["processes"] == 2 and metrics[0]["label_free"]["flagged"] == \
        metrics[1]["label_free"]["flagged"]
    drawn = [sorted(p.name for p in (tmp_path / name / "overlays").iterdir()) for name in ("one", "two")]
    assert drawn[0] == drawn[1] and len(drawn[1]) >= 2  # the top 2 and the images either side of the threshold
