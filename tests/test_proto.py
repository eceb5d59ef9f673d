"""The Python modules generated from proto/ are current (regenerate with `make proto`)."""
from __future__ import annotations

import filecmp
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_event_modules_are_current(tmp_path: Path) -> None:
    subprocess.run([str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)], check=True, cwd=ROOT,
                   capture_output=True)
    gen = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    have = sorted(p.relative_to(ROOT / "proto" / "python") for p in (ROOT / "proto" / "python").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)
    assert gen == have, "proto/python is missing or has extra files: run `make proto`"
    for rel in gen:
        assert filecmp.cmp(tmp_path / rel, ROOT / "proto" / "python" / rel, shallow=False), f"{rel} is stale"


def test_envelope_round_trip() -> None:
    from kit.events import NewEvent, envelope, parse, payload
    from mch.events.v1 import registry_pb2

    ev = NewEvent("registry.pregnancy.recorded", registry_pb2.PregnancyRecorded(pregnancy_id="P1", version=3),
                  subject_key="pregnancy:P1", region_code="320582101001")
    env = parse(envelope(ev, "registry").SerializeToString())
    assert (env.type, env.subject_key, env.region_code, env.source_service) == (
        "registry.pregnancy.recorded", "pregnancy:P1", "320582101001", "registry")
    assert payload(env, registry_pb2.PregnancyRecorded).version == 3
    assert env.event_id and env.recorded_at.seconds > 0
