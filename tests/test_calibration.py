r"""The calibration scores of sda_lite.calibration: against cases computed by hand here, against
closed forms (the CRPS of a Gaussian, its integral definition) and on properties (a calibrated
ensemble gives a flat rank histogram, the nominal coverage and a spread-skill ratio of one)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from sda_lite.calibration import (
    coverage,
    crps,
    crps_gaussian,
    intervals,
    rank_histogram,
    ranks,
    spread_skill,
)

# --------------------------------------------------------------------------------------------------
# Hand-computed cases


def test_intervals_by_hand():
    x = torch.arange(5.0)[:, None]  # 0, 1, 2, 3, 4; q_a at position h = 6 a, clipped to [1, 5]
    low, high = intervals(x, 0.9)  # h = 0.3 and 5.7: the ends
    assert low.tolist() == [0.0] and high.tolist() == [4.0]
    low, high = intervals(x, 0.5)  # h = 1.5 and 4.5
    assert low.tolist() == pytest.approx([0.5]) and high.tolist() == pytest.approx([3.5])
    low, high = intervals(torch.arange(19.0)[:, None], 0.9)  # h = 1 and 19: the range of 19
    assert low.tolist() == [0.0] and high.tolist() == [18.0]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=30), st.floats(0.01, 0.99))
def test_intervals_are_numpys_weibull_quantiles(a, level):
    x = torch.tensor(a, dtype=torch.float64)[:, None]
    low, high = intervals(x, level)
    q = np.quantile(np.array(a), [(1 - level) / 2, (1 + level) / 2], method="weibull")
    assert [low.item(), high.item()] == pytest.approx(q.tolist(), abs=1e-9)


def test_coverage_by_hand():
    x = torch.arange(5.0)[:, None].expand(5, 3) + torch.tensor([0.0, 10.0, 20.0])
    truth = torch.tensor([-0.1, 12.0, 23.8])  # -0.1 outside both; 12 inside both; 23.8 in 90% only
    cov = coverage(x, truth, levels=(0.5, 0.9))
    assert cov.tolist() == pytest.approx([1 / 3, 2 / 3])
    assert coverage(x, torch.tensor([0.5, 13.5, 20.5]), levels=(0.5,)).tolist() == [1.0]  # ends in


def test_coverage_over_chosen_dimensions():
    x = torch.arange(5.0)[:, None, None].expand(5, 2, 3).clone()
    truth = torch.tensor([[2.0, 2.0, 9.0], [9.0, 9.0, 2.0]])
    cov = coverage(x, truth, levels=(0.5, 0.9), dim=-1)  # per row: (levels, 2)
    assert cov.shape == (2, 2)
    assert cov[:, 0].tolist() == pytest.approx([2 / 3, 2 / 3])
    assert cov[:, 1].tolist() == pytest.approx([1 / 3, 1 / 3])


def test_ranks_by_hand():
    x = torch.tensor([[3.0, 1.0, 0.0], [1.0, 5.0, 0.0], [2.0, 4.0, 0.0]])
    truth = torch.tensor([2.5, 0.5, 7.0])  # below it: 2 (1, 2); none; all three
    assert ranks(x, truth).tolist() == [2, 0, 3]


def test_ties_are_broken_uniformly():
    x = torch.tensor([1.0, 2.0, 2.0, 3.0])[:, None].expand(4, 30_000)
    r = ranks(x, torch.full((30_000,), 2.0), torch.Generator().manual_seed(0))
    counts = torch.bincount(r, minlength=5).tolist()  # 1 below, 2 ties: 1, 2 or 3
    assert counts[0] == counts[4] == 0
    assert all(abs(c - 10_000) < 4 * math.sqrt(10_000 * 2 / 3) for c in counts[1:4]), counts


def test_rank_histogram_by_hand():
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    truth = torch.tensor([-1.0, 0.5, 3.0, 9.0])  # ranks 0, 1, 3, 3
    assert rank_histogram(x, truth).tolist() == [1, 1, 0, 2]
    assert rank_histogram(x, truth, bins=2).tolist() == [2, 2]  # ranks {0, 1} and {2, 3}
    assert rank_histogram(x, truth, bins=1).tolist() == [4]


def test_crps_by_hand():
    x, truth = torch.tensor([[0.0], [1.0]]), torch.tensor([0.0])
    # E|X - y| = 1/2, E|X - X'| = (0 + 1 + 1 + 0) / 4 = 1/2, or 2 / (2 * 1) = 1 for the fair one
    assert crps(x, truth).item() == pytest.approx(0.25)
    assert crps(x, truth, fair=True).item() == pytest.approx(0.0)
    x, truth = torch.tensor([[1.0], [2.0], [4.0]]), torch.tensor([3.0])
    # E|X - y| = 4/3; sum_ij |x_i - x_j| = 2 (1 + 3 + 2) = 12, over 2 * 9 = 18, or 2 * 3 * 2 = 12
    assert crps(x, truth).item() == pytest.approx(4 / 3 - 2 / 3)
    assert crps(x, truth, fair=True).item() == pytest.approx(4 / 3 - 1)
    # one member: the absolute error
    assert crps(torch.tensor([[2.0, -1.0]]), torch.tensor([0.5, 0.5])).item() == pytest.approx(1.5)


def test_spread_skill_by_hand():
    x, truth = torch.tensor([[0.0], [2.0]]), torch.tensor([3.0])
    # spread sqrt(2) (unbiased variance 2), skill |1 - 3| = 2
    assert spread_skill(x, truth, corrected=False).item() == pytest.approx(math.sqrt(2) / 2)
    assert spread_skill(x, truth).item() == pytest.approx(math.sqrt(2) / 2 * math.sqrt(3 / 2))
    x = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    truth = torch.tensor([3.0, 2.0])  # spread sqrt((2 + 8) / 2), skill sqrt((4 + 0) / 2)
    assert spread_skill(x, truth, corrected=False).item() == pytest.approx(math.sqrt(5 / 2))
    per_row = spread_skill(x[:, None], truth[None], dim=-1, corrected=False)  # (1,): one row
    assert per_row.tolist() == pytest.approx([math.sqrt(5 / 2)])


# --------------------------------------------------------------------------------------------------
# Closed forms


@settings(max_examples=20, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=8),
    st.floats(-6, 6),
)
def test_crps_is_the_integral_of_the_squared_cdf_difference(a, y):
    x = torch.tensor(a, dtype=torch.float64)
    z = np.sort(np.concatenate([x.numpy(), [y]]))  # (F - H)^2 is constant between these points
    F = lambda s: (x.numpy() <= s).mean()  # noqa: E731
    integral = sum(
        (F(lo) - float(lo >= y)) ** 2 * (hi - lo) for lo, hi in zip(z[:-1], z[1:]) if hi > lo
    )
    assert crps(x[:, None], x.new_tensor([y])).item() == pytest.approx(integral, abs=1e-9)


@pytest.mark.parametrize("m, s, y", [(0.0, 1.0, 0.0), (1.0, 2.0, -0.5), (-3.0, 0.5, 1.0)])
def test_crps_gaussian_matches_its_integral(m, s, y):
    def integrand(z):
        return (stats.norm.cdf(z, m, s) - float(z >= y)) ** 2

    integral = sum(
        integrate.quad(integrand, lo, hi, limit=200)[0]
        for lo, hi in ((-np.inf, y), (y, np.inf))  # split at the jump
    )
    value = crps_gaussian(torch.tensor(m), torch.tensor(s), torch.tensor(y)).item()
    assert value == pytest.approx(integral, rel=1e-6)
    if y == m:  # z = 0: s (2 phi(0) - 1 / sqrt(pi)) = s (sqrt(2) - 1) / sqrt(pi)
        assert value == pytest.approx(s * (math.sqrt(2) - 1) / math.sqrt(math.pi))


def test_crps_of_many_samples_tends_to_the_gaussian_closed_form():
    g = torch.Generator().manual_seed(1)
    m, s = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 0.3, 2.0])
    truth = torch.tensor([0.5, 1.0, 1.0])
    x = m + s * torch.randn(20_000, 3, generator=g, dtype=torch.float64)
    expected = crps_gaussian(m, s, truth, dim=0)
    assert torch.allclose(crps(x, truth, dim=0), expected, rtol=0.02)
    assert torch.allclose(crps(x, truth, fair=True, dim=0), expected, rtol=0.02)


def test_the_fair_crps_is_unbiased_and_the_plain_one_is_not():
    # n = 4 members and the truth, all N(0, 1): E CRPS = 1 / sqrt(pi) under the distribution, and
    # the plain estimate adds E|X - X'| / (2 n) = 1 / (n sqrt(pi)) (the empirical law is too narrow)
    g, n, B = torch.Generator().manual_seed(2), 4, 200_000
    x = torch.randn(n, B, generator=g, dtype=torch.float64)
    truth = torch.randn(B, generator=g, dtype=torch.float64)
    expected = 1 / math.sqrt(math.pi)
    assert crps(x, truth, fair=True).item() == pytest.approx(expected, rel=0.01)
    assert crps(x, truth).item() == pytest.approx(expected * (1 + 1 / n), rel=0.01)


# --------------------------------------------------------------------------------------------------
# Properties of a calibrated ensemble, and of a miscalibrated one


def draws(n: int, B: int, width: float = 1.0, seed: int = 3):
    r"""``n`` members ``(n, B)`` and the truth ``(B,)``, independent Gaussians of varied means and
    scales per coordinate; the members ``width`` times as wide as the truth's law."""

    g = torch.Generator().manual_seed(seed)
    m = 5 * torch.randn(B, generator=g, dtype=torch.float64)
    s = torch.rand(B, generator=g, dtype=torch.float64) + 0.1
    truth = m + s * torch.randn(B, generator=g, dtype=torch.float64)
    x = m + width * s * torch.randn(n, B, generator=g, dtype=torch.float64)
    return x, truth


def chi2(counts: torch.Tensor) -> float:
    expected = counts.sum().item() / len(counts)
    return ((counts - expected) ** 2 / expected).sum().item()


def test_a_calibrated_ensemble_has_a_flat_rank_histogram():
    x, truth = draws(n=19, B=20_000)
    counts = rank_histogram(x, truth, bins=10)
    assert counts.sum().item() == 20_000
    assert chi2(counts) < stats.chi2.ppf(0.999, df=9), counts  # flat within chi-square bounds


def test_narrow_and_wide_ensembles_bend_the_histogram():
    x, truth = draws(n=19, B=20_000, width=0.5)
    narrow = rank_histogram(x, truth, bins=10)  # U shape: the truth falls outside too often
    assert chi2(narrow) > stats.chi2.ppf(0.999, df=9)
    assert narrow[0] > 2 * narrow[4] and narrow[-1] > 2 * narrow[5]
    x, truth = draws(n=19, B=20_000, width=2.0)
    wide = rank_histogram(x, truth, bins=10)  # dome: the truth sits in the middle
    assert wide[0] < wide[4] / 2 and wide[-1] < wide[5] / 2


def test_a_calibrated_ensemble_covers_at_the_nominal_level():
    levels = (0.1, 0.5, 0.8, 0.9)
    x, truth = draws(n=19, B=20_000)  # few members: the position of the quantiles matters
    cov = coverage(x, truth, levels=levels)
    for p, c in zip(levels, cov.tolist()):  # within 4 binomial standard errors
        assert abs(c - p) < 4 * math.sqrt(p * (1 - p) / 20_000), (p, c)
    narrow = coverage(*draws(n=19, B=20_000, width=0.5), levels=levels)
    assert (narrow[1:] < torch.tensor(levels[1:]) - 0.2).all(), narrow  # measured 0.27 to 0.63


@pytest.mark.parametrize("n", [2, 9, 49])
def test_a_calibrated_ensemble_has_a_spread_skill_ratio_of_one(n):
    x, truth = draws(n=n, B=40_000)
    ratio = spread_skill(x, truth).item()
    assert ratio == pytest.approx(1.0, abs=0.03)
    raw = spread_skill(x, truth, corrected=False).item()  # the finite ensemble's shortfall
    assert raw == pytest.approx(math.sqrt(n / (n + 1)), abs=0.03)
    assert spread_skill(*draws(n=n, B=40_000, width=0.5)).item() < 0.75


def test_the_exact_posterior_has_the_lowest_crps():
    scores = {w: crps(*draws(n=32, B=20_000, width=w), fair=True).item() for w in (0.5, 1, 2)}
    assert scores[1] < scores[0.5] and scores[1] < scores[2], scores


# --------------------------------------------------------------------------------------------------
# Errors say what was given and what was expected


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: coverage(torch.zeros(3, 2), torch.zeros(3)), r"x has shape \(3, 2\) and truth"),
        (lambda: coverage(torch.zeros(3, 2), torch.zeros(2), levels=(1.5,)), r"level=1.5: exp"),
        (lambda: coverage(torch.zeros(3, 2), torch.zeros(2), levels=0.9), r"levels=0.9: exp"),
        (lambda: ranks([1.0, 2.0], torch.zeros(())), r"x is list: expected a tensor"),
        (lambda: rank_histogram(torch.zeros(3, 2), torch.zeros(2), bins=3), r"bins=3 with n = 3"),
        (lambda: crps(torch.zeros(1, 2), torch.zeros(2), fair=True), r"expected samples \(n >= 2"),
        (lambda: spread_skill(torch.zeros(1, 2), torch.zeros(2)), r"expected samples \(n >= 2"),
        (
            lambda: crps(torch.tensor([[float("nan")]]), torch.zeros(1)),
            r"x has 1 non-finite value",
        ),
        (
            lambda: crps_gaussian(torch.zeros(2), torch.tensor([1.0, 0.0]), torch.zeros(2)),
            r"std has values from 0 to 1: expected finite positive",
        ),
        (
            lambda: crps_gaussian(torch.zeros(2), torch.ones(3), torch.zeros(2)),
            r"expected broadcastable shapes",
        ),
    ],
)
def test_errors_name_what_was_given_and_expected(call, match):
    with pytest.raises(ValueError, match=match):
        call()
