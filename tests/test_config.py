import pytest
import torch

import sda_lite.config as config
from sda_lite.config import data_dir, device, native_bfloat16, pick, precision, scale


def test_default_scale_is_cpu(monkeypatch):
    monkeypatch.delenv("SDA_SCALE", raising=False)
    assert scale() == "cpu"


@pytest.mark.parametrize("name", ["ci", "cpu", "full", " CI "])
def test_scale_from_environment(monkeypatch, name):
    monkeypatch.setenv("SDA_SCALE", name)
    assert scale() == name.strip().lower()
    assert pick(ci=1, cpu=2, full=3) == {"ci": 1, "cpu": 2, "full": 3}[name.strip().lower()]


def test_unknown_scale(monkeypatch):
    monkeypatch.setenv("SDA_SCALE", "huge")
    with pytest.raises(ValueError, match="'huge'.*ci, cpu, full"):
        scale()


def test_explicit_scale_wins(monkeypatch):
    monkeypatch.setenv("SDA_SCALE", "full")
    assert pick(ci=1, cpu=2, full=3, scale_name="ci") == 1


@pytest.mark.parametrize("available, expected", [(True, "cuda"), (False, "cpu")])
def test_device_follows_cuda_availability_not_the_scale(monkeypatch, available, expected):
    r"""CUDA exactly when it is available, whatever ``SDA_SCALE`` says."""

    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    for name in ("ci", "cpu", "full"):
        monkeypatch.setenv("SDA_SCALE", name)
        assert device() == torch.device(expected)


def test_device_computes():
    r"""The device of this machine holds tensors and computes on them as the CPU does."""

    x = torch.arange(6.0).reshape(2, 3)
    y = x.to(device())
    assert y.device.type == device().type
    assert torch.equal((y @ y.mT).cpu(), torch.tensor([[5.0, 14.0], [14.0, 50.0]]))


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SDA_DATA", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d" and data_dir().is_dir()


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    r"""A fake ``/proc/cpuinfo``: ``cpu(text)`` writes it; the decision cache is cleared around."""

    native_bfloat16.cache_clear()
    yield lambda text: (tmp_path / "cpuinfo").write_text(text)
    native_bfloat16.cache_clear()


@pytest.mark.parametrize(
    "flags, native",
    [
        ("fpu sse2 avx2 fma", False),
        ("avx2 avx512f avx512_bf16", True),
        ("avx2 amx_bf16 amx_tile", True),
    ],
)
def test_native_bfloat16_from_cpu_flags(monkeypatch, tmp_path, cpu, flags, native):
    r"""x86: the flags decide, without timing anything (AVX2 alone: emulated, slow)."""

    cpu(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n")
    monkeypatch.setattr(config, "CPUINFO", tmp_path / "cpuinfo")
    monkeypatch.setattr(config, "_probe", lambda: pytest.fail("the flags should decide"))
    assert native_bfloat16("cpu") is native
    assert precision("bfloat16", "cpu") == ("bfloat16" if native else "float32")
    assert precision("float32", "cpu") == "float32"


@pytest.mark.parametrize("fast", [True, False])
def test_native_bfloat16_probes_without_flags(monkeypatch, tmp_path, cpu, fast):
    r"""No x86 flags (another architecture, no /proc): the timing probe decides, once."""

    calls = []
    monkeypatch.setattr(config, "CPUINFO", tmp_path / "missing")
    monkeypatch.setattr(config, "_probe", lambda: calls.append(1) or fast)
    assert native_bfloat16("cpu") is fast and native_bfloat16("cpu") is fast
    assert len(calls) == 1
    cpu("processor\t: 0\nFeatures\t: fp asimd bf16\n")  # an ARM cpuinfo has no 'flags' line
    monkeypatch.setattr(config, "CPUINFO", tmp_path / "cpuinfo")
    native_bfloat16.cache_clear()
    assert native_bfloat16("cpu") is fast and len(calls) == 2


def test_probe_compares_the_two_precisions():
    r"""The probe returns a bool and leaves the thread count as it found it."""

    threads = torch.get_num_threads()
    assert isinstance(config._probe(n=16, repeats=2), bool)
    assert torch.get_num_threads() == threads


def test_precision_rejects_unknown_names():
    with pytest.raises(ValueError, match="'float16'.*float32.*bfloat16"):
        precision("float16")
    with pytest.raises(ValueError, match="'tpu'.*'cpu' or 'cuda'"):
        native_bfloat16("tpu")
