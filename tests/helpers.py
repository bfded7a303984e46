"""Helpers shared by the test files (pytest puts tests/ on sys.path)."""

import torch


def randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Overwrites every parameter (zero-initialised layers included) with random values."""

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=generator))
    return net
