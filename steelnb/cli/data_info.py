"""`steelnb data info`: how a data set is read (counts per class, defect rate, sizes, the files left out)."""

from __future__ import annotations

import argparse

from ..data import DataError, ImageSet, load_dataset
from ..data.sources import describe, size_list
from ..detect.config import DetectConfig
from .flags import NORMAL_CLASS_HELP, at_least, common_parser, default_words, folder_options


def add_flags(data: argparse.ArgumentParser) -> None:
    """`data`'s sub-command `info` and its flags."""
    info = data.add_subparsers(dest="data_command", required=True).add_parser(
        "info", parents=[common_parser()], help="counts per class, defect rate, image sizes")
    info.add_argument("name", nargs="?", help="synthetic, neu, dagm, ksdd, severstal or an image folder (default: "
                      "every named set)")
    info.add_argument("--data-root", help="folder holding neu/, dagm/, ksdd/, severstal/ (default $STEELNB_DATA)")
    info.add_argument("--image-size", type=at_least(1), default=None,
                      help="decode size, pixels a side (>= 1; default: the set's own)")
    info.add_argument("--normal-class", help=NORMAL_CLASS_HELP)
    info.add_argument("--sizes", action="store_true", help="list every source image size with its count")
    info.set_defaults(func=cmd_data_info)


def data_notes(data: ImageSet) -> list[str]:
    """What a person should know about how a data set was read: its defect-free class, its layout."""
    return [data.meta[key] for key in ("layout_note", "normal_class_note") if key in data.meta]


def cmd_data_info(args: argparse.Namespace) -> None:
    """One data set asked for: an error when it cannot be read; none: every named set, or why it is not there."""
    names = [args.name] if args.name else ["synthetic", "neu", "dagm", "severstal"]
    for name in names:
        try:
            data = load_dataset(name, args.data_root, args.image_size, **folder_options(name, args.normal_class))
        except DataError as error:
            if args.name:
                raise
            print(f"{name}: not available ({error})\n")
            continue
        summary = data.summary()
        print(f"{summary['name']}: {summary['images']} images, array {summary['array']}")
        for cls, count in summary["classes"].items():
            print(f"  {cls:<20} {count}")
        rate = summary["defect_rate"]
        print(f"  defect rate: {'unknown' if rate is None else f'{rate:.1%}'}")
        for note in data_notes(data):
            print(f"  {note}")
        print("  source files: " + "\n    ".join(describe(summary["source_sizes"], summary["source_modes"])))
        print(f"  {read_sizes(data)}")
        if args.sizes:
            print("\n".join(f"    {line}" for line in size_list(summary["source_sizes"])))
        for line in skipped_lines(data.skipped):
            print(f"  {line}")
        print()


def read_sizes(data: ImageSet) -> str:
    """The size each command reads the images at, beside the one `data info` shows."""
    height, width = data.images.shape[-2:]
    detect = default_words("max_side", DetectConfig.max_side, "detect")
    train = default_words("image_size", None, "train").replace("none", "the set's own")
    return (f"read by: detect / inspect at their own aspect, the longer side at most --max-side px ({detect}); "
            f"train / predict at --image-size ({train}); shown here at {height} x {width}")


def skipped_lines(skipped: tuple[tuple[str, str], ...], most: int = 3) -> list[str]:
    """One line a file left out, or one line for the files left out for the same reason when more than `most` were
    (a set's masks, say).

    >>> skipped_lines((("a_mask.png", "a mask"), ("b_mask.png", "a mask"), ("c.txt", "not an image")), most=1)
    ['skipped 2 files (a_mask.png, b_mask.png): a mask', 'skipped c.txt: not an image']
    """
    by_reason: dict[str, list[str]] = {}
    for path, why in skipped:
        by_reason.setdefault(why, []).append(path)
    lines = []
    for why, paths in by_reason.items():
        if len(paths) > most:
            lines.append(f"skipped {len(paths)} files ({', '.join(paths[:2])}{', ...' * (len(paths) > 2)}): {why}")
        else:
            lines += [f"skipped {path}: {why}" for path in paths]
    return lines
