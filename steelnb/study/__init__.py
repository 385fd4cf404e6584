"""What the experiment notebooks (notebooks/NN_*.ipynb) stand on, one module per concern:

- `notebook`: where a notebook's results go, the thread cap for small runs;
- `datasets`: which images play each experiment (real where present, else a stand-in that says so);
- `configs`: the TrainConfig of an experiment's runs, from a profile;
- `runs`: one scored run, repeated over seeds, per backbone, per stability repetition; the baselines beside;
- `tables`: mean ± std per setting, confusion and per-class accuracy, the paper's figures beside the measured;
- `figures`: the figures of those tables; `records`: result files with what they must say (run.json);
- `readme`: `results/<profile>/README.md`; `paper`: the paper's reported figures and the bars measured here.

Import each name from the module that owns it (`from steelnb.study import tables; tables.mean_std(...)`).
"""
