"""steelnb: unsupervised steel-surface defect detection (Bai et al. 2024, reproduced and measured)."""

__version__ = "0.1.0"
