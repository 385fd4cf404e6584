"""Where a heavy pile loses (benchmarks/heavy_steps.py): a row for every step, whole and thinned."""

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_discriminator  # benchmarks/ is not a package: its folder on the path
import heavy_steps


def test_every_step_is_scored_on_the_whole_pile_and_its_thinned_part(tmp_path, tiny_pile):
    tiny_pile(tmp_path, odd=slice(-18, None))  # 18 of 48 defective: 45 images thinned to 40 %
    rows = heavy_steps.pile_rows("tiny", tmp_path, [0], defective=0.4)
    assert [(row["part"], row["step"]) for row in rows] == [(part, step) for part in ("whole", "thinned")
                                                            for step in heavy_steps.STEPS]
    assert [row["images"] for row in rows[::len(heavy_steps.STEPS)]] == [48, 45]
    estimate = {(row["part"], row["step"]): row["estimate"] for row in rows}
    assert abs(estimate["thinned", "first"] - 0.4) < 0.05  # the first pass's scores show the 40 % to the null ...
    assert estimate["thinned", "default"] < estimate["thinned", "first"] - 0.2  # ... the last step's hide them
    auroc = {(row["part"], row["step"]): row["auroc"] for row in rows}
    assert min(auroc[part, "first"] for part in ("whole", "thinned")) > 0.9  # the odd squares stand out at first ...
    # ... and the clean bank, 70 % of a pile 37-40 % defective, holds their twins: the second pass loses them
    assert auroc["thinned", "rescored"] < auroc["thinned", "first"] - 0.1


def test_the_last_steps_are_the_discriminator_benchmark_s_off_and_default(tmp_path, tiny_pile):
    tiny_pile(tmp_path)
    pile = heavy_steps.cached_pile("tiny", tmp_path)
    default = detect_discriminator.seed_scores(pile, 0, [1.0], [detect_discriminator.DEFAULT[1]])
    steps = heavy_steps.step_scores(pile, 0)
    assert steps["default"].tolist() == default[detect_discriminator.DEFAULT].scores.tolist()
    assert steps["rescored+peers"].tolist() == default[0.0, 0.0, 0.0].scores.tolist()  # the discriminator off
    assert steps["first"].tolist() != steps["rescored"].tolist()
