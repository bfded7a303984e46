r"""The Markov chains of earlier releases, at their old import path.

:class:`MarkovChain` now lives in :mod:`sda_lite.chain`, :class:`NoisyLorenz63` in
:mod:`sda_lite.lorenz`, :class:`LinearGaussian` in :mod:`sda_lite.linear` and :class:`KolmogorovFlow`
in :mod:`sda_lite.kolmogorov`; this module re-exports them for this release.
"""

from sda_lite.chain import MarkovChain  # noqa: F401
from sda_lite.linear import LinearGaussian  # noqa: F401
from sda_lite.lorenz import NoisyLorenz63  # noqa: F401


def __getattr__(name: str):
    r"""Loads :class:`KolmogorovFlow` lazily, so that JAX is only imported when it is asked for."""

    if name == "KolmogorovFlow":
        from sda_lite.kolmogorov import KolmogorovFlow

        return KolmogorovFlow
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
