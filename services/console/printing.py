"""The printed certificate: a PDF laid out for the physical form (出生医学证明), every field at the position the
form edition gives (data/form_editions.json), the serial and a QR code of the public verification URL.

reportlab draws it with a CJK TrueType font from Debian's packages embedded (subset) in the PDF, so what is
printed does not depend on the fonts of the office PC. Noto CJK ships only CFF (PostScript) outlines, which
reportlab cannot embed; WenQuanYi Micro Hei (fonts-wqy-microhei) has TrueType outlines, so it is the one used."""
from __future__ import annotations

import io
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import segno
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from console.content import display, form_title

EDITIONS = Path(__file__).resolve().parent / "data" / "form_editions.json"
#: TrueType CJK fonts from Debian's packages, the first one present is used (make setup installs the first)
FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
)
FONT = "MCH-CJK"


class FontMissing(RuntimeError):
    pass


@lru_cache(maxsize=1)
def font_name() -> str:
    for path in FONT_FILES:
        if Path(path).exists():
            pdfmetrics.registerFont(TTFont(FONT, path, subfontIndex=0))
            return FONT
    raise FontMissing(f"no CJK TrueType font found ({', '.join(FONT_FILES)}): run make setup "
                      "(it installs Debian's fonts-wqy-microhei)")


@lru_cache(maxsize=8)
def edition(name: str) -> dict[str, Any]:
    editions = json.loads(EDITIONS.read_text(encoding="utf-8"))
    if name not in editions or name == "comment":
        raise KeyError(f"form edition {name!r} is not in {EDITIONS.name}")
    return dict(editions[name])


def certificate_pdf(serial: str, content: dict[str, Any], issuer: str, issued_on: str, qr_url: str,
                    edition_name: str = "7", copy_note: str = "") -> bytes:
    """One sheet: the content at the edition's positions, the serial, the QR. `copy_note` (e.g. 第2次打印)
    is printed small at the foot so a reprint is recognisable as such."""
    ed = edition(edition_name)
    font = font_name()
    buf = io.BytesIO()
    w, h = (v * mm for v in ed["page_mm"])
    c = canvas.Canvas(buf, pagesize=(w, h), pageCompression=1)
    c.setTitle(f"{form_title()} {serial}")
    c.setAuthor(issuer)
    text = {**display(content), "serial": serial, "issuer": issuer, "issued_on": issued_on}
    for key, pos in ed["fields"].items():
        value = text.get(key)
        if value:
            c.setFont(font, pos.get("size", ed["font_size"]))
            c.drawString(pos["x"] * mm, pos["y"] * mm, value)
    _qr(c, qr_url, ed["qr"])
    if copy_note:
        c.setFont(font, 7)
        c.drawString(10 * mm, 8 * mm, copy_note)
    c.showPage()
    c.save()
    return buf.getvalue()


def _qr(c: canvas.Canvas, url: str, pos: dict[str, float]) -> None:
    """The QR as vector squares (sharp on any printer), on white with the standard quiet zone of 4 modules."""
    matrix = segno.make(url, error="m", micro=False).matrix
    size = pos["size"] * mm
    cell = size / (len(matrix) + 8)
    x0, y0 = pos["x"] * mm, pos["y"] * mm
    c.setFillColorRGB(1, 1, 1)
    c.rect(x0, y0, size, size, stroke=0, fill=1)
    c.setFillColorRGB(0, 0, 0)
    for r, row in enumerate(matrix):
        for col, dark in enumerate(row):
            if dark:
                c.rect(x0 + (col + 4) * cell, y0 + size - (r + 5) * cell, cell, cell, stroke=0, fill=1)
