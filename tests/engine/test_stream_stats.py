"""StreamStats: the batch paths (add_all, add_rates, with GapKeys' remembered sketch keys) keep
exactly the figures of one add() per value, and the sketch's buckets are the DDSketch keys of
the values."""
from __future__ import annotations

import math
import random

from librt.vecs import vec

from engine.metrics import SKETCH_LN_GAMMA, ZERO_BUCKET, GapKeys, StreamStats, sketch_key


def _figures(st: StreamStats) -> tuple[object, ...]:
    return (st.count, st.total, st.mean, st.m2, st.min, st.max, st.n_zero, st.buckets)


def _values(seed: int) -> list[float]:
    rng = random.Random(seed)
    out: list[float] = []
    for _ in range(3000):
        u = rng.random()
        if u < 0.05:
            out.append(0.0)
        elif u < 0.08:
            out.append(-rng.random())
        elif u < 0.5:  # runs of close values (one request's decode gaps)
            out.append(5.0 + rng.random() * 0.05)
        else:  # spread over six decades, so the dense range grows both ways
            out.append(10.0 ** rng.uniform(-3.0, 3.0))
    return out


def test_add_all_and_add_rates_match_one_add_per_value() -> None:
    for seed in range(4):
        values = _values(seed)
        one, batch = StreamStats(), StreamStats()
        rates_one, rates_batch = StreamStats(), StreamStats()
        # In request-sized slices, as MetricColumns.record feeds them; values repeat across
        # slices (a pass's duration is a gap of each request in its batch), so the memo hits.
        memo = GapKeys()
        for i in range(0, len(values), 190):
            chunk = vec[float](values[i:i + 190] + values[max(0, i - 50):i])
            for v in chunk:
                one.add(v)
                if v > 0.0:
                    rates_one.add(1000.0 / v)
            itl_keys, rate_keys = memo.keys(chunk)
            batch.add_all(chunk, itl_keys)
            rates_batch.add_rates(chunk, rate_keys)
        assert _figures(batch) == _figures(one)
        assert _figures(rates_batch) == _figures(rates_one)
        assert rates_one.count > len(values) * 0.9


def test_gap_keys_are_the_sketch_keys_of_each_gap_and_its_rate() -> None:
    memo = GapKeys()
    values = _values(3)
    for rep in range(2):  # the second time every key comes from the table
        memo.keys(vec[float]([1.0] * (len(values) + 9)))  # longer: the rest is stale
        itl, rate = memo.keys(vec[float](values))
        assert len(itl) == len(rate) >= len(values)
        for v, a, b in zip(values, itl, rate):
            if v > 0.0:
                assert (a, b) == (sketch_key(v), sketch_key(1000.0 / v))
            else:
                assert (a, b) == (0, 0)


def test_buckets_are_the_ddsketch_keys() -> None:
    values = _values(7)
    st = StreamStats()
    gaps = vec[float](values)
    st.add_all(gaps, GapKeys().keys(gaps)[0])
    want: dict[int, int] = {}
    for v in values:
        k = ZERO_BUCKET if v <= 0.0 else math.ceil(math.log(v) / SKETCH_LN_GAMMA)
        want[k] = want.get(k, 0) + 1
    assert st.buckets == want
    assert st.n_zero == want[ZERO_BUCKET]
