"""The joint method of Bai et al. (2024): cluster features into pseudo-labels, train on them, repeat.

- `config`: `TrainConfig`, every setting of a run (config.json);
- `cluster`: preprocessing (PCA, L2) and the clusterers; `heads`, `losses`, `optim`: what trains on the
  pseudo-labels; `inputs`: what a run reads from its data; `runfiles`: the files of a run folder;
- `train`: the loop (`Trainer`, `train`); `model`: `TrainedRun`, what model.pt holds;
- `predict`: assigning new images and the label-free defect decision; `bench`: one epoch timed by phase.

Import each name from the module that owns it (`from steelnb.method.train import train`).
Views and backbones (`steelnb.views`, `steelnb.backbones`) are shared with the baselines and live beside.
"""
