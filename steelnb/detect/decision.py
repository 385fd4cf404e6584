"""Defective or not: a threshold on the image scores, from the pile alone or from a few labelled images.

Label-free rules (`label_free_threshold`), all on log scores, all assuming that **defects are a minority of the
pile** (under half of it, and few enough not to shift its bulk): the defect-free images then form the bulk of
the score distribution and defects its upper tail.
- `mad`: robust z-score, threshold = exp(median + cutoff x 1.4826 x MAD) (cutoff CUTOFF, 3.5, by default: an image
  is defective when its log score lies more than 3.5 robust standard deviations above the median); when
  over half the pile shares one score (MAD 0), 1.2533 x the mean absolute deviation stands in for the spread
  (Iglewicz and Hoaglin's modified z-score), so that a tiny excess over that score is no defect, and a spread
  under NOISE_SPREAD (0.1 % of a score) is float noise, not the pile's: it is raised to that;
- `gmm`: a two-component Gaussian mixture, the threshold where the upper component becomes the likelier one
  (falls back to `mad` when the mixture does not separate two groups);
- `gap`: the widest gap between consecutive log scores in the upper half of the pile;
- `null`: an empirical null (after Efron): the defect-free bulk of the log scores as a normal whose centre is
  the scores' mode and whose spread is that of the scores below the mode (defects lie above it); the null's
  share is the share of scores within one spread of the centre over what a normal holds there, the defective
  share the rest (`null_fit`); and the threshold is the one that minimises
  the estimated errors, false alarms (the null's tail above it) plus misses (the excess below it). `cutoff` is
  the fewest robust standard deviations above the null's centre that the threshold may lie.
- `auto` (the default): `null` where the empirical null estimates that at least HEAVY_SHARE of a pile of AUTO_MIN
  images or more is defective and finds them apart from the bulk (there the defects themselves inflate `mad`'s
  robust spread and it flags almost none of them), `mad` elsewhere (`auto_rule`);
- `top`: the `cutoff` highest scores (rounded down to a whole number of images; fewer where scores tie at the
  threshold): for a pile whose defects are known to number about that many, or to look at a fixed count.
With labels, `calibrated_threshold` picks the largest threshold whose miss rate (MDR, defective called
defect-free over all images) on a labelled share of the pile stays within a target.

>>> import numpy as np
>>> scores = np.r_[np.linspace(1.0, 1.2, 95), [5.0, 6.0, 7.0, 8.0, 9.0]]
>>> threshold = label_free_threshold(scores, "mad")
>>> int((scores > threshold).sum())
5
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.mixture import GaussianMixture

from ..method.predict import calibrate_threshold

MAD_TO_STD = 1.4826  # MAD x this = standard deviation, for normal data
MEAN_AD_TO_STD = 1.2533  # mean absolute deviation x this = standard deviation, for normal data
# The smallest spread of log scores `mad` takes as real: the same image scored in another batch can move by ~1e-5
# (float32 arithmetic follows the batch's shape), and a pile of near-identical scores must not flag that noise.
NOISE_SPREAD = 1e-3
# `auto` decides by `null` from this estimated defective share up (benchmarks/decision_rules.py: the lab's piles,
# 12-20 % defective, are estimated at 0.30 at most, and their defect-free parts too; 40 % piles at 0.46-0.48) ...
HEAVY_SHARE = 1 / 3
# ... where `null` flags at least this share of what it estimates: a group apart from the bulk, not a long upper
# tail of defect-free scores, which the null reads as excess too (simulated right-skewed defect-free piles that it
# estimates above a third: 0.43 median, 0.62 at most in 99 %; 40 % piles of a separate group: 0.6-1; the
# stand-ins 0.74-0.89) ...
SEPARATED = 0.6
AUTO_MIN = 100  # ... on a pile of at least this many images (below it the estimate is noise: 11 % of simulated
# defect-free piles of 20 are estimated above a third, and a few then have half their images flagged)
NULL_MIN = 20  # images before the empirical null's estimate is worth a warning
# Every rule's default cutoff, chosen at the default's ranking over the lab's nine piles, their defect-free parts and
# the 40 % stand-ins, and leaving out any but the Severstal tiles and stand-in III (results/detect/decision_cutoffs.md:
# the eighteenth round's smallest largest shortfall from each pile's best, over cutoffs 1.5 to 5; the seventeenth
# round's best worst case chose it too, as the top of its grid; 3 until then, chosen in the tenth round on the ranking
# without the discriminator).
CUTOFF = 3.5


def log_scores(scores: np.ndarray) -> np.ndarray:
    """The natural log of `scores` as float64, a score of 0 (or below) read as the smallest positive float."""
    scores = np.asarray(scores, np.float64)
    return np.log(np.maximum(scores, np.finfo(np.float64).tiny))


def _threshold(log_threshold: float, scores: np.ndarray) -> float:
    """exp(`log_threshold`), raised to the largest score whose log lies at or below it: exp(log(s)) may round
    below s, and a score on the threshold must not be called defective."""
    scores = np.asarray(scores, np.float64)
    below = scores[log_scores(scores) <= log_threshold]
    threshold = float(np.exp(log_threshold))
    return max(threshold, float(below.max())) if below.size else threshold


def mad_threshold(scores: np.ndarray, cutoff: float = CUTOFF) -> float:
    """exp(median + cutoff x 1.4826 x MAD) of the log scores; with MAD 0, 1.2533 x the mean absolute deviation
    from the median instead; the spread at least NOISE_SPREAD, so that scores equal up to float noise flag nothing.

    >>> identical = np.array([0.267601, 0.267597, 0.267597, 0.267597, 0.267597])  # one image in another batch
    >>> int((identical > mad_threshold(identical)).sum())
    0
    """
    median, spread = robust_spread(log_scores(scores))
    return _threshold(median + cutoff * max(spread, NOISE_SPREAD), scores)


def robust_spread(values: np.ndarray) -> tuple[float, float]:
    """The median of `values` and their robust standard deviation: 1.4826 x MAD, or 1.2533 x the mean absolute
    deviation where MAD is 0 (0 only when every value is the median)."""
    values = np.asarray(values, np.float64)
    median = float(np.median(values))
    spread = MAD_TO_STD * float(np.median(np.abs(values - median)))
    if spread == 0:
        spread = MEAN_AD_TO_STD * float(np.mean(np.abs(values - median)))
    return median, spread


def gmm_threshold(scores: np.ndarray, cutoff: float = CUTOFF, seed: int = 0) -> float:
    """Where a two-component mixture of the log scores switches to its upper component; `mad` when it cannot."""
    logs = log_scores(scores)
    if len(np.unique(logs)) < 4:
        return mad_threshold(scores, cutoff)
    mixture = GaussianMixture(2, random_state=seed).fit(logs[:, None])
    upper = int(np.argmax(mixture.means_[:, 0]))
    grid = np.linspace(np.median(logs), logs.max(), 512)
    upper_likelier = mixture.predict_proba(grid[:, None])[:, upper] > 0.5
    if not upper_likelier.any() or upper_likelier.all():
        return mad_threshold(scores, cutoff)
    return _threshold(grid[np.argmax(upper_likelier)], scores)


def gap_threshold(scores: np.ndarray, cutoff: float = CUTOFF) -> float:
    """The middle of the widest gap between consecutive log scores above the median."""
    logs = np.sort(log_scores(scores))
    upper = logs[len(logs) // 2:]
    if len(upper) < 2 or upper[-1] == upper[0]:
        return mad_threshold(scores, cutoff)
    widest = int(np.argmax(np.diff(upper)))
    return _threshold((upper[widest] + upper[widest + 1]) / 2, scores)


@dataclass(frozen=True)
class NullFit:
    """The defect-free bulk of the log scores as a normal (centre, spread), and its share of the pile."""

    centre: float
    spread: float
    null_share: float

    @property
    def defective_share(self) -> float:
        """The estimated share of defective images: the pile's excess over the null."""
        return 1.0 - self.null_share


def null_fit(scores: np.ndarray) -> NullFit:
    """The empirical null of the log scores: centre at their mode (a Gaussian kernel density's peak between the
    10th and 90th percentiles), spread from the scores below it (reflected about the centre), and the null's
    share from the scores within one spread of the centre, where defects are fewest (at most 1).

    >>> rng = np.random.default_rng(0)
    >>> fit = null_fit(np.exp(np.r_[rng.normal(0, 0.1, 900), rng.normal(1, 0.1, 100)]))
    >>> abs(fit.centre) < 0.05, round(fit.spread, 2), round(fit.defective_share, 1)
    (True, 0.1, 0.1)
    """
    logs = log_scores(scores)
    if len(np.unique(logs)) < 3:
        return NullFit(float(np.median(logs)), 0.0, 1.0)
    grid = np.linspace(*np.quantile(logs, [0.1, 0.9]), 256)
    centre = float(grid[np.argmax(stats.gaussian_kde(logs)(grid))])
    below = logs[logs < centre]
    spread = float(np.sqrt(np.mean((below - centre) ** 2))) if below.size else 0.0
    if spread == 0:
        return NullFit(centre, 0.0, 1.0)
    central = np.mean(np.abs(logs - centre) <= spread) / (2 * stats.norm.cdf(1) - 1)
    return NullFit(centre, spread, min(1.0, float(central)))


def null_threshold(scores: np.ndarray, cutoff: float = CUTOFF, fit: NullFit | None = None) -> float:
    """The threshold at or above the null's centre + `cutoff` spreads (the fewest) that minimises the estimated
    errors: 2 x null share x N x the null's tail above it, minus the count above it (see the module docstring).
    `fit`: the scores' `null_fit`, where the caller has it."""
    fit = null_fit(scores) if fit is None else fit
    if fit.spread == 0:
        return mad_threshold(scores, cutoff)
    logs = np.sort(log_scores(scores))
    candidates = np.unique(np.maximum(logs, fit.centre + cutoff * fit.spread))  # each flags the scores above it
    tail = stats.norm.sf(candidates, fit.centre, fit.spread)
    above = len(logs) - np.searchsorted(logs, candidates, side="right")
    errors = 2 * fit.null_share * len(logs) * tail - above
    return _threshold(float(candidates[np.argmin(errors)]), scores)


def auto_rule(scores: np.ndarray, cutoff: float = CUTOFF, fit: NullFit | None = None) -> str:
    """The rule `auto` applies to the pile: "null" where, on at least AUTO_MIN images, `null_fit` (or `fit`)
    estimates a defective share of at least HEAVY_SHARE and `null` (at `cutoff`) flags at least SEPARATED of that
    share; else "mad".

    >>> rng = np.random.default_rng(0)
    >>> few = np.exp(np.r_[rng.normal(0, 0.1, 950), rng.normal(1, 0.1, 50)])
    >>> many = np.exp(np.r_[rng.normal(0, 0.1, 600), rng.normal(1, 0.1, 400)])
    >>> auto_rule(few), auto_rule(many)
    ('mad', 'null')
    """
    return _auto(scores, cutoff, fit)[0]


def auto_threshold(scores: np.ndarray, cutoff: float = CUTOFF) -> float:
    """The threshold of the rule `auto_rule` picks for the pile, at `cutoff`."""
    return _auto(scores, cutoff)[1]


def _auto(scores: np.ndarray, cutoff: float, fit: NullFit | None = None) -> tuple[str, float]:
    """`auto`'s rule and its threshold, the null fitted once."""
    if len(scores) >= AUTO_MIN:
        fit = null_fit(scores) if fit is None else fit
        if fit.defective_share >= HEAVY_SHARE:
            threshold = null_threshold(scores, cutoff, fit)
            if np.mean(np.asarray(scores) > threshold) >= SEPARATED * fit.defective_share:
                return "null", threshold
    return "mad", mad_threshold(scores, cutoff)


def top_threshold(scores: np.ndarray, cutoff: float = CUTOFF) -> float:
    """The score of the image ranked just below the `cutoff` highest (so that those are above it); below every
    score when `cutoff` reaches the pile's size."""
    ranked = np.sort(np.asarray(scores, np.float64))[::-1]
    count = int(cutoff)
    if count >= len(ranked):
        return float(np.nextafter(ranked[-1], -np.inf))
    return float(ranked[count])


RULES = {"mad": mad_threshold, "gmm": gmm_threshold, "gap": gap_threshold, "null": null_threshold,
         "auto": auto_threshold, "top": top_threshold}


def label_free_threshold(scores: np.ndarray, rule: str = "mad", cutoff: float = CUTOFF) -> float:
    """The threshold `rule` picks from the pile's own scores (see the module docstring)."""
    return RULES[rule](scores, cutoff)


def calibrated_threshold(scores: np.ndarray, defective: np.ndarray, target_mdr: float, share: float,
                         seed: int = 0) -> tuple[float, np.ndarray]:
    """A threshold for MDR <= `target_mdr` chosen on a seeded, stratified `share` of the labelled pile, and the
    mask of the images it was chosen on (score the decision on the others)."""
    defective = np.asarray(defective).astype(bool)
    rng = np.random.default_rng(seed)
    calibration = np.zeros(len(scores), bool)
    for flag in (False, True):
        members = rng.permutation(np.flatnonzero(defective == flag))
        calibration[members[:max(1, round(share * len(members)))]] = True
    return calibrate_threshold(np.asarray(scores)[calibration], defective[calibration], target_mdr), calibration
