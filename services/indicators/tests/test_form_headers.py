"""The statutory forms' header numbers (表号, 批准文号, 有效期至) come with the survey system's edition a bureau was
issued; `MCH_FORM_HEADERS` sets them without a release, and a typo in a form code fails at start-up."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from indicators.domain import catalogue
from indicators.reports import forms


def test_headers_file_sets_the_edition_numbers(tmp_path: Path) -> None:
    cat = catalogue.load()
    f = tmp_path / "headers.json"
    f.write_text(json.dumps({"maternal": {"表号": "卫健统X表", "有效期至": "2028年12月"}}, ensure_ascii=False),
                 encoding="utf-8")
    loaded = forms.load_all(cat, headers=f)
    assert loaded["maternal"].header["表号"] == "卫健统X表"
    assert loaded["maternal"].header["有效期至"] == "2028年12月"
    assert loaded["maternal"].header["制定机关"] == forms.load_all(cat)["maternal"].header["制定机关"]
    assert forms.load_all(cat)["maternal"].header["表号"] != "卫健统X表"   # the files themselves are untouched
    f.write_text(json.dumps({"maternl": {"表号": "x"}}), encoding="utf-8")
    with pytest.raises(ValueError, match="maternl"):
        forms.load_all(cat, headers=f)
