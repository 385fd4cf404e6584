"""What the commands that write a run folder share: the checks before work, the processes of one run (one, or
torchrun's, rank 0 alone claiming the folder and printing), the line announcing it, and detect's and inspect's run
of a pile."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import distributed, progress
from ..backbones import check_backbone
from ..data import ImageSet, check_source
from ..runfolder import check_outside, claim_run_folder
from .data_info import data_notes
from .flags import folder_options


def check_before_work(dataset: str, data_root: str | None, options: dict, out_dir: str | Path, backbone: str,
                      weights: str) -> None:
    """What a run can check before it claims its folder (where --overwrite moves the earlier run aside): the pile
    is there and holds image files, the out-dir lies outside it, the backbone and its weights exist."""
    check_backbone(backbone, weights)
    pile = check_source(dataset, data_root, **options)
    if pile is not None:
        check_outside(out_dir, pile)


@contextlib.contextmanager
def processes_of_one_run(device: str, claim: Callable[[], contextlib.AbstractContextManager]) \
        -> Iterator[distributed.World]:
    """The command's processes (one, or torchrun's) joined for one run: rank 0 alone claims the run folder
    (`claim()`; `contextlib.nullcontext` where there is none) and reports progress."""
    with distributed.session(device) as world, distributed.main_context(claim):
        if not world.main:
            progress.set_quiet(True)
        yield world


def announce(world: distributed.World, data: ImageSet, line: str) -> None:
    """What a run is about to do, and the set's defect-free class note, printed once (by rank 0)."""
    if world.main:
        print("\n".join([line, *data_notes(data)]))


def processes(world: distributed.World) -> str:
    """" on 2 processes" under torchrun, else nothing."""
    return f" on {world.size} processes" if world.size > 1 else ""


def skipped_note(data: ImageSet, listed_in: Path) -> str:
    """", 3 files skipped (listed in x)" when files were left out, else nothing."""
    n = len(data.skipped)
    return f", {n} file{'s' * (n != 1)} skipped (listed in {listed_in})" if n else ""


def pile_run(config, files: tuple[str, ...], overwrite: bool, score, write, then: str = "") -> None:
    """A detect or inspect run (`DetectConfig` `config`): its processes joined (one, or torchrun's: rank 0 alone
    claims `config.out_dir`, `files` its own, prints and writes), the pile read and announced, `score(data)` on
    every process, then on rank 0 `write(result, data, out)` writes the run's files and returns its summary;
    report.html last, the summary printed."""
    from ..detect import load_pile
    from ..html_report import write_report

    out = Path(config.out_dir)
    check_before_work(config.dataset, config.data_root, folder_options(config.dataset, config.normal_class), out,
                      config.backbone, config.weights)
    with processes_of_one_run(config.device, lambda: claim_run_folder(
            out, files, overwrite=overwrite, finished_file="metrics.json")) as world:
        data = distributed.main_first(load_pile, config)
        announce(world, data, f"{data.name}: {len(data)} images at {data.images.shape[-2]} x "
                 f"{data.images.shape[-1]}{skipped_note(data, out / 'skipped.csv')}; {config.method} scoring with "
                 f"{config.backbone} ({config.weights}){then}{processes(world)} -> {out}")
        result = score(data)
        if not world.main:
            return
        summary = write(result, data, out)
        report = write_report(out)
    print(summary)
    print(f"report: {report.resolve()} (open it in a browser)")
