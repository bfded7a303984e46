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


def test_device():
    assert device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SDA_DATA", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d" and data_dir().is_dir()
