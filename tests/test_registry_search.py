"""Identity documents of every kind and the person search (issue 19), through the real API: validation naming the
field, dedup per document, the search's criteria, its region scope, masking and audit."""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from stdnum.cn import ric

from tests.conftest import Stack, fresh_county, make_token, village
from tests.test_isolation_registry import County, book, counties
from tests.test_registry_encounters import registry_db
from tests.test_registry_persons import id_number


def permit(birth: date, sex: str, county: str = "810000") -> str:
    seq = 2 if sex == "F" else 3
    body = f"{county}{birth:%Y%m%d}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def someone(residence: str, **kw: Any) -> dict[str, Any]:
    return {"name": "陈美玲", "sex": "F", "birth_date": "1992-03-04", "residence_code": residence,
            "phone": f"139{uuid.uuid4().int % 10**8:08d}", **kw}


async def test_every_kind_of_document_is_validated_naming_the_field(http: httpx.AsyncClient, stack: Stack) -> None:
    url = stack.url("registry") + "/v1/persons"
    home = village(fresh_county())
    born = date(1992, 3, 4)
    tw = f"{uuid.uuid4().int % 10**8:08d}"
    bad: list[tuple[dict[str, Any], str]] = [
        (someone(home, document_type="hmt_residence_permit", document_number=permit(born, "F", "320582")),
         "document_number"),
        (someone(home, document_type="hmt_residence_permit", document_number=permit(born, "M")), "document_number"),
        (someone(home, document_type="hmt_residence_permit", document_number=permit(born + timedelta(1), "F")),
         "document_number"),
        (someone(home, document_type="hk_mo_travel_permit", document_number="X12345678"), "document_number"),
        (someone(home, document_type="tw_travel_permit", document_number="1234567"), "document_number"),
        (someone(home, document_type="foreign_permanent_residence", document_number="9123"), "document_number"),
        (someone(home, document_type="birth_certificate", document_number="12"), "document_number"),
        (someone(home, document_type="passport"), "document_number"),
        (someone(home, document_type="none", document_number="E12345678"), "document_number"),
        (someone(home, document_number="E12345678"), "document_type"),
        (someone(home, document_type="visa", document_number="E12345678"), "document_type"),
        (someone(home, id_number=id_number(born, "F"), document_type="passport", document_number="E12345678"),
         "document_type"),
        (someone(home, document_type="resident_id", document_number=id_number(born, "M")), "document_number"),
    ]
    for body, field in bad:
        r = await http.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in r.json()["errors"]] == [field], (body, r.text)
    # good ones; the same document again is the same person, the same number of another kind is not
    made = {}
    # six different women (names far apart, so that the probabilistic matcher does not take them for one)
    names = iter(("陈美玲", "欧阳静", "司马婉清", "诸葛丹", "上官雪", "慕容秀英"))
    for kind, number in (("hmt_residence_permit", permit(born, "F")), ("hk_mo_travel_permit", f"H{tw}"),
                         ("tw_travel_permit", tw), ("passport", f"E{tw}"), ("birth_certificate", f"P{tw}0"),
                         ("foreign_permanent_residence", permit(born, "F", "911840"))):
        name = next(names)
        r = await http.post(url, json=someone(home, name=name, document_type=kind, document_number=number.lower()))
        assert r.status_code == 201, (kind, r.text)
        again = await http.post(url, json=someone(home, name=name + "儿", document_type=kind, document_number=number))
        assert (again.status_code, again.json()["person_id"]) == (200, r.json()["person_id"]), kind
        made[kind] = r.json()["person_id"]
    assert len(set(made.values())) == len(made)
    # a resident identity number sent as a document is the id_number of before (one person)
    rid = id_number(born, "F")
    first = (await http.post(url, json=someone(home, name="东方红梅", id_number=rid))).json()
    assert first["created"] is True
    second = await http.post(url, json=someone(home, name="东方红", document_type="resident_id", document_number=rid))
    assert (second.status_code, second.json()["person_id"]) == (200, first["person_id"])
    view = (await http.get(f"{url}/{made['hk_mo_travel_permit']}")).json()
    assert (view["name"], view["id_number"], view["document_type"], view["document_number"]) == (
        "欧阳静", None, "hk_mo_travel_permit", f"H{tw}")
    # no document: nothing to deduplicate on exactly — the same name, birth date and village twice is the same
    # woman to the probabilistic matcher (a certain match links; registry.person_matching)
    none_yet = await http.post(url, json=someone(home, name="公孙兰", document_type="none"))
    twice = await http.post(url, json=someone(home, name="公孙兰", document_type="none", phone=None))
    assert (none_yet.status_code, twice.status_code) == (201, 200)
    assert twice.json()["person_id"] == none_yet.json()["person_id"]


async def test_search_by_name_pinyin_document_birth_date_phone_and_mother(stack: Stack) -> None:
    a, b = await counties(stack)
    reader = {"Authorization": f"Bearer {await make_token(stack, ['registry:read', 'pii:read'], a.code)}"}
    url = a.url + "/persons"
    home = village(a.code, 2, 3)
    born = date(1991, 6, 7)
    xiaoli = someone(home, name="王小丽", birth_date=str(born), document_type="hk_mo_travel_permit",
                     document_number=f"M{uuid.uuid4().int % 10**8:08d}")
    xiaoli_too = someone(home, name="王晓丽", birth_date=str(born + timedelta(days=1)), id_number=id_number(
        born + timedelta(days=1), "F"))
    other = someone(home, name="汪明", birth_date=str(born))
    ids = {}
    for k, body in (("xiaoli", xiaoli), ("xiaoli_too", xiaoli_too), ("other", other)):
        r = await a.call("POST", "/persons", body)
        assert r.status_code == 201, r.text
        ids[k] = r.json()["person_id"]
    elsewhere = someone(village(b.code), name="王小丽", birth_date=str(born))
    r = await b.call("POST", "/persons", elsewhere)
    assert r.status_code == 201
    bs = r.json()["person_id"]

    async def found(**q: str) -> list[str]:
        async with httpx.AsyncClient(timeout=30, headers=reader) as c:
            r = await c.get(url, params=q)
        assert r.status_code == 200, (q, r.text)
        return [p["person_id"] for p in r.json()["persons"]]

    # the same characters first, then the same sounds; B's 王小丽 is not A's to find
    assert await found(name="王小丽") == [ids["xiaoli"], ids["xiaoli_too"]]
    assert await found(name="王晓丽") == [ids["xiaoli_too"], ids["xiaoli"]]
    assert set(await found(name="Wang Xiaoli")) == {ids["xiaoli"], ids["xiaoli_too"]}
    assert set(await found(pinyin="wang")) == {ids["xiaoli"], ids["xiaoli_too"], ids["other"]}  # 汪 is wang too
    assert await found(pinyin="wangx", birth_date=str(born)) == [ids["xiaoli"]]
    assert await found(document=xiaoli["document_number"].lower()) == [ids["xiaoli"]]
    assert await found(document=xiaoli_too["id_number"]) == [ids["xiaoli_too"]]
    assert await found(phone=other["phone"]) == [ids["other"]]
    assert await found(name="王小丽", phone=other["phone"]) == []
    # children by their mother: her person id or her document number
    lmp = date.today() - timedelta(days=300)
    preg, mother_id, m = await book(a, lmp)
    assert await found(mother=mother_id) == []  # no child yet
    r = await a.call("POST", "/encounters", {
        **a.visit(preg, lmp + timedelta(days=280)), "type": "delivery", "place": "hospital", "mode": "vaginal",
        "babies": [{"sex": "F", "birth_weight_g": 3100, "outcome": "live"}]})
    assert r.status_code == 201, r.text
    [child] = r.json()["children"]
    assert await found(mother=mother_id) == [child]
    assert await found(mother=m["id_number"]) == [child]
    # B names A's mother: as if she did not exist
    r = await b.call("GET", "/persons", params={"mother": mother_id})
    assert r.status_code == 404 and a.code not in r.text, r.text
    r = await b.call("GET", "/persons", params={"name": "王晓丽"})  # B finds its own 王小丽, none of A's
    assert r.status_code == 200 and [p["person_id"] for p in r.json()["persons"]] == [bs], r.text


async def test_search_answers_are_masked_and_audited_and_bad_queries_name_the_field(stack: Stack) -> None:
    county = fresh_county()
    a = County(stack, county, await make_token(stack, ["registry:write", "registry:read"], county))
    body = someone(village(county), name="赵雅芝", id_number=id_number(date(1992, 3, 4), "F"))
    pid = (await a.call("POST", "/persons", body)).json()["person_id"]
    r = await a.call("GET", "/persons", params={"name": "赵雅芝"})
    assert r.status_code == 200, r.text
    [hit] = r.json()["persons"]
    assert (hit["person_id"], hit["name"], hit["id_number"]) == (pid, "赵**", body["id_number"][0] + "*" * 17)
    assert hit["document_number"] == body["id_number"][0] + "*" * 17 and body["phone"][-4:] not in hit["phone"]
    assert (hit["residence_code"], hit["document_type"], hit["sex"]) == (body["residence_code"], "resident_id", "F")
    db = await registry_db(stack)
    try:
        rows = await db.fetch("select subject_kind, subject_id, fields, unmasked from pii_audit "
                              "where request_id = $1 order by id", r.headers["x-request-id"])
    finally:
        await db.close()
    assert [(x["subject_kind"], x["subject_id"], sorted(x["fields"]), x["unmasked"]) for x in rows] == [
        ("person_search", "name", ["name"], False),
        ("person", pid, ["document_number", "id_number", "name", "phone"], False)]
    for q, field in (({}, "name"), ({"birth_date": "1992-02-30"}, "birth_date"), ({"limit": "0"}, "limit"),
                     ({"pinyin": "王"}, "pinyin"), ({"name": "   "}, "name"), ({"limit": "101", "name": "x"}, "limit"),
                     ({"name": "x" * 101}, "name")):
        r = await a.call("GET", "/persons", params=q)
        assert r.status_code == 422, (q, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field], (q, r.text)
