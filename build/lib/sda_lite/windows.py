r"""Random windows of trajectories: what a window prior trains on.

A local prior of half-width :math:`k` learns the score of windows of :math:`2k + 1` consecutive
states; an epoch draws one window at a random position of each trajectory (the paper's convention).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset


class TrajectoryWindows(Dataset):
    r"""Random windows of ``window`` consecutive states from a set of trajectories.

    Item ``i`` is a window of trajectory ``i mod N`` at a start drawn uniformly in
    :math:`\{0, \dots, L - w\}` (from ``generator``, else torch's global generator).

    Arguments:
        x: The trajectories, ``(N, L, D)``.
        window: The window length ``w``, with ``1 <= w <= L``.
        length: The number of items of an epoch (default ``N``: each trajectory once).

    Items are shaped ``(w, D)``.
    """

    def __init__(
        self,
        x: Tensor,
        window: int,
        length: int | None = None,
        generator: torch.Generator | None = None,
    ):
        if not isinstance(x, Tensor) or x.ndim != 3:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x has shape {shape}: expected trajectories shaped (N, L, D)")
        N, L, _ = x.shape
        if not isinstance(window, int) or not 1 <= window <= L:
            raise ValueError(
                f"window={window!r}: expected an integer in [1, {L}] (trajectories have L={L} states)"
            )
        if length is not None and (not isinstance(length, int) or length < 1):
            raise ValueError(f"length={length!r}: expected an integer >= 1")
        self.x, self.window, self.generator = x, window, generator
        self.length = N if length is None else length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Tensor:
        if not -self.length <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} items")
        x = self.x[i % len(self.x)]
        start = torch.randint(0, x.shape[0] - self.window + 1, (), generator=self.generator).item()
        return x[start : start + self.window]

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        r"""The items ``indices`` at once (one random start each), drawn in one vectorised call: a
        faster equivalent of ``[self[i] for i in indices]`` that ``torch.utils.data.DataLoader`` and
        :func:`sda_lite.train.train` use."""

        i = torch.as_tensor(indices, dtype=torch.long)
        if i.numel() and not (-self.length <= i.min() and i.max() < self.length):
            raise IndexError(
                f"indices in [{i.min()}, {i.max()}] out of range for {self.length} items"
            )
        N, L, _ = self.x.shape
        start = torch.randint(0, L - self.window + 1, i.shape, generator=self.generator)
        return list(self.x[(i % N)[:, None], start[:, None] + torch.arange(self.window)].unbind(0))


class FieldWindows(TrajectoryWindows):
    r"""Random windows of ``window`` consecutive fields: :class:`~sda_lite.data.TrajectoryWindows`
    over trajectories ``x: (N, L, C, H, W)``, with items shaped ``(window, C, H, W)``."""

    def __init__(
        self,
        x: Tensor,
        window: int,
        length: int | None = None,
        generator: torch.Generator | None = None,
    ):
        if not isinstance(x, Tensor) or x.ndim != 5:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"x has shape {shape}: expected field trajectories shaped (N, L, C, H, W)"
            )
        super().__init__(x.flatten(2), window, length, generator)
        self.state = x.shape[2:]

    def __getitem__(self, i: int) -> Tensor:
        return super().__getitem__(i).unflatten(-1, self.state)

    def __getitems__(self, indices: list[int]) -> list[Tensor]:
        return [w.unflatten(-1, self.state) for w in super().__getitems__(indices)]
