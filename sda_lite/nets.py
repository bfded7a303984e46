r"""Neural networks for noise predictors: a time embedding, a residual MLP and a U-Net.

Every network is conditioned on a modulation vector ``y`` (the embedding of the diffusion time
:math:`t`) through adaptive layer normalisation: each residual block normalises its input, then
scales and shifts it by :math:`(1 + a(y), b(y))` before its two layers,

.. math:: h \gets h + W_2 \, \mathrm{SiLU}\big(W_1 \, [\mathrm{LN}(h) \odot (1 + a(y)) + b(y)]\big).

The maps :math:`a, b` and the last layer of each network start at zero, so that a fresh network is
a smooth function of its input and predicts :math:`\epsilon = 0`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _zero(layer: nn.Module) -> nn.Module:
    for p in layer.parameters():
        nn.init.zeros_(p)
    return layer


class TimeEmbedding(nn.Module):
    r"""Sinusoidal embedding of the diffusion time :math:`t \in [0, 1]`, followed by a small MLP.

    .. math:: \big(\cos(\pi n t), \sin(\pi n t)\big)_{n = 1}^{N} \mapsto \mathrm{MLP} \in \mathbb{R}^{F}

    Arguments:
        features: The number :math:`F` of output features.
        frequencies: The number :math:`N` of frequencies.

    Shapes:
        ``t: (*batch)`` -> ``(*batch, features)``.
    """

    def __init__(self, features: int, frequencies: int = 16):
        super().__init__()

        if features < 1 or frequencies < 1:
            raise ValueError(
                f"features and frequencies must be >= 1, got {features} and {frequencies}"
            )

        self.register_buffer("freqs", math.pi * torch.arange(1, frequencies + 1, dtype=torch.float))
        self.mlp = nn.Sequential(
            nn.Linear(2 * frequencies, 4 * features),
            nn.SiLU(),
            nn.Linear(4 * features, features),
        )

    def forward(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=self.freqs.dtype, device=self.freqs.device)
        t = self.freqs * t[..., None]
        return self.mlp(torch.cat((t.cos(), t.sin()), dim=-1))


class ResMLP(nn.Module):
    r"""Residual multi-layer perceptron with adaptive layer normalisation.

    ``x`` (concatenated with ``y``) is lifted to ``width`` features, goes through ``depth`` residual
    blocks (LayerNorm modulated by ``y``, Linear, SiLU, Linear) and is projected to ``out_features``
    by a last layer initialised at zero. The residual stream is not normalised before that last
    layer, so the output can grow linearly with the input, as the noise predictor of a Gaussian
    does at large :math:`t` (:math:`\epsilon(x(t), t) \approx x(t)`); a final LayerNorm would cap
    it and the sampler would blow up the rare large noise draws.

    A ``y`` shared by every row, ``(mod_features,)`` (one diffusion time for a whole batch, as while
    sampling), takes a faster path with the same result up to float rounding: the modulation is
    folded into the first layer of each block,
    :math:`W_1 [z \odot (1 + a) + b] = (W_1 \operatorname{diag}(1 + a)) z + W_1 b`, and the head's
    :math:`y` columns into its bias, once per call instead of once per row; without autograd
    (``torch.no_grad``), the blocks also work in place. Under autocast the per-row path runs.

    Arguments:
        in_features: The number of input features.
        out_features: The number of output features.
        width: The number of hidden features.
        depth: The number of residual blocks.
        mod_features: The number of modulation features of ``y`` (0 for none).

    Shapes:
        ``x: (*batch, in_features)``, ``y: (*batch, mod_features)`` (broadcastable) ->
        ``(*batch, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        width: int = 256,
        depth: int = 5,
        mod_features: int = 0,
    ):
        super().__init__()

        if min(in_features, out_features, width) < 1 or depth < 0 or mod_features < 0:
            raise ValueError(
                f"expected in_features, out_features, width >= 1 and depth, mod_features >= 0, got "
                f"{in_features}, {out_features}, {width}, {depth}, {mod_features}"
            )

        self.mod_features = mod_features
        self.head = nn.Linear(in_features + mod_features, width)
        self.blocks = nn.ModuleList(
            _Block(width, mod_features, nn.Linear, spatial=0) for _ in range(depth)
        )
        self.tail = _zero(
            nn.Linear(width, out_features)
        )  # no norm: eps may grow with x, as it must

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        if self.mod_features:
            if y is None or y.shape[-1] != self.mod_features:
                raise ValueError(
                    f"expected y of shape (*batch, {self.mod_features}), got {None if y is None else tuple(y.shape)}"
                )
            if y.dim() == 1 and not torch.is_autocast_enabled(x.device.type):
                return self._shared(x, y)  # (autocast: the per-row path, whose ops it knows)
            batch = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
            h = self.head(torch.cat((x.expand(*batch, -1), y.expand(*batch, -1)), dim=-1))
        else:
            h = self.head(x)
        for block in self.blocks:
            h = block(h, y)
        return self.tail(h)

    def _shared(self, x: Tensor, y: Tensor) -> Tensor:
        r"""The forward pass for one ``y: (mod_features,)`` shared by all rows of ``x: (*batch, in)``."""

        inplace = not torch.is_grad_enabled()
        n = x.shape[-1]
        weight, bias = self.head.weight, self.head.bias
        h = torch.addmm(torch.addmv(bias, weight[:, n:], y), x.reshape(-1, n), weight[:, :n].T)
        for block in self.blocks:
            h = block.shared(h, y, inplace)
        return self.tail(h).reshape(*x.shape[:-1], -1)


class _Block(nn.Module):
    r"""Residual block ``h + f(LN(h) * (1 + a(y)) + b(y))`` with ``f`` = layer, SiLU, layer.

    For ``spatial = 0`` the features are the last axis; for ``spatial > 0`` they are the channel
    axis 1 of ``(B, C, *space)`` and the normalisation runs over channels at each position.
    """

    def __init__(self, channels: int, mod_features: int, layer, spatial: int):
        super().__init__()

        self.spatial = spatial
        self.modulation = _zero(nn.Linear(mod_features, 2 * channels)) if mod_features else None
        self.f = nn.Sequential(layer(channels, channels), nn.SiLU(), layer(channels, channels))

    def forward(self, h: Tensor, y: Tensor | None) -> Tensor:
        if self.spatial:
            z = (h - h.mean(dim=1, keepdim=True)) * torch.rsqrt(
                h.var(dim=1, keepdim=True, unbiased=False) + 1e-5
            )
        else:
            z = F.layer_norm(h, h.shape[-1:])
        if self.modulation is not None:
            a, b = self.modulation(y).chunk(2, dim=-1)
            if self.spatial:
                a, b = (v.reshape(v.shape + (1,) * self.spatial) for v in (a, b))
            z = z * (1 + a) + b
        return h + self.f(z)

    def shared(self, h: Tensor, y: Tensor, inplace: bool) -> Tensor:
        r"""The block of an MLP (``spatial = 0``) for ``h: (N, C)`` and one ``y: (mod_features,)``
        shared by all rows, its modulation folded into the first layer; ``inplace``: ``h`` is
        overwritten (no autograd)."""

        first, second = self.f[0], self.f[2]
        weight, bias = first.weight, first.bias
        if self.modulation is not None:
            a, b = self.modulation(y).chunk(2, dim=-1)
            weight, bias = weight * (1 + a), torch.addmv(bias, weight, b)
        u = torch.addmm(bias, F.layer_norm(h, h.shape[-1:]), weight.T)
        if inplace:
            return h.addmm_(F.silu(u, inplace=True), second.weight.T).add_(second.bias)
        return h + second(F.silu(u))


class UNet(nn.Module):
    r"""U-Net with adaptive layer normalisation, for 1-D or 2-D inputs.

    Level ``i`` works with ``channels[i]`` channels and ``blocks[i]`` residual blocks on the way down
    and as many on the way up. Between levels, a stride-2 convolution halves each spatial size and a
    nearest-neighbour upsampling followed by a convolution doubles it back; skip connections add the
    descending features to the ascending ones. With ``circular=True`` every convolution pads
    periodically, so the network is equivariant to periodic shifts by multiples of
    :math:`2^{\text{levels} - 1}` (the total stride).

    Arguments:
        in_channels: The number of input channels (including any constant context channels).
        out_channels: The number of output channels.
        mod_features: The number of modulation features of ``y`` (0 for none).
        channels: The number of channels per level, e.g. ``(96, 192, 384)``.
        blocks: The number of residual blocks per level (an int for all levels, or one per level).
        kernel_size: The (odd) size of the convolution kernels.
        spatial: The number of spatial dimensions, 1 or 2.
        circular: Whether convolutions pad circularly (periodic domains) instead of with zeros.

    Shapes:
        ``x: (*batch, in_channels, *space)`` with ``len(space) == spatial`` and each size divisible
        by ``2 ** (len(channels) - 1)``, ``y: (*batch, mod_features)`` (broadcastable) ->
        ``(*batch, out_channels, *space)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        mod_features: int = 0,
        channels: Sequence[int] = (32, 64),
        blocks: int | Sequence[int] = 2,
        kernel_size: int = 3,
        spatial: int = 2,
        circular: bool = False,
    ):
        super().__init__()

        channels = tuple(channels)
        blocks = (blocks,) * len(channels) if isinstance(blocks, int) else tuple(blocks)
        if spatial not in (1, 2):
            raise ValueError(f"spatial must be 1 or 2, got {spatial}")
        if not channels or len(blocks) != len(channels) or min(channels) < 1 or min(blocks) < 0:
            raise ValueError(
                "expected one positive channel count and block count per level, "
                f"got channels={channels}, blocks={blocks}"
            )
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and positive, got {kernel_size}")

        conv_type = nn.Conv1d if spatial == 1 else nn.Conv2d
        mode = "circular" if circular else "zeros"

        def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
            return conv_type(
                c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, padding_mode=mode
            )

        def level(c: int, n: int) -> nn.ModuleList:
            return nn.ModuleList(_Block(c, mod_features, conv, spatial) for _ in range(n))

        self.spatial, self.mod_features, self.in_channels = spatial, mod_features, in_channels
        self.stride = 2 ** (len(channels) - 1)
        self.head = conv(in_channels, channels[0])
        self.down = nn.ModuleList(conv(a, b, stride=2) for a, b in zip(channels[:-1], channels[1:]))
        self.up = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), conv(b, a))
            for a, b in zip(channels[:-1], channels[1:])
        )
        self.descent = nn.ModuleList(level(c, n) for c, n in zip(channels, blocks))
        self.ascent = nn.ModuleList(level(c, n) for c, n in zip(channels, blocks))
        self.tail = _zero(conv(channels[0], out_channels))

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        s = self.spatial
        if x.dim() < s + 1 or x.shape[-s - 1] != self.in_channels:
            raise ValueError(
                f"expected x of shape (*batch, {self.in_channels}, {'*space' if s == 1 else 'H, W'}), "
                f"got {tuple(x.shape)}"
            )
        if any(n % self.stride for n in x.shape[-s:]):
            raise ValueError(
                f"spatial sizes {tuple(x.shape[-s:])} must be divisible by the total stride {self.stride}"
            )

        batch = x.shape[: -s - 1]
        x = x.reshape(-1, *x.shape[-s - 1 :])
        if self.mod_features:
            if y is None or y.shape[-1] != self.mod_features:
                raise ValueError(
                    f"expected y of shape (*batch, {self.mod_features}), got {None if y is None else tuple(y.shape)}"
                )
            y = y.expand(*batch, self.mod_features).reshape(-1, self.mod_features)

        h, memory = self.head(x), []
        for i, blocks in enumerate(self.descent):
            if i > 0:
                h = self.down[i - 1](h)
            for block in blocks:
                h = block(h, y)
            memory.append(h)
        for i in reversed(range(len(self.ascent))):
            for block in self.ascent[i]:
                h = block(h, y)
            if i > 0:
                h = self.up[i - 1](h) + memory[i - 1]
        h = self.tail(h)
        return h.reshape(*batch, *h.shape[1:])
