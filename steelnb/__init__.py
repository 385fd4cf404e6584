"""steelnb: unsupervised steel-surface defect detection (Bai et al. 2024, reproduced and measured).

`steelnb.method` is the joint method (config, clustering, heads, loss, optimisers, the loop, model.pt, predict),
on the shared building blocks beside it (`data`, `views`, `backbones`, `metrics`, `validation`, `runfolder`,
`progress`); `steelnb.baselines` what it is measured against; `steelnb.study` what the notebooks stand on;
`steelnb.cli` the `steelnb` command. The map, with what each part may import: docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
