r"""Markov chains: the interface every dynamical system of the library implements.

A first-order time-invariant Markov chain has a prior :math:`p(x_1)` and a transition
:math:`p(x_{i+1} \mid x_i)`; a trajectory :math:`x_{1:L}` has the joint density

.. math:: p(x_{1:L}) = p(x_1) \prod_{i=1}^{L-1} p(x_{i+1} \mid x_i).

Trajectories are shaped ``(*batch, L, D)``: batch first, time second, state last. The systems live
one floor up: :mod:`sda_lite.lorenz` (noisy Lorenz-63), :mod:`sda_lite.linear` (a linear-Gaussian
chain with exact posteriors) and :mod:`sda_lite.kolmogorov` (Kolmogorov flow on jax-cfd).
"""

from __future__ import annotations

import abc
import math

import torch
from torch import Tensor
from tqdm.auto import tqdm

Shape = tuple[int, ...] | torch.Size


def _gaussian(
    mean: Tensor, chol: Tensor, shape: Shape | int, generator: torch.Generator | None, dtype
) -> Tensor:
    r"""Samples :math:`m + L z` with :math:`z \sim \mathcal{N}(0, I)`, shaped ``(*shape, D)``."""

    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    z = torch.randn(*shape, mean.shape[-1], generator=generator, dtype=torch.float64)
    return (mean + z @ chol.mT).to(dtype)


def _check_state(x: Tensor, D: int, name: str = "x") -> None:
    if not isinstance(x, Tensor) or x.ndim < 1 or x.shape[-1] != D:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} has shape {shape}: expected a tensor shaped (*batch, {D})")


class MarkovChain(abc.ABC):
    r"""Abstract first-order time-invariant Markov chain over states of dimension ``D``."""

    D: int

    @abc.abstractmethod
    def prior(self, shape: Shape = (), generator: torch.Generator | None = None) -> Tensor:
        r"""Samples :math:`x_1 \sim p(x_1)`, shaped ``(*shape, D)``."""

    @abc.abstractmethod
    def transition(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""Samples :math:`x_{i+1} \sim p(x_{i+1} \mid x_i = x)`, with ``x: (*batch, D)``."""

    @abc.abstractmethod
    def log_prob(self, x_prev: Tensor, x_next: Tensor) -> Tensor:
        r"""Returns :math:`\log p(x_{i+1} = x_{next} \mid x_i = x_{prev})`, shaped ``(*batch)``."""

    def trajectory(
        self,
        x: Tensor,
        length: int,
        generator: torch.Generator | None = None,
        progress: bool = False,
    ) -> Tensor:
        r"""Samples :math:`x_{1:L}` given :math:`x_1 = x`.

        Arguments:
            x: The first state, ``(*batch, D)``.
            length: The number of states ``L >= 1``, the first included.

        Returns:
            The trajectory, ``(*batch, L, D)``, whose first state is ``x``.
        """

        _check_state(x, self.D)
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"length={length!r}: expected an integer >= 1")

        xs = [x]
        for _ in tqdm(range(length - 1), desc="trajectory", disable=not progress):
            xs.append(self.transition(xs[-1], generator=generator))
        return torch.stack(xs, dim=-2)

    def log_prob_trajectory(self, x: Tensor) -> Tensor:
        r"""Returns :math:`\sum_{i=1}^{L-1} \log p(x_{i+1} \mid x_i)` of ``x: (*batch, L, D)``, shaped ``(*batch)``."""

        if x.ndim < 2 or x.shape[-1] != self.D:
            raise ValueError(f"x has shape {tuple(x.shape)}: expected (*batch, L, {self.D})")
        return self.log_prob(x[..., :-1, :], x[..., 1:, :]).sum(dim=-1)


class NoisyRK4Chain(MarkovChain):
    r"""A chain whose transition is one RK4 step of :math:`\dot{x} = f(x)` of length
    :math:`\Delta` plus Gaussian noise, :math:`x_{i+1} = \mathrm{RK4}(x_i) + w`,
    :math:`w \sim \mathcal{N}(0, \mathrm{noise} \, I)` (Lorenz-63, Lorenz-96). Subclasses set
    ``D``, ``dt`` and ``noise``, and define the vector field ``f`` and the ``prior``."""

    D: int
    dt: float
    noise: float

    @abc.abstractmethod
    def f(self, x: Tensor) -> Tensor:
        r"""The vector field, ``x: (*batch, D)`` -> ``(*batch, D)``."""

    def rk4(self, x: Tensor) -> Tensor:
        r"""One deterministic fourth-order Runge-Kutta step of length :math:`\Delta`.

        .. math:: x + \tfrac{\Delta}{6} (k_1 + 2 k_2 + 2 k_3 + k_4)
        """

        _check_state(x, self.D)
        k1 = self.f(x)
        k2 = self.f(x + self.dt / 2 * k1)
        k3 = self.f(x + self.dt / 2 * k2)
        k4 = self.f(x + self.dt * k3)
        return x + self.dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    def transition(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""Samples :math:`x_{i+1} = \mathrm{RK4}(x_i) + w`, :math:`w \sim \mathcal{N}(0, \mathrm{noise} \, I)`."""

        w = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return self.rk4(x) + math.sqrt(self.noise) * w

    def log_prob(self, x_prev: Tensor, x_next: Tensor) -> Tensor:
        r"""Returns :math:`\log \mathcal{N}(x_{next} \mid \mathrm{RK4}(x_{prev}), \mathrm{noise} \, I)`.

        Arguments ``x_prev, x_next: (*batch, D)``; returns ``(*batch)``.
        """

        _check_state(x_next, self.D, "x_next")
        r = x_next - self.rk4(x_prev)
        return -0.5 * (
            r.square().sum(dim=-1) / self.noise + self.D * math.log(2 * math.pi * self.noise)
        )
