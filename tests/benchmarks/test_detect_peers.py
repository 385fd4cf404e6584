"""The lab's shared table printer (benchmarks/detect_peers.show): the rules choose where piles chosen on are in the
table; a table of held-out piles alone is shown without a choice."""

import sys
from pathlib import Path

import pandas as pd

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detect_peers  # benchmarks/ is not a package: its folder on the path


def table(piles: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"pile": pile, "setting": setting, "auroc": auroc}
                         for pile in piles for setting, auroc in (("off", 0.90), ("on", 0.92))])


def test_held_out_piles_alone_are_shown_without_a_choice(capsys):
    detect_peers.show(table(["elpv_mono", "elpv_poly"]), ("ksdd", "dagm"))
    printed = capsys.readouterr().out
    assert "elpv_poly" in printed and "0.92" in printed
    assert "rule:" not in printed


def test_piles_chosen_on_get_each_rule_s_choice_and_others_none(capsys):
    detect_peers.show(table(["ksdd", "dagm", "elpv_mono"]), ("ksdd", "dagm"))
    printed = capsys.readouterr().out
    for rule in ("worst", "regret"):
        choice = printed.split(f"rule: {rule}")[1].split("rule:")[0]
        assert "ksdd" in choice and "elpv_mono" not in choice  # a pile outside `piles` is neither chosen on nor for
        assert choice.split("all")[1].split()[0] == "on"  # the setting chosen over both piles
