"""The printed sheet and its QR: the PDF's text holds every filled field and the serial; the QR, read back from
the rendered page, is the verification URL with the serial and a check code that only the key produces."""
from __future__ import annotations

import io
from datetime import date
from urllib.parse import parse_qs, urlparse

import pytest

from console import checkcode, content, printing

KEY = b"k" * 32


def _content() -> dict[str, str]:
    form = {"child_name": "李小满", "child_sex": "F", "birth_date": "2026-03-01", "birth_time": "08:30",
            "gestational_weeks": "39", "birth_weight_g": "3250", "birth_length_cm": "50", "health": "good",
            "birth_province": "江苏省", "birth_city": "宿迁市", "birth_county": "泗阳县", "birth_region_code": "321323",
            "place_type": "hospital", "delivery_institution": "泗阳县人民医院", "mother_name": "王丽",
            "mother_age": "29",
            "mother_nationality": "中国", "mother_ethnicity": "汉族", "mother_id_type": "passport",
            "mother_id_number": "E12345678"}
    values, errors = content.validate(form, date(2026, 3, 2))
    assert errors == {}
    return values


def test_check_code_depends_on_serial_and_key() -> None:
    a = checkcode.code(KEY, "Q510012345")
    assert checkcode.matches(KEY, "Q510012345", a.lower())
    assert not checkcode.matches(KEY, "Q510012346", a)
    assert not checkcode.matches(b"x" * 32, "Q510012345", a)
    url = checkcode.verification_url("http://127.0.0.1:8105/", KEY, "Q510012345")
    assert parse_qs(urlparse(url).query) == {"serial": ["Q510012345"], "c": [a]}


def test_pdf_holds_every_field_the_serial_and_a_readable_qr() -> None:
    pypdf = pytest.importorskip("pypdf")
    values = _content()
    url = checkcode.verification_url("http://127.0.0.1:8105", KEY, "Q510012345")
    pdf = printing.certificate_pdf("Q510012345", values, "泗阳县人民医院", "2026-03-02", url)
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for shown in content.display(values).values():
        assert shown in text, shown
    assert "Q510012345" in text and "女" in text and "护照" in text
    assert "王丽" not in url and "李小满" not in url  # the QR carries no personal data
    assert decode_qr(pdf) == url


def decode_qr(pdf: bytes) -> str:
    """The first QR code on the PDF's first page, read from the page rendered at 150 dpi (PDFium renders, zxing
    reads: neither is ours, so the test checks what a phone would see). Shared with the browser test."""
    import pypdfium2
    import zxingcpp

    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=150 / 72).to_pil()
    found = zxingcpp.read_barcodes(image)
    assert found, "no QR code found on the page"
    return str(found[0].text)
