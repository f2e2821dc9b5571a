"""The protocol's statistics by value: the mean and standard error the paper reports (sample
standard deviation over √n), the agreement rule, the seeds of repeated inference."""

from __future__ import annotations

import math
import statistics

import pytest

from noprop_core.engine.protocol import agrees, inference_seed, spread


def test_spread_is_the_mean_and_the_standard_error_of_the_mean():
    values = [97.0, 98.5, 99.0, 96.5, 98.0, 97.5]
    result = spread(values)
    assert result.mean == pytest.approx(statistics.fmean(values))
    # sample (n − 1) standard deviation over √n: a population deviation or a missing √n would differ
    assert result.standard_error == pytest.approx(statistics.stdev(values) / math.sqrt(6))
    assert result.standard_error == pytest.approx(0.3818813079)  # by hand: s = 0.935414, / √6
    assert result.n == 6
    assert result.text() == "97.75 ± 0.38"


def test_a_single_value_has_no_standard_error():
    assert spread([99.1]).standard_error is None and spread([99.1]).text() == "99.10"
    with pytest.raises(ValueError):
        spread([])


@pytest.mark.parametrize(
    ("ours", "paper", "paper_se", "expected"),
    [
        ([99.4, 99.5, 99.45], 99.47, 0.05, True),  # |Δ| 0.02 ≤ 2·√(0.029² + 0.05²) = 0.116
        ([98.0, 98.1, 98.2], 99.47, 0.05, False),
        ([99.0, 99.2, 99.1], 99.47, 0.10, False),  # |Δ| 0.37 > 2·√(0.058² + 0.1²) = 0.231
        ([99.0, 99.2, 99.1], 99.47, 0.20, True),  # |Δ| 0.37 ≤ 2·√(0.058² + 0.2²) = 0.416
    ],
)
def test_agreement_is_within_twice_the_combined_standard_error(ours, paper, paper_se, expected):
    assert agrees(spread(ours), paper, paper_se) is expected


def test_no_agreement_verdict_without_a_spread():
    assert agrees(spread([99.4]), 99.47, 0.05) is None


def test_inference_seeds_are_the_seed_then_distinct():
    seeds = [inference_seed(7, run) for run in range(5)]
    assert seeds[0] == 7 and len(set(seeds)) == 5 and all(0 <= s < 2**63 for s in seeds)
    assert inference_seed(8, 1) != inference_seed(7, 1) and inference_seed(7, 1) not in range(100)
