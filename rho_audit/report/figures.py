"""``rho-audit report --figures pdf,png``: every figure of a card as a PDF and a 300-dpi PNG.

The figures are the card's own SVGs (:mod:`rho_audit.report.charts`), converted with CairoSVG,
so a paper's figure is exactly the card's. Why not redraw them with matplotlib: the card stays one
drawing code path (the tests that pin whisker colours, label columns and shared scales cover the
exported figures too), a card's inline SVG stays small and semantic (lines and text, not glyph
paths), and nothing heavy is imported unless figures are asked for. CairoSVG is an optional
extra (``pip install 'rho-audit[figures]'``), imported only here, inside the call.

Standalone SVGs carry a light and a dark colour scheme; Cairo ignores the media query, so the
exported figures are dark on white, as print wants.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from rho_audit._util.files import atomic_write_bytes
from rho_audit.api.errors import RhoAuditError
from rho_audit.report.records import Figure

FIGURE_FORMATS = ("pdf", "png")
PNG_DPI = 300
CSS_DPI = 96  # the SVGs' px are CSS pixels


def parse_figure_formats(text: str) -> tuple[str, ...]:
    """``pdf,png`` -> ("pdf", "png"); an unknown format is an error naming the known ones."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown or not formats:
        raise RhoAuditError(
            f"--figures {text!r}: unknown format {', '.join(unknown) or '(none)'}; "
            f"give one or more of {', '.join(FIGURE_FORMATS)}, comma-separated (e.g. --figures pdf,png)."
        )
    return formats


def _with_dpi(png: bytes, dpi: int) -> bytes:
    """The PNG with a pHYs chunk saying ``dpi`` (Cairo writes none, so viewers would assume 72 or
    96 and show a 300-dpi figure three times too large)."""
    per_metre = round(dpi / 0.0254)
    body = struct.pack(">IIB", per_metre, per_metre, 1)
    chunk = struct.pack(">I", len(body)) + b"pHYs" + body + struct.pack(">I", zlib.crc32(b"pHYs" + body))
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, IHDR length, type, data, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def export_figures(figures: Sequence[Figure], folder: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    """Write each figure as ``<stem>-<figure>.<format>`` in ``folder``; returns the files written."""
    if not figures:
        return []
    try:
        import cairosvg
    except ImportError:
        raise RhoAuditError(
            "--figures needs CairoSVG: pip install 'rho-audit[figures]' (and the Cairo library: "
            "apt install libcairo2, brew install cairo)."
        ) from None
    except OSError as err:  # cairocffi raises it when the Cairo library itself is missing
        raise RhoAuditError(
            f"--figures: CairoSVG cannot load the Cairo library ({err}). Install it (apt install "
            "libcairo2, brew install cairo) or leave out --figures."
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for figure in figures:
        svg = figure.standalone.encode("utf-8")
        for fmt in formats:
            path = folder / f"{stem}-{figure.name}.{fmt}"
            if fmt == "pdf":
                data = cairosvg.svg2pdf(bytestring=svg)
            else:
                data = _with_dpi(cairosvg.svg2png(bytestring=svg, scale=PNG_DPI / CSS_DPI), PNG_DPI)
            written.append(atomic_write_bytes(path, data))
    return written
