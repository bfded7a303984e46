"""Helpers shared by the test files (pytest puts tests/ on sys.path)."""

import torch
from torch import Tensor, nn

from sda_lite.diffusion import VPSDE


def randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Overwrites every parameter (zero-initialised layers included) with random values."""

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=generator))
    return net


class TinyEps(nn.Module):
    r"""A stand-in noise network over ``x: (*batch, D)``: an MLP of ``(x, t)``."""

    def __init__(self, D: int = 2, width: int = 16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(D + 1, width), nn.SiLU(), nn.Linear(width, D))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[:-1])
        return self.net(torch.cat((x, t[..., None]), dim=-1))


def tiny(seed: int = 0) -> VPSDE:
    r"""A ``VPSDE`` over ``(2,)`` around a :class:`TinyEps` initialised under ``seed``."""

    torch.manual_seed(seed)
    return VPSDE(TinyEps(), shape=(2,))


def data(n: int = 256, seed: int = 1) -> Tensor:
    r"""A narrow Gaussian ``(n, 2)`` around (1, -1): easy to denoise, so the loss can fall far."""

    g = torch.Generator().manual_seed(seed)
    return torch.tensor([1.0, -1.0]) + 0.1 * torch.randn(n, 2, generator=g)


class Interrupt(Exception):
    r"""Raised by the callback of :func:`stop_after` to cut a training run short."""


def stop_after(epoch: int):
    r"""A training callback that raises :class:`Interrupt` at the end of ``epoch``."""

    def callback(e: int, history: dict) -> None:
        if e == epoch:
            raise Interrupt

    return callback


def files(directory):
    r"""The files of ``directory`` but the lock files of :func:`sda_lite.lock.exclusive`."""

    return sorted(p.name for p in directory.iterdir() if not p.name.endswith(".lock"))
