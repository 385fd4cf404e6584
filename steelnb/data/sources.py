"""What the source files of a set were: sizes, aspect ratios, channels and bit depth, summarised for a person.

The decode step records `meta["source_sizes"]` ({"WxH": n}) and `meta["source_modes"]` ({PIL mode: n});
`describe` turns them into the lines `steelnb data info` prints:

>>> describe({"200x100": 2, "400x100": 1}, {"L": 3})
['3 files, 2 distinct sizes (--sizes lists them)', 'width  200 / 200 / 400 px (min / median / max)', \
'height 100 / 100 / 100 px', 'aspect ratio (W/H) 2.00 / 2.00 / 4.00', 'form: 3 grayscale, 8 bit (L)']
"""

from __future__ import annotations

import numpy as np

# PIL mode -> (what a person calls it, bits per channel)
MODE_FORMS = {
    "1": ("black and white", 1), "L": ("grayscale", 8), "P": ("palette", 8), "LA": ("grayscale + alpha", 8),
    "RGB": ("RGB", 8), "RGBA": ("RGBA", 8), "CMYK": ("CMYK", 8), "YCbCr": ("YCbCr", 8),
    "I;16": ("grayscale", 16), "I;16B": ("grayscale", 16), "I;16L": ("grayscale", 16), "I": ("grayscale", 32),
    "F": ("grayscale float", 32),
}


def size_table(sizes: dict[str, int]) -> np.ndarray:
    """(N, 2) widths and heights, one row per file, from {"WxH": n}."""
    pairs = [(*map(int, size.split("x")), count) for size, count in sizes.items()]
    return np.array([(w, h) for w, h, count in pairs for _ in range(count)], np.int64).reshape(-1, 2)


def _spread(values: np.ndarray, digits: int, unit: str = "") -> str:
    low, middle, high = (f"{v:.{digits}f}" for v in (values.min(), np.median(values), values.max()))
    return f"{low} / {middle} / {high}{unit}"


def _form(mode: str) -> str:
    name, bits = MODE_FORMS.get(mode, (mode, None))
    return f"{name}, {bits} bit ({mode})" if bits else f"mode {mode}"


def describe(sizes: dict[str, int], modes: dict[str, int]) -> list[str]:
    """Lines summarising the source files: count, size range, aspect ratios, channels and bit depth."""
    if not sizes:
        return ["generated (no source files)"]
    table = size_table(sizes)
    if len(sizes) == 1:
        lines = [f"{len(table)} files, all {next(iter(sizes))}"]
    else:
        lines = [f"{len(table)} files, {len(sizes)} distinct sizes (--sizes lists them)",
                 f"width  {_spread(table[:, 0], 0, ' px')} (min / median / max)",
                 f"height {_spread(table[:, 1], 0, ' px')}",
                 f"aspect ratio (W/H) {_spread(table[:, 0] / table[:, 1], 2)}"]
    if modes:
        forms = sorted(modes.items(), key=lambda item: -item[1])
        lines.append("form: " + ", ".join(f"{count} {_form(mode)}" for mode, count in forms))
    return lines


def size_list(sizes: dict[str, int]) -> list[str]:
    """Every source size with its count, the most common first: what --sizes prints."""
    return [f"{size:>12} {count}" for size, count in sorted(sizes.items(), key=lambda item: (-item[1], item[0]))]
