r"""The one scale switch, default devices and the data directory.

Every chapter and script sizes its work through :func:`scale` (or :func:`pick`), which reads the
environment variable ``SDA_SCALE``:

* ``ci``   -- the smallest sizes that still show each result (used by the tests);
* ``cpu``  -- the teaching scale, minutes per chapter on a laptop CPU (the default);
* ``full`` -- the paper's settings (GPU-hours); only ever chosen explicitly.

Whatever the scale, work runs on CUDA when it is available (:func:`device`), and in bfloat16 only
where asked for and where the hardware runs it natively (:func:`native_bfloat16`,
:func:`precision`). The sampling settings
of the paper's experiments (:math:`\gamma`, :math:`\zeta`, steps, corrections, :math:`\tau`) are read
once from ``sda_lite/configs/sampling.json`` by :func:`sampling`.
"""

from __future__ import annotations

import functools
import json
import os
import time
from pathlib import Path
from typing import TypeVar

import torch

SCALES = ("ci", "cpu", "full")
SAMPLING = Path(__file__).resolve().parent / "configs" / "sampling.json"
CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instructions that multiply bfloat16 natively
PRECISIONS = ("float32", "bfloat16")
T = TypeVar("T")


def scale(name: str | None = None) -> str:
    r"""Returns the validated scale name: ``name`` if given, else ``$SDA_SCALE``, else ``"cpu"``."""

    if name is None:
        name = os.environ.get("SDA_SCALE", "cpu")
    name = name.strip().lower()
    if name not in SCALES:
        raise ValueError(f"unknown scale {name!r}: expected one of {', '.join(SCALES)} (SDA_SCALE)")
    return name


def pick(*, ci: T, cpu: T, full: T, scale_name: str | None = None) -> T:
    r"""Returns the value that belongs to the current scale.

    Example:
        >>> n = pick(ci=64, cpu=512, full=1024)
    """

    return {"ci": ci, "cpu": cpu, "full": full}[scale(scale_name)]


def device() -> torch.device:
    r"""Returns CUDA when available, else the CPU (independently of the scale)."""

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _cpu_flags() -> set[str] | None:
    r"""The x86 feature flags of the CPU from ``/proc/cpuinfo``, or None where there are none."""

    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1] for line in lines if line.startswith("flags")), None)
    return None if flags is None else set(flags.split())


def _probe(n: int = 128, repeats: int = 5) -> bool:
    r"""Times ``(4n, n) @ (n, n)`` products in bfloat16 and float32 on one CPU thread (under 0.2 s):
    True when bfloat16 is at least as fast, as where the hardware multiplies it natively (without,
    PyTorch converts every operand and bfloat16 runs several times slower)."""

    seconds, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)  # several threads on a busy machine time their waits, not the product
    try:
        for dtype in (torch.float32, torch.bfloat16):
            a, b = torch.randn(4 * n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
            a @ b  # first call: kernel selection
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - start)
            seconds[dtype] = min(times)  # the least disturbed by other processes
    finally:
        torch.set_num_threads(threads)
    return seconds[torch.bfloat16] <= seconds[torch.float32]


@functools.cache
def native_bfloat16(device_type: str = "cpu") -> bool:
    r"""Whether ``device_type`` (``"cpu"`` or ``"cuda"``) runs bfloat16 matrix products natively.

    CUDA: ``torch.cuda.is_bf16_supported()``. An x86 CPU: one of the flags ``avx512_bf16`` or
    ``amx_bf16`` in ``/proc/cpuinfo``; a CPU without such flags (another architecture, another
    system): a short timing probe, bfloat16 against float32 (:func:`_probe`). Decided once per
    process. On a CPU with only AVX2, bfloat16 runs 7 to 13 times slower than float32.
    """

    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        raise ValueError(f"device_type={device_type!r}: expected 'cpu' or 'cuda'")
    flags = _cpu_flags()
    if flags is not None:
        return any(flag in flags for flag in BF16_FLAGS)
    return _probe()


def precision(name: str = "bfloat16", device_type: str | None = None) -> str:
    r"""The precision to run networks in: ``name``, unless it is ``"bfloat16"`` and the device does
    not run bfloat16 natively (:func:`native_bfloat16`), then ``"float32"``, silently.

    Example:
        >>> precision("float32")
        'float32'
    """

    if name not in PRECISIONS:
        raise ValueError(f"precision={name!r}: expected one of {PRECISIONS}")
    device_type = device().type if device_type is None else device_type
    return name if name == "float32" or native_bfloat16(device_type) else "float32"


def data_dir() -> Path:
    r"""Returns the directory of datasets and checkpoints, created if missing.

    ``$SDA_DATA`` when set; else the repository's ``data/`` when the package runs from a checkout;
    else ``~/.cache/sda_lite``.
    """

    if "SDA_DATA" in os.environ:
        path = Path(os.environ["SDA_DATA"])
    else:
        repo = Path(__file__).resolve().parents[1] / "data"
        path = repo if (repo / "README.md").exists() else Path.home() / ".cache" / "sda_lite"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sampling(experiment: str, scenario: str | None = None) -> dict:
    r"""The paper's sampling settings of an experiment: ``gamma`` (SDA), ``zeta`` (DPS), ``steps``,
    ``corrections`` and ``tau`` (:meth:`~sda_lite.diffusion.VPSDE.sample`), and ``source``, where in
    the paper's code (francois-rozet/sda) they are read. A ``scenario`` applies its own overrides
    (for Kolmogorov: 512 steps for ``saturation``, :math:`\gamma = 0.1` for ``loop``).

    Example:
        >>> sampling("kolmogorov", "loop")["gamma"]
        0.1
    """

    with open(SAMPLING) as f:
        settings = json.load(f)
    if experiment not in settings:
        raise ValueError(f"unknown experiment {experiment!r}: expected one of {sorted(settings)}")
    out = dict(settings[experiment])
    overrides = out.pop("scenarios", {})
    if scenario is not None:
        out.update(overrides.get(scenario, {}))
    return out
