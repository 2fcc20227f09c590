from __future__ import annotations

from planner.budget import clamp_pair, clamp_single


def test_single_no_bounds() -> None:
    assert clamp_single(50, 1, -1, -1, 1) == 50


def test_single_max_budget() -> None:
    assert clamp_single(9, 1, -1, 8, 1) == 8  # tutorial: agg capped at 8
    assert clamp_single(8, 1, -1, 8, 1) == 8
    assert clamp_single(5, 2, -1, 8, 1) == 4  # 10 GPUs > 8 -> floor(8/2)
    assert clamp_single(3, 4, -1, 3, 1) == 0  # budget below one replica -> 0
    assert clamp_single(3, 4, -1, 3, 0) == 0


def test_single_min_budget_with_tolerance() -> None:
    # only the floor: below min -> ceil(min / g)
    assert clamp_single(1, 2, 6, -1, 1) == 3
    # both bounds: tolerance of one replica's GPUs below the floor
    assert clamp_single(2, 2, 6, 16, 1) == 2  # 4 >= 6 - 2
    assert clamp_single(1, 2, 6, 16, 1) == 3  # 2 < 4
    assert clamp_single(1, 1, 0, 8, 1) == 1


def test_pair_spec_example() -> None:
    # 6P + 4D with max 8 GPUs -> scale 0.8 -> 4P, 4D
    assert clamp_pair(6, 4, 1, 1, -1, 8, 1) == (4, 4)


def test_pair_cases() -> None:
    assert clamp_pair(2, 1, 1, 1, -1, 8, 1) == (2, 1)  # in band
    assert clamp_pair(1, 1, 4, 4, -1, 7, 1) == (0, 0)  # cannot fit min_endpoint each
    # 3P x 2 GPU + 3D x 2 GPU = 12 > 8: scale 2/3 -> p = max(1, min(floor(6/2)=3, 2)) = 2,
    # d = floor((8 - 4) / 2) = 2
    assert clamp_pair(3, 3, 2, 2, -1, 8, 1) == (2, 2)
    # prefill-heavy: the decode side keeps min_endpoint
    assert clamp_pair(10, 1, 1, 1, -1, 8, 1) == (7, 1)


def test_pair_min_budget() -> None:
    # total 2 < 6 (floor only): p = ceil(1 * 6 / 2) = 3, d = ceil((6 - 3) / 1) = 3
    assert clamp_pair(1, 1, 1, 1, 6, -1, 1) == (3, 3)
    # zero total: p = ceil(min / 2 / gp)
    assert clamp_pair(0, 0, 1, 1, 4, -1, 0) == (2, 2)
    # raising would break the max -> keep the input
    assert clamp_pair(1, 1, 1, 4, 12, 6, 1) == (1, 1)
