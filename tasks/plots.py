"""Saving a report's matplotlib figure as a small PNG (no screen), shared by every domain's plots.

The PNGs are saved with a 32-colour palette (Pillow, matplotlib's own dependency): a quarter of
the bytes of a true-colour PNG, which matters because run summaries embed them.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the screenless backend
from PIL import Image  # noqa: E402

from tradeops.files import atomic_write_bytes  # noqa: E402

PALETTE_COLOURS = 32


def save_png(fig, path: Path) -> Path:  # noqa: ANN001
    """The figure as a 32-colour PNG at `path`, written whole (then closed)."""
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    buffer.seek(0)
    small = io.BytesIO()
    Image.open(buffer).convert("RGB").quantize(colors=PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT).save(
        small, "PNG", optimize=True)
    atomic_write_bytes(path, small.getvalue())
    return path
