r"""A linear-Gaussian chain, whose posteriors given linear-Gaussian observations are exact: the
test bed of the guidance, against the Kalman filter and smoother (:mod:`sda_lite.baselines`) and
brute-force conditioning (:meth:`LinearGaussian.posterior`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from sda_lite.chain import MarkovChain, Shape, _check_state, _gaussian


class LinearGaussian(MarkovChain):
    r"""A linear-Gaussian chain, whose posteriors given linear-Gaussian observations are exact.

    .. math:: x_1 \sim \mathcal{N}(m_0, P_0), \quad x_{i+1} = F x_i + w, \quad w \sim \mathcal{N}(0, Q)

    Computations are carried in float64; samples take the dtype of their input (or the default).

    Arguments:
        F: The transition matrix, ``(D, D)``.
        Q: The transition noise covariance, ``(D, D)``, positive definite.
        m0: The prior mean, ``(D,)``.
        P0: The prior covariance, ``(D, D)``, positive definite.
    """

    def __init__(self, F: Tensor, Q: Tensor, m0: Tensor, P0: Tensor):
        F, Q, m0, P0 = (torch.as_tensor(a, dtype=torch.float64) for a in (F, Q, m0, P0))
        if F.ndim != 2 or F.shape[0] != F.shape[1]:
            raise ValueError(f"F has shape {tuple(F.shape)}: expected a square matrix (D, D)")
        D = F.shape[0]
        for name, a, shape in (("Q", Q, (D, D)), ("m0", m0, (D,)), ("P0", P0, (D, D))):
            if tuple(a.shape) != shape:
                raise ValueError(f"{name} has shape {tuple(a.shape)}: expected {shape} to match F")
        self.D, self.F, self.Q, self.m0, self.P0 = D, F, Q, m0, P0
        self.chol_Q, self.chol_P0 = self._cholesky(Q, "Q"), self._cholesky(P0, "P0")

    @staticmethod
    def _cholesky(C: Tensor, name: str) -> Tensor:
        chol, info = torch.linalg.cholesky_ex(C)
        if info != 0 or not torch.allclose(C, C.mT):
            raise ValueError(
                f"{name}={C.tolist()}: expected a symmetric positive definite covariance"
            )
        return chol

    @staticmethod
    def lyapunov(F: Tensor, Q: Tensor) -> Tensor:
        r"""Solves :math:`P = F P F^\top + Q` for the stationary covariance, with :math:`\rho(F) < 1`.

        Uses :math:`(I - F \otimes F) \, \mathrm{vec}(P) = \mathrm{vec}(Q)`.
        """

        F, Q = torch.as_tensor(F, dtype=torch.float64), torch.as_tensor(Q, dtype=torch.float64)
        radius = torch.linalg.eigvals(F).abs().max().item()
        if radius >= 1:
            raise ValueError(
                f"F has spectral radius {radius:.4g}: expected < 1 for a stationary chain"
            )
        D = F.shape[0]
        P = torch.linalg.solve(torch.eye(D * D, dtype=F.dtype) - torch.kron(F, F), Q.reshape(-1))
        P = P.reshape(D, D)
        return (P + P.mT) / 2

    @classmethod
    def stationary(cls, F: Tensor, Q: Tensor, m0: Tensor | None = None) -> LinearGaussian:
        r"""The chain started in its stationary law: :math:`m_0 = 0`, :math:`P_0 = F P_0 F^\top + Q`."""

        F = torch.as_tensor(F, dtype=torch.float64)
        m0 = torch.zeros(F.shape[-1], dtype=torch.float64) if m0 is None else m0
        return cls(F, Q, m0, cls.lyapunov(F, Q))

    @classmethod
    def rotation(
        cls, theta: float = math.pi / 16, damping: float = 0.95, q: float = 0.1
    ) -> LinearGaussian:
        r"""A stationary damped 2-D rotation, :math:`F = a R(\theta)`, :math:`Q = q I`.

        Its stationary covariance is :math:`P_0 = q / (1 - a^2) \, I` (about the identity by default).
        """

        if not 0 < damping < 1:
            raise ValueError(f"damping={damping!r}: expected a value in (0, 1)")
        if not q > 0:
            raise ValueError(f"q={q!r}: expected a positive noise variance")
        c, s = math.cos(theta), math.sin(theta)
        F = damping * torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        return cls.stationary(F, q * torch.eye(2, dtype=torch.float64))

    def prior(
        self,
        shape: Shape = (),
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
    ) -> Tensor:
        r"""Samples :math:`x_1 \sim \mathcal{N}(m_0, P_0)`, shaped ``(*shape, D)``."""

        return _gaussian(
            self.m0, self.chol_P0, shape, generator, dtype or torch.get_default_dtype()
        )

    def transition(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""Samples :math:`x_{i+1} \sim \mathcal{N}(F x_i, Q)`, with ``x: (*batch, D)``."""

        _check_state(x, self.D)
        z = torch.randn(x.shape, generator=generator, dtype=torch.float64)
        return (x.double() @ self.F.mT + z @ self.chol_Q.mT).to(x.dtype)

    def log_prob(self, x_prev: Tensor, x_next: Tensor) -> Tensor:
        r"""Returns :math:`\log \mathcal{N}(x_{next} \mid F x_{prev}, Q)`, shaped ``(*batch)``."""

        _check_state(x_prev, self.D, "x_prev")
        _check_state(x_next, self.D, "x_next")
        r = x_next.double() - x_prev.double() @ self.F.mT
        z = torch.linalg.solve_triangular(self.chol_Q, r.unsqueeze(-1), upper=False).squeeze(-1)
        logdet = 2 * self.chol_Q.diagonal().log().sum()
        return -0.5 * (z.square().sum(dim=-1) + logdet + self.D * math.log(2 * math.pi))

    def moments(self, L: int) -> tuple[Tensor, Tensor]:
        r"""Exact joint moments of a trajectory of ``L`` states, flattened state-major (index ``i * D + d``).

        .. math:: \mathbb{E}[x_i] = F^{i} m_0, \quad P_{i+1} = F P_i F^\top + Q, \quad
            \mathrm{Cov}(x_i, x_j) = F^{i - j} P_j \text{ for } i \geq j

        Returns:
            The mean, ``(L * D,)``, and covariance, ``(L * D, L * D)``, in float64.
        """

        if not isinstance(L, int) or L < 1:
            raise ValueError(f"L={L!r}: expected an integer >= 1")
        D = self.D
        means, covs = [self.m0], [self.P0]
        for _ in range(L - 1):
            means.append(self.F @ means[-1])
            covs.append(self.F @ covs[-1] @ self.F.mT + self.Q)
        C = torch.zeros(L, D, L, D, dtype=torch.float64)
        for j in range(L):
            block = covs[j]  # Cov(x_i, x_j) for i = j, j + 1, ...
            for i in range(j, L):
                C[i, :, j] = block
                C[j, :, i] = block.mT
                block = self.F @ block
        return torch.stack(means).reshape(L * D), C.reshape(L * D, L * D)

    def _observations(self, y: Tensor, H: Tensor, R: Tensor, every: int, length: int | None):
        y, H, R = (torch.as_tensor(a, dtype=torch.float64) for a in (y, H, R))
        if H.ndim != 2 or H.shape[1] != self.D:
            raise ValueError(f"H has shape {tuple(H.shape)}: expected (O, {self.D})")
        O = H.shape[0]
        if tuple(R.shape) != (O, O):
            raise ValueError(f"R has shape {tuple(R.shape)}: expected ({O}, {O}) to match H")
        if y.ndim < 2 or y.shape[-1] != O:
            raise ValueError(f"y has shape {tuple(y.shape)}: expected (*batch, M, {O}) to match H")
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every={every!r}: expected an integer >= 1")
        M = y.shape[-2]
        L = (M - 1) * every + 1 if length is None else length
        if not isinstance(L, int) or L < (M - 1) * every + 1:
            raise ValueError(
                f"length={length!r}: expected an integer >= {(M - 1) * every + 1} to hold "
                f"{M} observations every {every} states"
            )
        return y, H, R, L

    def kalman_filter(
        self, y: Tensor, H: Tensor, R: Tensor, every: int = 1, length: int | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        r"""The Kalman filter for observations :math:`y_j = H x_{j n} + v`, :math:`v \sim \mathcal{N}(0, R)`.

        Arguments:
            y: The observations, ``(*batch, M, O)``, of the states ``0, n, 2n, ...`` with ``n = every``.
            H: The observation matrix, ``(O, D)``.
            R: The observation noise covariance, ``(O, O)``.
            length: The number of states ``L`` (default ``(M - 1) n + 1``).

        Returns:
            The filtered means ``(*batch, L, D)`` and covariances ``(L, D, D)`` of
            :math:`p(x_i \mid y_{j n \leq i})`, and the predicted ones of :math:`p(x_i \mid y_{j n < i})`.
        """

        y, H, R, L = self._observations(y, H, R, every, length)
        I = torch.eye(self.D, dtype=torch.float64)
        mp, Pp, mf, Pf = [], [], [], []
        m, P = self.m0.expand(*y.shape[:-2], self.D), self.P0
        for i in range(L):
            if i > 0:
                m, P = m @ self.F.mT, self.F @ P @ self.F.mT + self.Q
            mp.append(m)
            Pp.append(P)
            if i % every == 0 and i // every < y.shape[-2]:
                S = H @ P @ H.mT + R
                K = torch.linalg.solve(S, H @ P).mT  # P H^T S^{-1}
                m = m + (y[..., i // every, :] - m @ H.mT) @ K.mT
                P = (I - K @ H) @ P @ (I - K @ H).mT + K @ R @ K.mT  # Joseph form
            mf.append(m)
            Pf.append(P)
        return torch.stack(mf, -2), torch.stack(Pf), torch.stack(mp, -2), torch.stack(Pp)

    def kalman_smoother(
        self, y: Tensor, H: Tensor, R: Tensor, every: int = 1, length: int | None = None
    ) -> tuple[Tensor, Tensor]:
        r"""The Rauch-Tung-Striebel smoother: the marginals of :math:`p(x_i \mid y)` for every state.

        After the Kalman filter, backwards from :math:`i = L - 1`:

        .. math:: G_i = P^f_i F^\top (P^p_{i+1})^{-1}, \quad
            m^s_i = m^f_i + G_i (m^s_{i+1} - m^p_{i+1}), \quad
            P^s_i = P^f_i + G_i (P^s_{i+1} - P^p_{i+1}) G_i^\top

        Arguments are those of :meth:`kalman_filter`.

        Returns:
            The smoothed means ``(*batch, L, D)`` and covariances ``(L, D, D)``, in float64.
        """

        mf, Pf, mp, Pp = self.kalman_filter(y, H, R, every, length)
        L = Pf.shape[0]
        ms, Ps = [mf[..., -1, :]], [Pf[-1]]
        for i in range(L - 2, -1, -1):
            G = torch.linalg.solve(Pp[i + 1], self.F @ Pf[i]).mT
            ms.append(mf[..., i, :] + (ms[-1] - mp[..., i + 1, :]) @ G.mT)
            Ps.append(Pf[i] + G @ (Ps[-1] - Pp[i + 1]) @ G.mT)
        return torch.stack(ms[::-1], -2), torch.stack(Ps[::-1])

    rts = kalman_smoother

    def posterior(
        self, y: Tensor, H: Tensor, R: Tensor, every: int = 1, length: int | None = None
    ) -> tuple[Tensor, Tensor]:
        r"""The exact posterior :math:`p(x_{1:L} \mid y)` by brute-force Gaussian conditioning.

        With the joint moments :math:`(m, C)` of :meth:`moments`, the stacked observation matrix
        :math:`A` and :math:`\Sigma_y = I_M \otimes R`:

        .. math:: K = C A^\top (A C A^\top + \Sigma_y)^{-1}, \quad
            \mu = m + K (y - A m), \quad \Sigma = C - K A C

        Arguments are those of :meth:`kalman_filter`.

        Returns:
            The mean ``(*batch, L, D)`` and the full covariance ``(L * D, L * D)``, flattened
            state-major, in float64.
        """

        y, H, R, L = self._observations(y, H, R, every, length)
        M, O, D = y.shape[-2], H.shape[0], self.D
        m, C = self.moments(L)
        A = torch.zeros(M, O, L, D, dtype=torch.float64)
        for j in range(M):
            A[j, :, j * every] = H
        A = A.reshape(M * O, L * D)
        S = A @ C @ A.mT + torch.block_diag(*[R] * M)
        K = torch.linalg.solve(S, A @ C).mT
        mean = m + (y.flatten(-2) - m @ A.mT) @ K.mT
        cov = C - K @ A @ C
        return mean.unflatten(-1, (L, D)), (cov + cov.mT) / 2
