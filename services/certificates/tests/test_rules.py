"""The rules of stock, custodians and issuance, without I/O: each refusal names its field and its reason."""
from __future__ import annotations

from datetime import date

import pytest
from kit.records import DomainError

from certificates.domain import rules
from certificates.domain.rules import CertificateFacts, ChildFacts, Custodian

BORN = date(2026, 3, 1)
CHILD = ChildFacts("c1", BORN, "H1", "hospital")


def refused(fn, *args, **kw) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as e:
        fn(*args, **kw)
    assert e.value.errors, str(e.value)
    return e.value.status, e.value.errors[0]["field"], e.value.errors[0]["reason"]


def cert(serial: str, state: str, kind: str = "first", child: str = "c1") -> CertificateFacts:
    return CertificateFacts(serial, state, kind, child, "H1", "K1")


def test_serial_ranges() -> None:
    r = rules.parse_range("Q000000001", "Q000006000")
    assert (r.quantity, r.serial_from, r.serial_to) == (6000, "Q000000001", "Q000006000")
    assert refused(rules.parse_range, "Q000000009", "Q000000001")[:2] == (422, "serial_to")
    assert refused(rules.parse_range, "Q000000001", "R000000001")[:2] == (422, "serial_to")
    assert refused(rules.parse_range, "Q00000001", "Q000000001")[:2] == (422, "serial_from")
    assert refused(rules.parse_range, "Q000000001", "Q999999999")[:2] == (422, "serial_to")  # too many
    assert refused(rules.check_not_future, date(2030, 1, 1), date(2026, 1, 1), "received_on")[1] == "received_on"


def test_transitions_end_in_void_or_superseded() -> None:
    assert rules.can_move("in_stock", "prepared") and rules.can_move("issued", "superseded")
    for end in ("voided", "superseded"):
        assert not any(rules.can_move(end, to) for to in ("bureau", "in_stock", "prepared", "issued", "voided",
                                                          "superseded"))
    assert not rules.can_move("prepared", "superseded")  # only a sealed certificate is superseded
    assert not rules.can_move("in_stock", "issued")      # never issued without being prepared


def test_one_person_cannot_hold_both_roles() -> None:
    keeper = Custodian("H1", "p-k1", "K1", "王", "certificate")
    assert rules.check_assignment(keeper, [keeper]) == "unchanged"
    assert rules.check_assignment(Custodian("H1", "p-k2", "K2", "赵", "certificate"), [keeper]) == "assign"
    status, field, reason = refused(rules.check_assignment, Custodian("H1", "p-k1", "K1", "王", "seal"), [keeper])
    assert (status, field) == (422, "account_id") and "证章分离" in reason


def test_only_a_person_of_the_institution_with_the_role_is_assigned() -> None:
    person = {"kind": "person", "institution_code": "H1", "roles": ["seal_custodian"]}
    rules.check_assignable("seal", person, "H1")
    for role, account, why in [("seal", None, "no such"), ("seal", {**person, "kind": "system"}, "people"),
                               ("seal", {**person, "institution_code": "H2"}, "works at H2"),
                               ("certificate", person, "certificate_custodian")]:
        status, field, reason = refused(rules.check_assignable, role, account, "H1")
        assert (status, field) == (422, "account_id") and why in reason, reason


def test_only_the_custodian_working_there_prepares() -> None:
    rules.check_preparer("p-k1", "H1", "H1", "p-k1")
    assert refused(rules.check_preparer, "p-k1", "H1", "H2", "p-k1")[:2] == (403, "actor")  # works elsewhere
    assert refused(rules.check_preparer, "p-k2", "H1", "H1", "p-k1")[:2] == (403, "actor")  # not the keeper
    assert refused(rules.check_preparer, "p-k1", "H1", "H1", None)[:2] == (403, "actor")    # none assigned


def test_first_issue_rules() -> None:
    rules.check_prepare("first", CHILD, "H1", None, None, None, [])
    unknown = ChildFacts("c9", None, None, None)
    assert refused(rules.check_prepare, "first", unknown, "H1", None, None, None, [])[:2] == (422, "child_id")
    assert refused(rules.check_prepare, "first", CHILD, "H2", None, None, None, [])[:2] == (422, "child_id")
    home = ChildFacts("c1", BORN, "H1", "home")
    assert refused(rules.check_prepare, "first", home, "H1", None, None, None, [])[:2] == (422, "kind")
    assert refused(rules.check_prepare, "first_out_of_institution", home, "H1", "  ", None, None,
                   [])[:2] == (422, "evidence_ref")
    rules.check_prepare("first_out_of_institution", home, "H1", "接生证明 17", None, None, [])
    # issued twice: refused while a certificate exists, allowed again after a wrong one was voided
    assert refused(rules.check_prepare, "first", CHILD, "H1", None, None, None,
                   [cert("A1", "issued")])[:2] == (409, "child_id")
    assert refused(rules.check_prepare, "first", CHILD, "H1", None, None, None,
                   [cert("A1", "superseded"), cert("A2", "issued", "reissue")])[:2] == (409, "child_id")
    assert refused(rules.check_prepare, "first", CHILD, "H1", None, None, None,
                   [cert("A1", "prepared")])[:2] == (409, "child_id")
    rules.check_prepare("first", CHILD, "H1", None, None, None, [cert("A1", "voided")])
    assert refused(rules.check_prepare, "first", CHILD, "H1", None, None, "A1", [])[:2] == (422, "previous_serial")


def test_reissue_and_replacement_rules() -> None:
    valid = cert("A1", "issued")
    for kind in ("reissue", "replacement"):
        rules.check_prepare(kind, CHILD, "H1", None, valid, "A1", [valid])
        assert refused(rules.check_prepare, kind, CHILD, "H1", None, None, None, [valid])[:2] == (
            422, "previous_serial")
        assert refused(rules.check_prepare, kind, CHILD, "H1", None, None, "A7", [valid])[:2] == (
            422, "previous_serial")
        lost = cert("A1", "superseded")
        reissued = cert("A2", "issued", "reissue")
        assert refused(rules.check_prepare, kind, CHILD, "H1", None, lost, "A1", [lost, reissued])[:2] == (
            409, "previous_serial")  # no uncontrolled reprints of an invalid certificate
        # the reissue was voided as wrongly issued: the child has none valid, the superseded one is reissued
        rules.check_prepare(kind, CHILD, "H1", None, lost, "A1", [lost, cert("A2", "voided", "reissue")])
        other = cert("B1", "issued", child="c2")
        assert refused(rules.check_prepare, kind, CHILD, "H1", None, other, "B1", [valid])[:2] == (
            422, "previous_serial")


def test_seal_is_applied_by_another_person_the_seal_custodian() -> None:
    c = cert("A1", "prepared")
    rules.check_seal(c, "S1", "H1", "S1")
    status, field, reason = refused(rules.check_seal, c, "K1", "H1", "K1")   # the preparer
    assert (status, field) == (403, "actor") and "证章分离" in reason
    assert refused(rules.check_seal, c, "S2", "H1", "S1")[:2] == (403, "actor")   # not the seal custodian
    assert refused(rules.check_seal, c, "S1", "H1", None)[:2] == (403, "actor")   # none assigned
    assert refused(rules.check_seal, c, "S1", "H2", "S1")[:2] == (403, "actor")   # works at another institution
    assert refused(rules.check_seal, cert("A1", "issued"), "S1", "H1", "S1")[:2] == (409, "serial")


def test_voids() -> None:
    rules.check_void_certificate(cert("A1", "prepared"))
    rules.check_void_certificate(cert("A1", "issued"))
    for state in ("voided", "superseded"):
        assert refused(rules.check_void_certificate, cert("A1", state))[:2] == (409, "serial")
    rules.check_void_blank("A1", "in_stock")
    rules.check_void_blank("A1", "bureau")
    assert refused(rules.check_void_blank, "A1", None)[:2] == (404, "serial")
    assert refused(rules.check_void_blank, "A1", "issued")[:2] == (409, "serial")


def test_verification_reveals_nothing_on_a_mismatch() -> None:
    assert rules.verify("issued", "张三", BORN, "张三", BORN) == (True, "issued")
    assert rules.verify("superseded", "张三", BORN, "张三", BORN) == (False, "superseded")
    assert rules.verify("voided", "张三", BORN, "李四", BORN) == (False, "mismatch")
    assert rules.verify("issued", "张三", BORN, "张三", date(2026, 3, 2)) == (False, "mismatch")
    assert rules.verify(None, None, None, "张三", BORN) == (False, "not_found")
    assert rules.verify("in_stock", None, None, "张三", BORN) == (False, "not_found")


def test_stock_figures_balance_and_count_each_serial_once() -> None:
    # seed 001: 1275 in stock before the period, 6000 allocated in it, 5575 first issues
    f = rules.figures([("allocated", None, True, 1275), ("allocated", None, False, 6000),
                       ("issued", "first", False, -5575)])
    assert (f.opening, f.received, f.issued, f.voided, f.closing) == (1275, 6000, 5575, 0, 1700)
    # a certificate voided after its blank was drawn moves from issued to voided; a blank voided in stock
    g = rules.figures([("allocated", None, False, 10), ("issued", "first", False, -3), ("issued", "first", False, 1),
                       ("voided", None, False, -1), ("voided", None, False, -1), ("issued", "reissue", False, -1)])
    assert g.issued_by_kind == {"first": 2, "first_out_of_institution": 0, "reissue": 1, "replacement": 0}
    assert (g.issued, g.voided, g.closing) == (3, 2, 5)
    assert g.closing == g.opening + g.received - g.issued - g.voided
    bureau = rules.figures([("received", None, True, 100), ("allocated", None, True, -40),
                            ("received", None, False, 50), ("allocated", None, False, -30)])
    assert (bureau.opening, bureau.received, bureau.allocated, bureau.closing) == (60, 50, 30, 80)


def test_a_preparation_sent_again_is_the_pending_one_of_the_same_kind_preparer_and_institution() -> None:
    pending = CertificateFacts("A000000002", "prepared", "first", "c1", "H1", "K1")
    certs = [CertificateFacts("A000000001", "voided", "first", "c1", "H1", "K1"), pending]
    assert rules.replayed_preparation("first", "K1", "H1", certs) == pending
    assert rules.replayed_preparation("first", "K2", "H1", certs) is None            # another custodian
    assert rules.replayed_preparation("first", "K1", "H2", certs) is None            # another institution
    assert rules.replayed_preparation("first_out_of_institution", "K1", "H1", certs) is None
    sealed = [CertificateFacts("A000000002", "issued", "first", "c1", "H1", "K1")]
    assert rules.replayed_preparation("first", "K1", "H1", sealed) is None          # issued: nothing pending


def test_a_preparation_is_the_same_when_name_previous_serial_and_evidence_are() -> None:
    assert rules.same_preparation(("张小明", None, None), (" 张小明 ", None, ""))
    assert not rules.same_preparation(("张小明", None, None), ("张小红", None, None))
    assert not rules.same_preparation(("张小明", "A000000001", None), ("张小明", None, None))
    assert not rules.same_preparation(("张小明", None, "证明-1"), ("张小明", None, "证明-2"))
