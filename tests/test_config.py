import pytest
import torch

from sda_lite.config import data_dir, device, pick, scale


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
