"""Bootstrap and seed intervals against textbook computations, hand cases and ``coco_map`` itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cl_bench.bootstrap import (
    CocoResampler,
    SeedSummary,
    coco_statistic,
    drop_interval,
    format_interval,
    format_pass,
    interval,
    mean_statistic,
    miou_statistic,
    paired_difference,
    pass_rate_interval,
    relative_drop,
    seed_summary,
)
from cl_bench.metrics import coco_map, iou_from_confusion

# ---- percentile bootstrap ---------------------------------------------------------


def test_mean_interval_is_the_textbook_percentile_bootstrap():
    values = np.random.default_rng(0).random(40)
    resamples = 5000
    ours = interval(mean_statistic(values), len(values), resamples=resamples, seed=1)
    # textbook: draw n indices with replacement per resample, 2.5 and 97.5 percentiles of the means
    rng = np.random.default_rng(12345)
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    # Both are Monte Carlo estimates of the same quantiles from independent draws. The
    # standard error of a p-quantile estimate from B draws is sqrt(p (1 - p) / B) / f(q_p);
    # the means are close to normal with sd s, so f(q_0.025) = pdf(1.96) / s, and the
    # difference of two estimates has sqrt(2) times that error. Allow 4 standard errors
    # (0.21 s here; a 90 % interval instead of 95 % would move each bound by 0.31 s).
    s = means.std()
    tolerance = 4 * math.sqrt(2) * math.sqrt(0.025 * 0.975 / resamples) / 0.05844 * s
    assert ours.low == pytest.approx(low, abs=tolerance)
    assert ours.high == pytest.approx(high, abs=tolerance)
    assert ours.value == pytest.approx(values.mean())
    assert ours.low < ours.value < ours.high
    assert ours.distribution.shape == (resamples,)


def test_interval_is_deterministic_by_seed():
    stat = mean_statistic(np.random.default_rng(0).random(30))
    first, again, other = (interval(stat, 30, seed=seed) for seed in (7, 7, 8))
    assert (first.low, first.high) == (again.low, again.high)
    np.testing.assert_array_equal(first.distribution, again.distribution)
    assert (first.low, first.high) != (other.low, other.high)


# ---- statistics -------------------------------------------------------------------


def test_miou_statistic_on_all_images_is_the_summed_confusion():
    confusions = np.random.default_rng(0).integers(0, 50, (6, 4, 4))
    expected = iou_from_confusion(torch.from_numpy(confusions.sum(axis=0)))
    everything = np.arange(6)
    assert miou_statistic(confusions)(everything) == pytest.approx(expected["mIoU"])
    assert miou_statistic(torch.from_numpy(confusions), "pixel_acc")(everything) == pytest.approx(expected["pixel_acc"])


def test_miou_statistic_hand_case():
    # C[true, predicted] of two images with classes 0 and 1
    confusions = np.array([[[2, 1], [0, 1]],
                           [[0, 0], [1, 3]]])
    stat = miou_statistic(confusions)
    # image 1 alone: class 0 tp 0 / union 1 (predicted once), class 1 tp 3 / union 4
    assert stat(np.array([1])) == pytest.approx((0 + 3 / 4) / 2)
    # images 1, 1, 0: summed [[2, 1], [2, 7]]; class 0 2 / (4 + 3 - 2), class 1 7 / (8 + 9 - 7)
    assert stat(np.array([1, 1, 0])) == pytest.approx((2 / 5 + 7 / 10) / 2)
    assert miou_statistic(confusions, "pixel_acc")(np.array([1, 1, 0])) == pytest.approx(9 / 12)


def test_mean_statistic_counts_repeats():
    assert mean_statistic([1.0, 0.0, 0.0])(np.array([0, 0, 1])) == pytest.approx(2 / 3)


# ---- COCO -------------------------------------------------------------------------


def box(image_id: int, category: int, x: float, y: float, size: float, iscrowd: int = 0) -> dict:
    return {"image_id": image_id, "category_id": category, "bbox": [x, y, size, size], "area": size * size,
            "iscrowd": iscrowd}


def coco_data(boxes: list[dict], image_ids: list[int]) -> dict:
    return {"images": [{"id": i, "width": 100, "height": 100} for i in image_ids],
            "annotations": [{**b, "id": k + 1} for k, b in enumerate(boxes)],
            "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def detection(image_id: int, category: int, x: float, y: float, size: float, score: float) -> dict:
    return {"image_id": image_id, "category_id": category, "bbox": [x, y, size, size], "score": score}


# Four images, deliberately not 0..3 and not in sorted order: hits, misses, a crowd box,
# an image without detections (40) and one without ground truth (30), tied scores across images.
IMAGE_IDS = [20, 10, 40, 30]
GROUND_TRUTH = coco_data([box(10, 1, 10, 10, 20), box(10, 2, 50, 50, 30), box(20, 1, 5, 5, 40),
                          box(20, 1, 60, 60, 10, iscrowd=1), box(40, 2, 30, 30, 25)], IMAGE_IDS)
DETECTIONS = [detection(10, 1, 11, 11, 20, 0.9), detection(10, 2, 0, 0, 30, 0.8), detection(10, 2, 52, 50, 30, 0.5),
              detection(20, 1, 5, 6, 38, 0.8), detection(20, 1, 60, 60, 10, 0.7), detection(20, 2, 5, 5, 40, 0.5),
              detection(30, 1, 40, 40, 20, 0.8), detection(30, 2, 10, 70, 15, 0.3)]


@pytest.mark.parametrize("key", ["mAP", "mAP50"])
@pytest.mark.parametrize("exact", [False, True])
def test_coco_statistic_on_all_images_is_coco_map(key, exact):
    stat = coco_statistic(GROUND_TRUTH, DETECTIONS, IMAGE_IDS, key, exact=exact)
    expected = coco_map(GROUND_TRUTH, DETECTIONS, IMAGE_IDS)[key]
    assert expected > 0
    assert stat(np.arange(4)) == expected


@pytest.mark.parametrize("exact", [False, True])
def test_coco_statistic_counts_a_repeated_image_as_another_image(exact):
    # images are indexed in sorted id order: 10, 20, 30, 40; draw 10, 20, 20, 40
    indices = np.array([0, 1, 1, 3])
    # by hand: image 30 left out, image 20 again as image 25 (sorting right after it), with new annotation ids
    copy = [{**b, "image_id": 25} for b in GROUND_TRUTH["annotations"] if b["image_id"] == 20]
    kept = [b for b in GROUND_TRUTH["annotations"] if b["image_id"] != 30]
    duplicated = coco_data(kept + copy, [10, 20, 25, 40])
    detections = [d for d in DETECTIONS if d["image_id"] != 30] + [
        {**d, "image_id": 25} for d in DETECTIONS if d["image_id"] == 20]
    for key in ("mAP", "mAP50"):
        expected = coco_map(duplicated, detections, [10, 20, 25, 40])[key]
        assert coco_statistic(GROUND_TRUTH, DETECTIONS, IMAGE_IDS, key, exact=exact)(indices) == expected
    once = coco_map(GROUND_TRUTH, DETECTIONS, [10, 20, 40])["mAP"]
    assert coco_map(duplicated, detections, [10, 20, 25, 40])["mAP"] != once  # the repeat matters


def test_coco_resample_has_fresh_ids():
    ground_truth, detections, image_ids = CocoResampler(GROUND_TRUTH, DETECTIONS, IMAGE_IDS).resample(
        np.array([1, 1, 0]))
    assert image_ids == [0, 1, 2]
    assert [image["id"] for image in ground_truth["images"]] == [0, 1, 2]
    annotations = ground_truth["annotations"]
    assert [a["image_id"] for a in annotations] == [0, 0, 1, 1, 2, 2]
    assert len({a["id"] for a in annotations}) == len(annotations)
    assert [d["image_id"] for d in detections] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert GROUND_TRUTH["annotations"][0]["image_id"] == 10  # the original is untouched
    with pytest.raises(ValueError, match="repeats"):
        coco_statistic(GROUND_TRUTH, DETECTIONS, [10, 10])


def test_fast_coco_statistic_equals_coco_map_of_the_resampled_data():
    # random boxes with tied scores and crowd boxes; the fast path pools per-image COCOeval
    # results, the exact one runs coco_map on each resampled data set: same numbers
    rng = np.random.default_rng(0)
    n, boxes, rows = 12, [], []
    for image in range(n):
        for _ in range(rng.integers(0, 4)):
            boxes.append(box(image, int(rng.integers(1, 3)), *rng.uniform(0, 60, 2), rng.uniform(5, 40),
                             iscrowd=int(rng.random() < 0.15)))
            if rng.random() < 0.7:
                b = boxes[-1]["bbox"]
                rows.append(detection(image, boxes[-1]["category_id"], b[0] + rng.normal(0, 3), b[1], b[2],
                                      round(rng.random(), 1)))
        for _ in range(rng.integers(0, 6)):
            rows.append(detection(image, int(rng.integers(1, 3)), *rng.uniform(0, 60, 2), rng.uniform(5, 40),
                                  round(rng.random(), 1)))
    ground_truth = coco_data(boxes, list(range(n)))
    no_detections = sorted(set(range(n)) - {d["image_id"] for d in rows})
    assert no_detections  # so the last resample has no detections at all
    resamples = [rng.integers(0, n, n) for _ in range(8)] + [np.array(no_detections[:1] * n)]
    for key in ("mAP", "mAP50"):
        fast = coco_statistic(ground_truth, rows, list(range(n)), key)
        exact = coco_statistic(ground_truth, rows, list(range(n)), key, exact=True)
        assert [fast(indices) for indices in resamples] == [exact(indices) for indices in resamples]


def test_coco_statistic_without_detections_is_zero():
    assert coco_statistic(GROUND_TRUTH, [], IMAGE_IDS)(np.arange(4)) == 0.0


# ---- paired drop ------------------------------------------------------------------


def test_identical_base_and_final_drop_nothing_in_every_resample():
    # paired: every resample evaluates both on the same images, so the drop is exactly 0
    values = np.random.default_rng(0).random(25)
    result = drop_interval(mean_statistic(values), mean_statistic(values), 25)
    assert (result.drop.value, result.drop.low, result.drop.high) == (0.0, 0.0, 0.0)
    assert result.pass_share == 1.0 and result.passed


def test_large_drop_fails_in_nearly_every_resample():
    rng = np.random.default_rng(0)
    base, final = (rng.random(60) < 0.9).astype(float), (rng.random(60) < 0.3).astype(float)
    result = drop_interval(mean_statistic(base), mean_statistic(final), 60)
    assert result.drop.value == pytest.approx((base.mean() - final.mean()) / base.mean() * 100)
    assert result.drop.low < result.drop.value < result.drop.high
    assert result.pass_share < 0.01 and not result.passed
    assert format_pass(result.passed, result.pass_share) == "fail (bootstrap share 0.00)"


def test_drop_interval_base_and_final_are_their_own_intervals():
    base, final = mean_statistic(np.linspace(0.2, 1, 20)), mean_statistic(np.linspace(0.1, 1, 20) ** 2)
    result = drop_interval(base, final, 20, seed=3)
    for part, stat in ((result.base, base), (result.final, final)):
        alone = interval(stat, 20, seed=3)
        np.testing.assert_array_equal(part.distribution, alone.distribution)
        assert (part.value, part.low, part.high) == (alone.value, alone.low, alone.high)


def test_a_zero_base_follows_the_pass_rule_of_the_results():
    # one image scores: resamples without it have base 0 and final 0, a drop of 0 (nothing to forget),
    # as cl_bench.results counts a zero base
    values = np.zeros(10)
    values[0] = 1.0
    result = drop_interval(mean_statistic(values), mean_statistic(values), 10)
    assert (result.base.distribution == 0).any()
    np.testing.assert_array_equal(result.drop.distribution, 0.0)
    assert result.pass_share == 1.0 and result.passed
    assert relative_drop(0.0, 0.0) == 0.0 and relative_drop(0.0, 0.1) == 0.0 and relative_drop(0.0, -1.0) == math.inf
    assert math.isnan(relative_drop(math.nan, 0.5))


# ---- seeds ------------------------------------------------------------------------


def test_seed_summary_is_the_t_interval():
    summary = seed_summary([0.40, 0.45, 0.47])
    # mean 0.44, deviations -0.04, 0.01, 0.03: std sqrt(0.0026 / 2); t(0.975, df 2) = 4.3027 (t table)
    std = math.sqrt(0.0026 / 2)
    half = 4.302653 * std / math.sqrt(3)
    assert summary.n == 3
    assert summary.mean == pytest.approx(0.44)
    assert summary.std == pytest.approx(std)
    assert summary.ci == pytest.approx((0.44 - half, 0.44 + half), abs=1e-6)


def test_one_seed_has_no_interval():
    assert seed_summary([0.5]) == SeedSummary(n=1, mean=0.5, std=None, ci=None)


def test_paired_difference_is_the_t_interval_of_the_differences():
    summary = paired_difference([0.50, 0.60, 0.55, 0.62], [0.45, 0.58, 0.50, 0.60])
    # differences 0.05, 0.02, 0.05, 0.02: mean 0.035, std sqrt(4 * 0.015^2 / 3); t(0.975, df 3) = 3.1824
    std = math.sqrt(4 * 0.015**2 / 3)
    half = 3.182446 * std / 2
    assert summary.mean == pytest.approx(0.035)
    assert summary.std == pytest.approx(std)
    assert summary.ci == pytest.approx((0.035 - half, 0.035 + half), abs=1e-6)
    constant = paired_difference([0.5, 0.6], [0.4, 0.5])
    assert constant.ci == pytest.approx((0.1, 0.1))
    with pytest.raises(ValueError, match="same seeds"):
        paired_difference([0.5, 0.6, 0.7], [0.4, 0.5])


def test_pass_rate_interval_is_the_exact_binomial_interval():
    # Clopper-Pearson by hand: no pass in n gives [0, 1 - (alpha/2)^(1/n)], all pass the mirror image, and one
    # pass in n has the lower bound 1 - (1 - alpha/2)^(1/n)
    assert pass_rate_interval(0, 3) == pytest.approx((0.0, 1 - 0.025 ** (1 / 3)), abs=1e-6)
    assert pass_rate_interval(3, 3) == pytest.approx((0.025 ** (1 / 3), 1.0), abs=1e-6)
    assert pass_rate_interval(1, 3)[0] == pytest.approx(1 - 0.975 ** (1 / 3), abs=1e-6)
    assert pass_rate_interval(4, 5, confidence=0.5)[1] - pass_rate_interval(4, 5, confidence=0.5)[0] < \
        pass_rate_interval(4, 5)[1] - pass_rate_interval(4, 5)[0]


# ---- formatting -------------------------------------------------------------------


def test_formatting():
    assert format_interval(0.41234, 0.3711, 0.4549) == "0.412 [0.371, 0.455]"
    assert format_interval(12.345, 3.21, 20.0, fmt=".1f") == "12.3 [3.2, 20.0]"
    assert format_pass(True, 0.931) == "pass (bootstrap share 0.93)"
    assert format_pass(False, 0.12) == "fail (bootstrap share 0.12)"
