"""Serves MathJax from the book itself, so that equations render without a network.

Sphinx loads MathJax from a CDN by default: offline, the HTML book would show raw ``\\(...\\)``.
This extension copies the MathJax 2.7 files of the ``jupyter-server-mathjax`` package (a
dependency of the ``book`` extra) into ``_static`` and points Sphinx at them.
"""

from pathlib import Path

import jupyter_server_mathjax


def _use_local_mathjax(app) -> None:
    app.config.html_static_path.append(str(Path(jupyter_server_mathjax.__file__).parent / "static"))


def setup(app):
    app.config.mathjax_path = "MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    # Sphinx marks the page body to be ignored and the equations to be processed (class "math").
    app.config.mathjax2_config = {"tex2jax": {"ignoreClass": "document", "processClass": "math|output_area", "processEscapes": True}}
    app.connect("builder-inited", _use_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
