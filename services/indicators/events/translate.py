"""Envelope → Facts: what each consumed event says about the current state of one source record, filed under
the subject (unit) whose indicators it affects. One event may be filed twice when two units depend on it
(a follow-up case is its own unit and part of its pregnancy; a certificate is its own unit and part of the
child), so that each unit loads only its own subjects' facts."""
from __future__ import annotations

from google.protobuf.json_format import MessageToDict
from kit.events import payload
from mch.events.v1 import certificates_pb2 as cert
from mch.events.v1 import quality_pb2 as qua
from mch.events.v1 import registry_pb2 as reg
from mch.events.v1 import screening_pb2 as scr
from mch.events.v1.envelope_pb2 import Envelope

from indicators.domain.facts import Fact
from indicators.domain.units import PREGNANCY_ENCOUNTERS, PREGNANCY_SCREENINGS


def _dict(msg: object) -> dict[str, object]:
    return MessageToDict(msg, preserving_proto_field_name=True,  # type: ignore[arg-type]
                         always_print_fields_with_no_presence=True)


def to_fact(env: Envelope) -> Fact | None:
    """The first fact of an event (registry events give exactly one)."""
    facts = to_facts(env)
    return facts[0] if facts else None


def to_facts(env: Envelope) -> list[Fact]:
    t = env.type
    if t == "registry.pregnancy.recorded":
        p = payload(env, reg.PregnancyRecorded)
        key = f"pregnancy:{p.pregnancy_id}"
        return [Fact(key, key, p.version, p.voided, _dict(p))]
    if t == "registry.encounter.recorded":
        e = payload(env, reg.EncounterRecorded)
        # care of the pregnancy belongs to the episode; everything else (child checks, deaths, folic acid) to
        # the person it is about
        if e.type in PREGNANCY_ENCOUNTERS and e.pregnancy_id:
            subject = f"pregnancy:{e.pregnancy_id}"
        else:
            detail = e.WhichOneof("detail")
            named = getattr(e, detail).person_id if detail in ("death", "folic_acid") else ""
            subject = f"person:{named or e.person_id or e.subject_id}"
        return [Fact(f"encounter:{e.encounter_key}", subject, e.version, e.voided, _dict(e))]
    if t == "registry.person.upserted":
        p2 = payload(env, reg.PersonUpserted)
        key = f"person:{p2.person_id}"
        return [Fact(key, key, p2.version, False, _dict(p2))]
    if t == "registry.person.merged":  # 合并 / 撤销合并: an unmerge is a newer version, voided
        pm = payload(env, reg.PersonMerged)
        key = f"merge:{pm.merge_id}"
        return [Fact(key, key, pm.version, pm.unmerged, _dict(pm))]
    if t == "registry.marriage.recorded":
        m = payload(env, reg.MarriageRecorded)
        key = f"marriage:{m.registration_key}"
        return [Fact(key, key, m.version, m.voided, _dict(m))]
    if t == "registry.institution.upserted":
        i = payload(env, reg.InstitutionUpserted)
        key = f"institution:{i.institution_code}"
        return [Fact(key, key, i.version, False, _dict(i))]
    if t == "screening.result.recorded":
        s = payload(env, scr.ScreeningRecorded)
        # screens of a pregnancy belong to the episode; the rest (newborn screens, HBIG, exams, 两癌) to the
        # person screened
        if s.type in PREGNANCY_SCREENINGS and s.pregnancy_id:
            subject = f"pregnancy:{s.pregnancy_id}"
        else:
            subject = f"person:{s.person_id or s.subject_id}"
        return [Fact(f"screening:{s.screening_key}", subject, s.version, s.voided, _dict(s))]
    if t == "screening.followup.changed":
        c = payload(env, scr.FollowupCaseChanged)
        body = _dict(c)
        key = f"followup:{c.case_id}"
        out = [Fact(key, key, c.version, False, body)]
        if c.pregnancy_id:  # high-risk management and prenatal follow-up look at the pregnancy's cases
            out.append(Fact(f"case:{c.case_id}", f"pregnancy:{c.pregnancy_id}", c.version, False, body))
        return out
    if t == "certificates.certificate.changed":
        cc = payload(env, cert.CertificateChanged)
        body = _dict(cc)
        key = f"cert:{cc.serial}"
        out = [Fact(key, key, cc.version, False, body)]
        if cc.child_id:  # the first-issue rate looks at the live birth's certificates
            out.append(Fact(f"certificate:{cc.serial}", f"person:{cc.child_id}", cc.version, False, body))
        return out
    if t == "quality.score_parts.changed":  # 质控评分: one institution-month's counts, the newest version wins
        q = payload(env, qua.ScorePartsChanged)
        key = f"qscore:{q.institution_code}:{q.month}"
        return [Fact(key, key, q.version, False, _dict(q))]
    if t == "certificates.stock.moved":
        sm = payload(env, cert.StockMoved)
        key = f"stock:{sm.movement_id}"
        return [Fact(key, key, 1, False, _dict(sm))]  # movements are immutable
    return []
