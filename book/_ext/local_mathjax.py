"""Serves MathJax from the book itself, so that equations render without a network.

Sphinx loads MathJax from a CDN by default: offline, the HTML book would show raw ``\\(...\\)``.
This extension copies the MathJax 2.7 files of the ``jupyter-server-mathjax`` package (a
dependency of the ``book`` extra) into ``_static`` and points Sphinx at them.

That copy is trimmed: its only complete output processor is HTML-CSS with the STIX-Web fonts (in
``fonts/HTML-CSS/STIX-Web`` and ``jax/output/HTML-CSS/fonts/STIX-Web``); it has no ``TeX`` font
directory, no CommonHTML output, and the SVG output's font directory is empty. MathJax 2's defaults ask for the
``TeX`` web fonts, which fails with a "File failed to load: .../fonts/TeX/fontdata.js" banner on
every page. The configuration below names the fonts the copy has (and no image fonts, which it
lacks too); :func:`_check_fonts` fails the build if a future copy no longer has them.
"""

from pathlib import Path

import jupyter_server_mathjax

STATIC = Path(jupyter_server_mathjax.__file__).parent / "static"
FONT = "STIX-Web"  # the only web font shipped in jupyter-server-mathjax's copy of MathJax

MATHJAX2_CONFIG = {
    # Sphinx marks the page body to be ignored and the equations to be processed (class "math").
    "tex2jax": {"ignoreClass": "document", "processClass": "math|output_area", "processEscapes": True},
    # No locally installed fonts (a reader's STIX would need jax/output/HTML-CSS/fonts/STIX, absent),
    # the STIX-Web web font, no image fonts.
    "HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": FONT, "imageFont": None},
    # The renderer of the copy (the default menu setting could name one the copy lacks).
    "menuSettings": {"renderer": "HTML-CSS"},
}


def _check_fonts() -> None:
    for path in (
        STATIC / "jax" / "output" / "HTML-CSS" / "fonts" / FONT / "fontdata.js",
        STATIC / "fonts" / "HTML-CSS" / FONT / "woff",
    ):
        if not path.exists():
            raise RuntimeError(f"local MathJax: {path} is missing; update MATHJAX2_CONFIG in {__file__}")


def _use_local_mathjax(app) -> None:
    _check_fonts()
    app.config.html_static_path.append(str(STATIC))


def setup(app):
    app.config.mathjax_path = "MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    app.config.mathjax2_config = MATHJAX2_CONFIG
    app.connect("builder-inited", _use_local_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
