"""Certificate events (proto/mch/events/v1/certificates.proto): state of a certificate, movements of stock."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from kit.events import NewEvent
from mch.events.v1 import certificates_pb2 as pb

CERTIFICATE_CHANGED = "certificates.certificate.changed"
STOCK_MOVED = "certificates.stock.moved"


def _d(v: date | None) -> str:
    return v.isoformat() if v else ""


def certificate_changed(row: Any) -> NewEvent:
    """`row` is the serial row after the change (a certificate: it has a child and a kind)."""
    msg = pb.CertificateChanged(
        serial=row["serial"], kind=row["kind"], status=row["state"], child_id=str(row["child_id"]),
        institution_code=row["institution_code"], institution_region=row["institution_region"] or "",
        prepared_on=_d(row["prepared_on"]), issued_on=_d(row["issued_on"]), voided_on=_d(row["voided_on"]),
        superseded_on=_d(row["superseded_on"]), previous_serial=row["previous_serial"] or "",
        void_reason=row["void_reason"] or "", version=row["version"], superseded_by=row["superseded_by"] or "")
    on = row["voided_on"] or row["superseded_on"] or row["issued_on"] or row["prepared_on"]
    return NewEvent(CERTIFICATE_CHANGED, msg, subject_key=f"person:{row['child_id']}",
                    region_code=row["institution_region"] or "", occurred_at=on)


def stock_moved(movement_id: uuid.UUID, institution_code: str | None, region: str, kind: str, on: date,
                quantity: int, serial_from: str, serial_to: str) -> NewEvent:
    msg = pb.StockMoved(movement_id=str(movement_id), institution_code=institution_code or "",
                        institution_region=region, kind=kind, on=on.isoformat(), quantity=quantity,
                        serial_from=serial_from, serial_to=serial_to)
    return NewEvent(STOCK_MOVED, msg, subject_key=f"stock:{institution_code or 'bureau'}", region_code=region,
                    occurred_at=on)
