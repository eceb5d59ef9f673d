"""A client generated from the registry's live OpenAPI (openapi-python-client, as an HIS integrator would) posts a
pregnancy and a delivery; the figures are read back through it and from the indicators (issue 19: the typed
OpenAPI is what an integrator needs, and enough to send correct bodies without reading our code)."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from kit.clients import create_client
from kit.clock import today_cn

from tests.conftest import Stack, fresh_county, village
from tests.helpers import wait_counts
from tests.test_registry_persons import id_number

VENV_BIN = Path(sys.executable).parent
PACKAGE = "mch_registry_client"


def generate(spec: Path, out: Path) -> None:
    """openapi-python-client, from the spec file into `out/PACKAGE` (ruff on PATH: it formats what it writes)."""
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run([str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(spec), "--output-path",
                           str(out / PACKAGE), "--meta", "none"], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout, done.stdout  # every schema of the spec became a type


async def test_a_generated_client_posts_a_pregnancy_and_a_delivery(http: httpx.AsyncClient, stack: Stack,
                                                                   tmp_path: Path) -> None:
    spec = tmp_path / "registry.json"
    spec.write_text((await http.get(stack.url("registry") + "/openapi.json")).text, encoding="utf-8")
    generate(spec, tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        client_mod = importlib.import_module(PACKAGE)
        models = importlib.import_module(f"{PACKAGE}.models")
        ops = importlib.import_module(f"{PACKAGE}.api.registry")
        for name in ("put_institution_v1_institutions_institution_code_put", "post_pregnancy_v1_pregnancies_post",
                     "post_encounter_v1_encounters_post", "get_pregnancy_v1_pregnancies_pregnancy_id_get"):
            importlib.import_module(f"{ops.__name__}.{name}")
    finally:
        sys.path.remove(str(tmp_path))
    county = fresh_county()
    _, token = await create_client(stack.settings, f"his-gen-{county}", ["registry:write", "registry:read"], county)
    api = client_mod.AuthenticatedClient(base_url=stack.url("registry"), token=token, raise_on_unexpected_status=True)
    inst = f"GEN{uuid.uuid4().hex[:10]}"
    lmp = today_cn() - timedelta(days=270)
    born_on = lmp + timedelta(days=268)
    mother_born = lmp.replace(year=lmp.year - 29, day=1)
    async with api:
        r = await ops.put_institution_v1_institutions_institution_code_put.asyncio_detailed(
            inst, client=api, body=models.InstitutionIn(name="县妇幼保健院", region_code=village(county),
                                                        kind=models.InstitutionInKind.MCH_CENTRE,
                                                        midwifery_licensed=True))
        assert r.status_code == 201, r.content
        pregnancy_id = f"P-{uuid.uuid4().hex[:12]}"
        mother = models.PersonIn(name="王小丽", sex=models.PersonInSex.F, birth_date=mother_born,
                                 residence_code=village(county, 2, 1), id_number=id_number(mother_born, "F"))
        r = await ops.post_pregnancy_v1_pregnancies_post.asyncio_detailed(client=api, body=models.PregnancyIn(
            pregnancy_id=pregnancy_id, source="his-gen", mother=mother, lmp_date=lmp,
            registered_on=lmp + timedelta(days=70), institution_code=inst))
        assert r.status_code == 201, r.content
        babies = [models.BabyIn(sex=models.BabyInSex.F, outcome=models.BabyInOutcome.LIVE, birth_weight_g=3150),
                  models.BabyIn(sex=models.BabyInSex.M, outcome=models.BabyInOutcome.LIVE, birth_weight_g=2900)]
        delivery = models.DeliveryEncounter(
            encounter_id=f"E-{uuid.uuid4().hex[:12]}", source="his-gen", type_="delivery", occurred_at=born_on,
            institution_code=inst, subject_id=pregnancy_id, place=models.DeliveryEncounterPlace.HOSPITAL,
            mode=models.DeliveryEncounterMode.CAESAREAN, babies=babies)
        r = await ops.post_encounter_v1_encounters_post.asyncio_detailed(client=api, body=delivery)
        assert r.status_code == 201, r.content
        r = await ops.get_pregnancy_v1_pregnancies_pregnancy_id_get.asyncio_detailed(pregnancy_id, client=api)
        assert r.status_code == 200, r.content
        facts = r.parsed.to_dict()["facts"]
    assert (facts["live_births"], facts["stillbirths"], len(facts["children"])) == (len(babies), 0, len(babies))
    assert facts["gestational_days_at_delivery"] == (born_on - lmp).days
    assert facts["gestational_days_at_booking"] == 70 and facts["delivered_on"] == born_on.isoformat()
    # and the bureau's figures: both babies born alive in a midwifery-licensed facility of the county
    await wait_counts(http, stack, county, str(born_on.year),
                      {"live_births": (len(babies), None), "hospital_delivery_rate": (len(babies), len(babies))})
