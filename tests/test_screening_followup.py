"""Follow-up cases through the real pipeline: opened by results (and by a high-risk pregnancy grade from the
registry's events, posted through the registry API), worked through actions, listed per region and overdue, and
counted by the indicators."""
from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import httpx

from tests.conftest import Stack, fresh_county, make_token, village, wait_for
from tests.helpers import wait_counts
from tests.test_screening_api import (
    SOURCE,
    Family,
    body,
    deliver,
    family,
    indicator_codes,
    institution,
    known,
    post,
    pregnancy,
    today,
)


async def act(http: httpx.AsyncClient, stack: Stack, case_id: str, action: str, on: date,
              **extra: Any) -> httpx.Response:
    return await http.post(f"{stack.url('screening')}/v1/followups/{case_id}/actions",
                           json={"action": action, "on": on.isoformat(), **extra})


async def followups(http: httpx.AsyncClient, stack: Stack, token: str | None = None, **params: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    r = await http.get(f"{stack.url('screening')}/v1/followups", params=params, headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def completion(cases: list[tuple[date, bool]], year: int) -> tuple[int, int]:
    """followup_completion_rate straight from indicators.md: cases due in the year; those closed with an
    outcome (not lost to follow-up) by their due date. `cases`: (due date, completed in time) as the test
    derived them from the programme rules and the actions it posted — not as the service lists them."""
    due = [done for on, done in cases if on.year == year]
    return sum(due), len(due)


async def test_a_case_life_actions_overdue_list_and_indicators(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await family(http, stack, county, inst, born_days_ago=60)
    await known(http, stack, f)
    metabolic = (await post(http, stack, body("newborn_metabolic", f.child_id, inst, f.born + timedelta(3),
                                              conditions={"pku": "negative", "ch": "positive"}))).json()["followup"]
    hearing = (await post(http, stack, body("newborn_hearing", f.child_id, inst, f.born + timedelta(2),
                                            round="initial", result="refer"))).json()["followup"]
    screen_on = f.lmp + timedelta(days=16 * 7)
    cfdna = (await post(http, stack, body("cfdna", f.pregnancy_id, inst, screen_on,
                                          result="high_risk"))).json()["followup"]
    serum = (await post(http, stack, body("prenatal_serum", f.pregnancy_id, inst, screen_on, t21_risk="1/90",
                                          t18_risk="1/8000", ntd_risk="low"))).json()["followup"]
    m = metabolic["case_id"]
    opened = date.fromisoformat(metabolic["opened_on"])
    # validation of actions
    r = await act(http, stack, m, "contacted", opened - timedelta(1))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "on"
    r = await act(http, stack, m, "closed", opened + timedelta(1))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "outcome"
    r = await act(http, stack, m, "phoned", opened + timedelta(1))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "action"
    assert (await act(http, stack, str(uuid.uuid4()), "contacted", opened)).status_code == 404
    # the whole life: contacted → diagnosed → closed, before the due date
    r = await act(http, stack, m, "contacted", opened + timedelta(1), note="母亲电话已联系")
    assert r.status_code == 201 and r.json()["status"] == "open"
    assert (await act(http, stack, m, "contacted", opened + timedelta(1), note="母亲电话已联系")).status_code == 200
    r = await act(http, stack, m, "diagnosed", opened + timedelta(3), outcome="ch_confirmed")
    assert r.status_code == 201
    r = await act(http, stack, m, "closed", opened + timedelta(5), outcome="treated_levothyroxine")
    assert r.status_code == 201, r.text
    done = r.json()
    assert (done["status"], done["closed_on"], done["outcome"]) == (
        "closed", (opened + timedelta(5)).isoformat(), "treated_levothyroxine")
    assert [a["action"] for a in done["actions"]] == ["contacted", "diagnosed", "closed"]
    r = await act(http, stack, m, "treated", opened + timedelta(6))
    assert r.status_code == 409
    # the prenatal high-risk case is contacted, then lost to follow-up
    c_open = date.fromisoformat(cfdna["opened_on"])
    assert (await act(http, stack, cfdna["case_id"], "contacted", c_open + timedelta(2))).status_code == 201
    assert (await act(http, stack, cfdna["case_id"], "lost", c_open + timedelta(20))).status_code == 201

    # per region: the hearing and the serum cases are open and past their due dates
    assert date.fromisoformat(hearing["due_on"]) < today()
    listed = await followups(http, stack, region=county)
    assert {c["case_id"] for c in listed["items"]} == {m, hearing["case_id"], cfdna["case_id"], serum["case_id"]}
    overdue = await followups(http, stack, region=county, overdue="true")
    assert {c["case_id"] for c in overdue["items"]} == {hearing["case_id"], serum["case_id"]}
    assert all(c["overdue"] for c in overdue["items"])
    on_time = await followups(http, stack, region=county, overdue="false")
    assert {c["case_id"] for c in on_time["items"]} == {m, cfdna["case_id"]}
    assert [c["case_id"] for c in (await followups(http, stack, region=county, type="newborn_hearing"))["items"]] \
        == [hearing["case_id"]]
    closed = await followups(http, stack, region=county, status="closed")
    assert {c["case_id"] for c in closed["items"]} == {m, cfdna["case_id"]}
    assert (await followups(http, stack, region=village(county, 2)))["items"] == []
    # keyset pages
    first = await followups(http, stack, region=county, limit=3)
    rest = await followups(http, stack, region=county, limit=3, after=first["next"])
    assert [c["case_id"] for c in first["items"] + rest["items"]] == [c["case_id"] for c in listed["items"]]
    assert rest["next"] is None
    # region-scoped token: its own region by default; notes masked without pii:read
    county_token = await make_token(stack, ["screening:read"], county)
    mine = await followups(http, stack, county_token)
    assert mine["region"] == county and len(mine["items"]) == 4
    note = next(c for c in mine["items"] if c["case_id"] == m)["actions"][0]["note"]
    assert note == "***"
    full = await followups(http, stack, region=county)
    assert next(c for c in full["items"] if c["case_id"] == m)["actions"][0]["note"] == "母亲电话已联系"

    codes = await indicator_codes(http, stack)
    # due dates from the programme rules (services/screening/rules, encoded here): a positive metabolic screen
    # is recalled within 7 days of the result, an initial hearing "refer" rescreened at 42 days of age, a
    # high-risk prenatal screen counselled within 14 days; completed: the metabolic case, closed with an
    # outcome 5 days after it opened (the cfDNA case was lost, the others are open)
    derived = {m: (f.born + timedelta(3 + 7), True), hearing["case_id"]: (f.born + timedelta(42), False),
               cfdna["case_id"]: (screen_on + timedelta(14), False),
               serum["case_id"]: (screen_on + timedelta(14), False)}
    assert {c["case_id"]: date.fromisoformat(c["due_on"]) for c in listed["items"]} == {
        k: due for k, (due, _) in derived.items()}
    want: dict[int, dict[str, tuple[int, int]]] = {}
    if "followup_completion_rate" in codes:
        for y in {due.year for due, _ in derived.values()}:
            want.setdefault(y, {})["followup_completion_rate"] = completion(list(derived.values()), y)
    if "prenatal_high_risk_followup_rate" in codes:
        # two high-risk prenatal screens on screen_on, one with a contact action
        want.setdefault(screen_on.year, {})["prenatal_high_risk_followup_rate"] = (1, 2)
    for y, w in want.items():
        await wait_counts(http, stack, county, str(y), w)


async def graded_visit(http: httpx.AsyncClient, stack: Stack, f: Family, eid: str, on: date, grade: str,
                      version: int) -> None:
    """A prenatal visit with a risk grade, posted to the registry (a higher version corrects it): the case is
    opened by screening's consumer from the event the registry emits, not from one the test makes up."""
    r = await http.post(f"{stack.url('registry')}/v1/encounters", json={
        "encounter_id": eid, "source": SOURCE, "version": version, "type": "prenatal_visit",
        "occurred_at": f"{on.isoformat()}T09:00:00+08:00", "institution_code": f.institution,
        "subject_id": f.pregnancy_id, "risk_grade": grade})
    assert r.status_code in (200, 201), r.text


async def test_a_high_risk_grade_opens_the_pregnancy_case(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await pregnancy(http, stack, county, inst, born_days_ago=30)
    g = await pregnancy(http, stack, county, inst, born_days_ago=30)
    visit_on = f.lmp + timedelta(days=20 * 7)
    await graded_visit(http, stack, f, f"V-{f.pregnancy_id}-1", visit_on - timedelta(28), "yellow", 1)
    await graded_visit(http, stack, f, f"V-{f.pregnancy_id}-2", visit_on, "red", 1)
    await graded_visit(http, stack, f, f"V-{f.pregnancy_id}-3", visit_on + timedelta(28), "orange", 1)
    await graded_visit(http, stack, g, f"V-{g.pregnancy_id}-1", visit_on, "orange", 1)

    async def cases() -> list[dict[str, Any]] | None:
        items = (await followups(http, stack, region=county, type="pregnancy_high_risk"))["items"]
        return items if len(items) == 2 else None

    found = {c["pregnancy_id"]: c for c in await wait_for(cases, 30)}
    cf = found[f.pregnancy_id]
    assert (cf["reason"], cf["opened_on"], cf["due_on"], cf["status"], cf["screening_key"]) == (
        "red", visit_on.isoformat(), (visit_on + timedelta(14)).isoformat(), "open", None)
    assert cf["person_id"] == f.mother_id and cf["region_code"] == village(county)
    assert (await act(http, stack, cf["case_id"], "referred", visit_on + timedelta(3))).status_code == 201
    for x in (f, g):
        await deliver(http, stack, x)
    # the 专案 ends with the pregnancy: closed on the delivery date, with the reason, no outcome
    for x in (f, g):
        c = await wait_for(lambda x=x: _closed(http, stack, found[x.pregnancy_id]["case_id"]), 30)
        assert (c["closed_on"], c["closed_reason"], c["outcome"]) == (
            x.born.isoformat(), f"pregnancy ended (delivered on {x.born.isoformat()})", None)
    codes = await indicator_codes(http, stack)
    if "high_risk_management_rate" in codes:
        # both women delivered high-risk; only f's case was managed (≥ 1 action)
        await wait_counts(http, stack, county, str(f.born.year), {"high_risk_management_rate": (1, 2)})
    # g's grade corrected to green: its case is closed (kept) because of that, not because the pregnancy ended
    await graded_visit(http, stack, g, f"V-{g.pregnancy_id}-1", visit_on, "green", 2)

    async def corrected() -> dict[str, Any] | None:
        r = await http.get(f"{stack.url('screening')}/v1/followups/{found[g.pregnancy_id]['case_id']}")
        return r.json() if r.json()["closed_reason"] == "risk grade corrected below orange" else None

    cg = await wait_for(corrected, 30)
    assert cg["status"] == "closed" and cg["outcome"] is None


async def _closed(http: httpx.AsyncClient, stack: Stack, case_id: str) -> dict[str, Any] | None:
    r = await http.get(f"{stack.url('screening')}/v1/followups/{case_id}")
    assert r.status_code == 200, r.text
    return r.json() if r.json()["status"] == "closed" else None


async def test_high_risk_cases_close_when_the_pregnancy_ends(http: httpx.AsyncClient, stack: Stack) -> None:
    """Issue 21: 高危专案 cases stayed open after the delivery and filled the overdue list. A delivery closes the
    case (with the reason, on the delivery date); voiding that delivery opens it again; a case closed by its
    own actions before the delivery keeps its outcome. Closed by the pregnancy's end, a case is not a due
    follow-up of 随访完成率 (decision 50): computed here from the cases' own fields."""
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await pregnancy(http, stack, county, inst, born_days_ago=40)
    h = await pregnancy(http, stack, county, inst, born_days_ago=40)
    visit_on = f.lmp + timedelta(days=30 * 7)
    await graded_visit(http, stack, f, f"V-{f.pregnancy_id}-1", visit_on, "orange", 1)
    await graded_visit(http, stack, h, f"V-{h.pregnancy_id}-1", visit_on, "purple", 1)

    async def cases() -> dict[str, dict[str, Any]] | None:
        items = (await followups(http, stack, region=county, type="pregnancy_high_risk"))["items"]
        return {c["pregnancy_id"]: c for c in items} if len(items) == 2 else None

    found = await wait_for(cases, 30)
    # h's case is closed by its own action (managed, outcome recorded) before the delivery
    r = await act(http, stack, found[h.pregnancy_id]["case_id"], "closed", visit_on + timedelta(5),
                  outcome="managed")
    assert r.status_code == 201, r.text
    dl = await http.post(f"{stack.url('registry')}/v1/encounters", json={
        "encounter_id": f"E-{f.pregnancy_id}", "source": SOURCE, "type": "delivery",
        "occurred_at": f"{f.born.isoformat()}T10:00:00+08:00", "institution_code": f.institution,
        "subject_id": f.pregnancy_id, "place": "hospital", "mode": "vaginal",
        "babies": [{"sex": "F", "birth_weight_g": 3100, "outcome": "live"}]})
    assert dl.status_code == 201, dl.text
    await deliver(http, stack, h)
    cid = found[f.pregnancy_id]["case_id"]
    c = await wait_for(lambda: _closed(http, stack, cid), 30)
    assert (c["closed_on"], c["closed_reason"]) == (f.born.isoformat(), f"pregnancy ended (delivered on {f.born})")
    overdue = (await followups(http, stack, region=county, type="pregnancy_high_risk", overdue="true"))["items"]
    assert overdue == []

    # the delivery was posted in error: voided, the pregnancy goes on and so does its 专案
    r = await http.request("DELETE", f"{stack.url('registry')}/v1/encounters/{SOURCE}/E-{f.pregnancy_id}",
                           params={"reason": "posted to the wrong pregnancy"})
    assert r.status_code == 200, r.text

    async def reopened() -> dict[str, Any] | None:
        got = (await http.get(f"{stack.url('screening')}/v1/followups/{cid}")).json()
        return got if got["status"] == "open" else None

    c = await wait_for(reopened, 30)
    assert c["closed_reason"] is None and c["closed_on"] is None
    hc = (await http.get(f"{stack.url('screening')}/v1/followups/{found[h.pregnancy_id]['case_id']}")).json()
    assert (hc["status"], hc["outcome"], hc["closed_reason"]) == ("closed", "managed", None)
    codes = await indicator_codes(http, stack)
    if "followup_completion_rate" in codes:
        everything = (await followups(http, stack, region=county))["items"]
        for year in {date.fromisoformat(x["due_on"]).year for x in everything}:
            due = [x for x in everything if date.fromisoformat(x["due_on"]).year == year and not x["closed_reason"]]
            done = [x for x in due if x["status"] == "closed" and x["outcome"] not in (None, "lost")
                    and x["closed_on"] <= x["due_on"]]
            await wait_counts(http, stack, county, str(year), {"followup_completion_rate": (len(done), len(due))})


def _read_topic(stack: Stack) -> list[tuple[int, str, Any]]:
    """Every event on the screening topic so far: (partition, subject key, envelope)."""
    from kafka import KafkaConsumer, TopicPartition
    from kit.events import parse

    topic = stack.settings.topic("screening")
    c = KafkaConsumer(bootstrap_servers=stack.settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=50)
    try:
        parts = sorted(c.partitions_for_topic(topic) or [])
        tps = [TopicPartition(topic, p) for p in parts]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out: list[tuple[int, str, Any]] = []
        for _ in range(20):
            batch = c.poll(timeout_ms=200, max_records=5000)
            if not batch and out:
                break
            for tp, msgs in batch.items():
                out += [(tp.partition, m.key.decode(), parse(m.value)) for m in msgs]
        return out
    finally:
        c.close()


async def test_events_carry_the_whole_state_keyed_by_subject(http: httpx.AsyncClient, stack: Stack) -> None:
    from kit.events import payload
    from mch.events.v1 import screening_pb2 as scr

    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await family(http, stack, county, inst)
    await known(http, stack, f)
    d = f.lmp + timedelta(days=16 * 7)
    b = body("prenatal_serum", f.pregnancy_id, inst, d, t21_risk="1/120", t18_risk="1/8000", ntd_risk="high")
    case_id = (await post(http, stack, b)).json()["followup"]["case_id"]
    r = await http.post(f"{stack.url('screening')}/v1/screenings",
                        json={**b, "version": 2, "t21_risk": "1/5000", "ntd_risk": "low"})
    assert r.status_code == 200, r.text
    key = f"{SOURCE}/{b['screening_id']}"

    async def mine() -> list[tuple[int, str, Any]] | None:
        evs = [e for e in await asyncio.to_thread(_read_topic, stack)
               if e[2].type in ("screening.result.recorded", "screening.followup.changed")]
        found = [e for e in evs if (e[2].type == "screening.result.recorded"
                                    and payload(e[2], scr.ScreeningRecorded).screening_key == key)
                 or (e[2].type == "screening.followup.changed"
                     and payload(e[2], scr.FollowupCaseChanged).case_id == case_id)]
        return found if len(found) == 4 else None

    found = await wait_for(mine, 30)
    assert {(p, k) for p, k, _ in found} == {(found[0][0], f"pregnancy:{f.pregnancy_id}")}  # one key, in order
    results = [payload(e, scr.ScreeningRecorded) for _, _, e in found if e.type == "screening.result.recorded"]
    cases = [payload(e, scr.FollowupCaseChanged) for _, _, e in found if e.type == "screening.followup.changed"]
    assert [(x.version, x.classification, x.followup_case_id) for x in results] == [
        (1, "high_risk", case_id), (2, "normal", case_id)]
    first = results[0]
    assert (first.type, first.subject_id, first.pregnancy_id, first.person_id, first.performed_on) == (
        "prenatal_serum", f.pregnancy_id, f.pregnancy_id, f.mother_id, d.isoformat())
    assert (first.institution_code, first.institution_region, first.residence_code) == (
        inst, village(county), village(county))
    assert first.rule_version == "screening-rules-2026.1"
    assert (first.prenatal_serum.t21_risk_n, first.prenatal_serum.t18_risk_n, first.prenatal_serum.ntd_risk) == (
        120, 8000, "high")
    assert [(c.version, c.status, c.closed_reason, c.screening_key, c.reason) for c in cases] == [
        (1, "open", "", key, "high_risk"), (2, "closed", "result corrected to normal", key, "high_risk")]
    assert cases[0].due_on == (d + timedelta(14)).isoformat() and cases[0].region_code == village(county)


async def test_a_voided_pregnancy_leaves_no_open_case(http: httpx.AsyncClient, stack: Stack) -> None:
    county = fresh_county()
    inst = await institution(http, stack, county)
    f = await pregnancy(http, stack, county, inst, born_days_ago=-60)  # still pregnant
    on = f.lmp + timedelta(days=15 * 7)
    case = (await post(http, stack, body("cfdna", f.pregnancy_id, inst, on, result="high_risk"))).json()["followup"]
    assert case["status"] == "open"
    # the registration was made in error: voided in the registry (it has no encounters), whose event reaches
    # screening as the registry emits it
    r = await http.request("DELETE", f"{stack.url('registry')}/v1/pregnancies/{f.pregnancy_id}",
                           json={"reason": "registered in error"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "voided"

    async def closed() -> dict[str, Any] | None:
        r = await http.get(f"{stack.url('screening')}/v1/followups/{case['case_id']}")
        return r.json() if r.json()["status"] == "closed" else None

    c = await wait_for(closed, 30)
    assert c["closed_reason"] == "pregnancy voided in the registry"
    r = await http.post(f"{stack.url('screening')}/v1/screenings",
                        json=body("cfdna", f.pregnancy_id, inst, on, result="low_risk"))
    assert r.status_code == 422 and "voided" in r.json()["errors"][0]["reason"]
