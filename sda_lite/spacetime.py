r"""A window prior local in time and in space: one network for periodic 1-D states of any size.

A chain whose state is a ring of :math:`N` sites coupled to near neighbours only (Lorenz-96, a
discretised periodic PDE) is Markov in time *and* local in space: the score of the state
:math:`x_{i,j}` (time :math:`i`, site :math:`j`) involves its Markov blanket of :math:`2k + 1`
states, and within them only the sites near :math:`j`. A network that sees windows of
:math:`2k + 1` states as channels and the sites as a periodic 1-D axis, convolutions all the way,
is built for that:

* it is *equivariant to circular shifts* of the sites, as the dynamics are (same law at every site);
* each output site sees only :attr:`SpaceTimeNet.receptive_field` sites on either side, so it
  learns a local score; and
* it has no parameter tied to :math:`N`: trained on rings of one size, it evaluates on rings of any
  other, and a state that repeats with period :math:`N'` dividing :math:`N` gets the repeated
  prediction of the ring of :math:`N'`.

It is a window predictor: train ``VPSDE(SpaceTimeNet(k), shape=(2k + 1, N))`` on windows, and
sample trajectories ``(L, N)`` with ``VPSDE(LocalScore(net), shape=(L, N))``
(:class:`~sda_lite.score.LocalScore` composes windows along the time axis).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sda_lite.nets import TimeEmbedding, UNet
from sda_lite.schedule import NoiseSchedule
from sda_lite.schedule import time as check_time


class SpaceTimeNet(nn.Module):
    r"""Window noise predictor over periodic 1-D states: the :math:`2k + 1` states of a window are
    the channels of a residual network of circular convolutions along the :math:`N` sites.

    .. math:: \epsilon_\phi(w(t), t) = \sigma_t \, w(t) + \mu_t \, F_\phi(w(t), t),

    the v-parametrisation of :class:`~sda_lite.score.LocalScoreNet` (exact for standardised Gaussian
    data at :math:`F_\phi = 0`, and the identity :math:`\epsilon \approx w(t)` at :math:`t \to 1`),
    with :math:`F_\phi` a one-level :class:`~sda_lite.nets.UNet` (no down-sampling, so any
    :math:`N` goes): a circular convolution lifts the :math:`2k + 1` channels to ``channels``,
    ``2 * blocks`` residual blocks (normalisation over channels at each site, modulated by the
    time embedding) follow, and a last circular convolution, zero at initialisation, returns
    :math:`2k + 1` channels.

    Arguments:
        k: The half-width of the windows (order of the Markov blanket), ``k >= 1``.
        channels: The hidden channels per site.
        blocks: The residual blocks of each half of the U-Net (``2 * blocks`` in all).
        kernel_size: The (odd) size of the convolution kernels, in sites.
        embedding: The number of time-embedding features.
        alpha, eta: The schedule of the ``VPSDE`` that trains and samples the network.

    Shapes:
        ``w: (*batch, 2k + 1, N)`` for any ``N >= 1``, ``t`` broadcastable to ``batch`` in
        :math:`[0, 1]` -> ``(*batch, 2k + 1, N)``.
    """

    def __init__(
        self,
        k: int,
        channels: int = 64,
        blocks: int = 2,
        kernel_size: int = 3,
        embedding: int = 32,
        alpha: str = "cos",
        eta: float = 1e-3,
    ):
        super().__init__()

        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k={k!r}: expected the Markov blanket half-width, an integer >= 1")
        for name, value in (("channels", channels), ("blocks", blocks)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        self.k, self.schedule = k, NoiseSchedule(alpha, eta)
        self.embedding = TimeEmbedding(embedding)
        window = 2 * k + 1
        self.net = UNet(
            window,
            window,
            embedding,
            channels=(channels,),
            blocks=blocks,
            kernel_size=kernel_size,
            spatial=1,
            circular=True,
        )
        r = kernel_size // 2
        self.receptive_field = r * (2 + 2 * 2 * blocks)
        r"""The number of sites on either side of a site that its prediction depends on."""

    def forward(self, w: Tensor, t: Tensor | float) -> Tensor:
        window = 2 * self.k + 1
        if not isinstance(w, Tensor) or w.dim() < 2 or w.shape[-2] != window:
            shape = tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__
            raise ValueError(
                f"w has shape {shape}: expected windows (*batch, {window}, N) (k={self.k})"
            )
        t = check_time(torch.as_tensor(t, dtype=w.dtype, device=w.device))
        F = self.net(w, self.embedding(t))
        mu, sigma = (
            v.to(w)[..., None, None] for v in (self.schedule.mu(t), self.schedule.sigma(t))
        )
        return sigma * w + mu * F
