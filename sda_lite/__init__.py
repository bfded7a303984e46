r"""sda-lite: score-based data assimilation (Rozet & Louppe, 2023) in a few short modules."""

__version__ = "0.1.0"
