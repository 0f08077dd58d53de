"""Bootstrap confidence intervals over val images, and t intervals over seeds.

A *statistic* maps a resample of image indices (``0..n-1``, with repeats) to a
number; the builders below make one per metric from per-image results. The
bootstrap resamples images, not pixels or boxes: images are the independent
units of a val split.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from scipy import stats

from cl_bench.metrics import coco_map, iou_from_confusion

Statistic = Callable[[np.ndarray], float]
"""``stat(indices) -> float``: the metric on the val images ``indices`` (repeats count twice)."""

# scipy >= 1.15 seeds bootstrap with ``rng=``, older versions with ``random_state=``
_RNG_KEYWORD = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


# ---- statistics -------------------------------------------------------------------

def miou_statistic(confusions: np.ndarray | torch.Tensor, key: Literal["mIoU", "pixel_acc"] = "mIoU") -> Statistic:
    """``iou_from_confusion(...)[key]`` of the summed per-image confusion matrices ``[N, C, C]``."""
    confusions = np.asarray(confusions, dtype=np.int64)
    if confusions.ndim != 3 or confusions.shape[1] != confusions.shape[2]:
        raise ValueError(f"per-image confusion matrices must be [N, C, C], got {list(confusions.shape)}")

    def stat(indices: np.ndarray) -> float:
        return iou_from_confusion(torch.from_numpy(confusions[indices].sum(axis=0)))[key]
    return stat


def mean_statistic(values: np.ndarray | Sequence[float]) -> Statistic:
    """Mean of per-image values (Top-1: 1.0 where the image is classified right, else 0.0)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"per-image values must be a vector, got shape {list(values.shape)}")

    def stat(indices: np.ndarray) -> float:
        return float(values[indices].mean())
    return stat


class CocoResampler:
    """A COCO val set whose images can be resampled with repeats.

    Image ``i`` is ``sorted(image_ids)[i]``, so base and final detections on
    the same images index the same images. A resample is a new COCO data set in
    which every drawn image, repeats included, is a distinct image with a fresh
    id (its position in the resample) and fresh annotation ids.
    """

    def __init__(self, ground_truth: dict[str, Any], detections: list[dict[str, Any]], image_ids: list[int]):
        self.ground_truth = ground_truth
        self.image_ids = _sorted_ids(image_ids)
        images = {image["id"]: image for image in ground_truth["images"]}
        self.images = [images[i] for i in self.image_ids]
        self.annotations = _group(ground_truth["annotations"], self.image_ids)
        self.image_detections = _group(detections, self.image_ids)

    def resample(self, indices: np.ndarray) -> tuple[dict[str, Any], list[dict[str, Any]], list[int]]:
        """``(ground_truth, detections, image_ids)`` of the resample, ready for ``coco_map``."""
        images, annotations, detections = [], [], []
        for new_id, i in enumerate(indices.tolist()):
            images.append({**self.images[i], "id": new_id})
            annotations += [{**a, "id": len(annotations) + k + 1, "image_id": new_id}
                            for k, a in enumerate(self.annotations[i])]
            detections += [{**d, "image_id": new_id} for d in self.image_detections[i]]
        ground_truth = {**self.ground_truth, "images": images, "annotations": annotations}
        return ground_truth, detections, list(range(len(images)))


class _PerImageCocoEval:
    """COCOeval's evaluate() once per val image, accumulate() per resample.

    COCOeval matches detections to ground truth per (image, category), so an
    image's matches do not depend on the other images; a resample only changes
    which per-image results accumulate() pools (a repeat is pooled twice, in
    resample order as fresh ids would sort). Evaluation is restricted to what
    mAP and mAP@0.5 read (area "all", the largest max-detections), the cells
    ``coco_map``'s summarize() reports as stats[0] and stats[1].
    """

    def __init__(self, ground_truth: dict[str, Any], detections: list[dict[str, Any]], image_ids: list[int]):
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = ground_truth
            coco_gt.createIndex()
            self.evaluator = COCOeval(coco_gt, coco_gt.loadRes(detections), iouType="bbox")
            params = self.evaluator.params
            params.imgIds = image_ids
            area_all = params.areaRngLbl.index("all")
            params.areaRng, params.areaRngLbl = [params.areaRng[area_all]], ["all"]
            params.maxDets = [max(params.maxDets)]
            self.evaluator.evaluate()
        per_image = np.empty(len(self.evaluator.evalImgs), dtype=object)
        per_image[:] = self.evaluator.evalImgs
        self.per_image = per_image.reshape(len(params.catIds), len(image_ids))  # evaluate()'s category-major order
        self.results: dict[bytes, dict[str, float]] = {}

    def __call__(self, indices: np.ndarray) -> dict[str, float]:
        """mAP and mAP@0.5 of the resample, accumulated once per distinct resample (the statistics of both
        metrics, drawn with the same seed, ask for the same resamples)."""
        key = indices.tobytes()
        if key not in self.results:
            self.results[key] = self._accumulate(indices)
        return self.results[key]

    def _accumulate(self, indices: np.ndarray) -> dict[str, float]:
        evaluator = self.evaluator
        evaluator.evalImgs = self.per_image[:, indices].ravel().tolist()
        evaluator.params.imgIds = evaluator._paramsEval.imgIds = list(range(len(indices)))
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator.accumulate()
        precision = evaluator.eval["precision"][:, :, :, 0, 0]  # [IoU threshold, recall, category]
        at_50 = precision[evaluator.params.iouThrs == 0.5]
        return {"mAP": _present_mean(precision), "mAP50": _present_mean(at_50)}


def _present_mean(precision: np.ndarray) -> float:
    """summarize()'s mean over cells with ground truth (-1 marks none), clipped at 0 as in ``coco_map``."""
    present = precision[precision > -1]
    return max(float(present.mean()), 0.0) if present.size else 0.0


def coco_statistic(ground_truth: dict[str, Any], detections: list[dict[str, Any]], image_ids: list[int],
                   key: Literal["mAP", "mAP50"] = "mAP", *, exact: bool = False) -> Statistic:
    """COCO mAP or mAP@0.5 of a resample of ``sorted(image_ids)`` (see ``CocoResampler``).

    ``exact`` runs ``coco_map`` on each resampled data set (0.23 s per resample
    of 60 images with 100 detections each); the default pools per-image
    COCOeval results (``_PerImageCocoEval``): the same numbers in 9 ms
    (bench/bootstrap_speed.py; tests/test_bootstrap.py checks they agree).
    """
    return coco_statistics(ground_truth, detections, image_ids, (key,), exact=exact)[key]


def coco_statistics(ground_truth: dict[str, Any], detections: list[dict[str, Any]], image_ids: list[int],
                    keys: Sequence[Literal["mAP", "mAP50"]] = ("mAP", "mAP50"), *,
                    exact: bool = False) -> dict[str, Statistic]:
    """``coco_statistic`` of each of ``keys``, sharing one per-image evaluation: a resample that both
    statistics draw is accumulated once."""
    if exact:
        resampler = CocoResampler(ground_truth, detections, image_ids)
        return {key: (lambda indices, key=key: coco_map(*resampler.resample(indices))[key]) for key in keys}
    if not detections:
        return {key: (lambda indices: 0.0) for key in keys}  # as coco_map: no detections, no mAP
    evaluate = _PerImageCocoEval(ground_truth, detections, _sorted_ids(image_ids))
    return {key: (lambda indices, key=key: evaluate(indices)[key]) for key in keys}


def _sorted_ids(image_ids: list[int]) -> list[int]:
    if len(set(image_ids)) != len(image_ids):
        raise ValueError("image_ids has repeats")
    return sorted(image_ids)


def _group(rows: list[dict[str, Any]], image_ids: list[int]) -> list[list[dict[str, Any]]]:
    """``rows`` per image of ``image_ids``, in their original order (rows of other images dropped)."""
    by_id: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_id[row["image_id"]].append(row)
    return [by_id.get(i, []) for i in image_ids]


# ---- bootstrap intervals ----------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    """A statistic on all images and its percentile bootstrap interval."""

    value: float
    low: float
    high: float
    distribution: np.ndarray
    """The statistic on each resample."""


@dataclass(frozen=True)
class DropInterval:
    """A paired bootstrap of a relative drop, with base and final from the same resamples."""

    drop: Interval
    base: Interval
    final: Interval
    threshold: float
    pass_share: float
    """Fraction of resamples with drop <= threshold: how stable the verdict is under resampling the
    images, not a probability that the run passes (and blind to the spread over seeds)."""

    @property
    def passed(self) -> bool:
        """The drop on all images is at most the threshold."""
        return bool(self.drop.value <= self.threshold)


def interval(stat: Statistic, n: int, *, resamples: int = 200, confidence: float = 0.95, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``stat`` over ``n`` images (scipy.stats.bootstrap), deterministic by seed."""
    value, low, high, distribution = _bootstrap(stat, n, resamples, confidence, seed)
    return Interval(float(value), float(low), float(high), distribution)


def relative_drop(base: float | np.ndarray, final: float | np.ndarray) -> float | np.ndarray:
    """``(base - final) / base * 100``; where base is 0: 0 when final >= base, else inf
    (nothing learned cannot be forgotten); NaN where a value is missing."""
    base, final = np.asarray(base, dtype=np.float64), np.asarray(final, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = np.where(base == 0, np.where(final >= base, 0.0, np.inf), (base - final) / base * 100)
    return drop[()] if drop.ndim == 0 else drop


def drop_interval(base_stat: Statistic, final_stat: Statistic, n: int, *, threshold: float = 5.0,
                  resamples: int = 200, confidence: float = 0.95, seed: int = 0) -> DropInterval:
    """Paired bootstrap of the relative drop % from ``base_stat`` to ``final_stat``.

    Each resample draws one set of image indices for both model states, so the
    interval reflects the images both were evaluated on; ``relative_drop``
    defines the drop (also where a resample's base is 0). The base and final
    intervals come free: they equal ``interval()`` of each statistic with the
    same seed.
    """
    def stat(indices: np.ndarray) -> np.ndarray:
        base, final = base_stat(indices), final_stat(indices)
        return np.array([base, final, relative_drop(base, final)])

    with warnings.catch_warnings():  # scipy warns when every resample gives one value (e.g. all drops 0)
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        value, low, high, distribution = _bootstrap(stat, n, resamples, confidence, seed)
    base, final, drop = (Interval(float(value[i]), float(low[i]), float(high[i]), distribution[i]) for i in range(3))
    return DropInterval(drop=drop, base=base, final=final, threshold=threshold,
                        pass_share=float(np.mean(drop.distribution <= threshold)))


def _bootstrap(stat: Callable[[np.ndarray], Any], n: int, resamples: int, confidence: float,
               seed: int) -> tuple[Any, Any, Any, np.ndarray]:
    """``stat`` on all images, then scipy's percentile bootstrap of it over image indices."""
    result = stats.bootstrap((np.arange(n),), stat, n_resamples=resamples, vectorized=False,
                             confidence_level=confidence, method="percentile",
                             **{_RNG_KEYWORD: np.random.default_rng(seed)})
    ci = result.confidence_interval
    return stat(np.arange(n)), ci.low, ci.high, result.bootstrap_distribution


# ---- across seeds -----------------------------------------------------------------

@dataclass(frozen=True)
class SeedSummary:
    """Mean over seeds, sample std (ddof=1) and Student's t interval of the mean (None for one seed)."""

    n: int
    mean: float
    std: float | None
    ci: tuple[float, float] | None


def seed_summary(values: Sequence[float], *, confidence: float = 0.95) -> SeedSummary:
    """Mean, std and t interval ``mean +- t(n-1) * std / sqrt(n)`` of one metric over seeds.

    With the 3-5 seeds a benchmark affords, the t interval (scipy.stats.t) is
    the right width where a normal or bootstrap interval would be too narrow.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("seed_summary needs a non-empty vector of values")
    n, mean = values.size, float(values.mean())
    if n == 1:
        return SeedSummary(n=1, mean=mean, std=None, ci=None)
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, df=n - 1)) * std / math.sqrt(n)
    return SeedSummary(n=n, mean=mean, std=std, ci=(mean - half, mean + half))


def pass_rate_interval(passed: int, runs: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a pass rate over ``runs`` seeds (scipy.stats.binomtest):
    with 3 seeds, 1 pass gives [0.01, 0.91]."""
    ci = stats.binomtest(passed, runs).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def paired_difference(a_values: Sequence[float], b_values: Sequence[float], *,
                      confidence: float = 0.95) -> SeedSummary:
    """``seed_summary`` of ``a - b`` for two strategies run with the same seeds, in the same order."""
    a_values, b_values = np.asarray(a_values, dtype=np.float64), np.asarray(b_values, dtype=np.float64)
    if a_values.shape != b_values.shape:
        raise ValueError(f"paired values need the same seeds: {a_values.size} vs {b_values.size} values")
    return seed_summary(a_values - b_values, confidence=confidence)


# ---- formatting -------------------------------------------------------------------

def format_interval(value: float, low: float, high: float, fmt: str = ".3f") -> str:
    """``"0.412 [0.371, 0.455]"``."""
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def format_pass(passed: bool, pass_share: float) -> str:
    """``"pass (bootstrap share 0.93)"`` or ``"fail (bootstrap share 0.12)"``."""
    return f"{'pass' if passed else 'fail'} (bootstrap share {pass_share:.2f})"
