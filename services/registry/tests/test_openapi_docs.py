"""The registry's OpenAPI: typed bodies built from the models the use cases validate with, examples that those
models accept, a description and the problem+json answers on every operation (issue 19)."""
from __future__ import annotations

from typing import Any

from registry.api import openapi
from registry.api.schemas import PersonIn, PersonRef, PregnancyIn
from registry.domain.model import ENCOUNTER_TYPES
from registry.main import app
from registry.service import parse_encounter


def spec() -> dict[str, Any]:
    return app.openapi()


def test_an_encounter_body_is_one_schema_per_type_told_apart_by_type() -> None:
    s = spec()
    union = s["components"]["schemas"]["Encounter"]
    assert union["discriminator"]["propertyName"] == "type"
    assert sorted(union["discriminator"]["mapping"]) == sorted(ENCOUNTER_TYPES)
    for kind, ref in union["discriminator"]["mapping"].items():
        one = s["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert one["properties"]["type"]["const"] == kind and one["additionalProperties"] is False
        assert {"encounter_id", "source", "occurred_at", "institution_code", "subject_id"} <= set(one["required"])
    delivery = s["components"]["schemas"]["DeliveryEncounter"]
    assert {"place", "mode", "babies"} <= set(delivery["required"])
    body = s["paths"]["/v1/encounters"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Encounter"}
    batch = s["paths"]["/v1/encounters:batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["items"] == {"$ref": "#/components/schemas/Encounter"} and batch["maxItems"] == 1000


def test_every_example_is_accepted_by_the_validation_the_route_runs() -> None:
    for kind, example in openapi.EXAMPLES.items():
        parsed = parse_encounter(0, example)
        assert parsed.req["type"] == kind
    for example in openapi.PREGNANCY_EXAMPLES.values():
        preg = PregnancyIn.model_validate(example)
        if "person_id" in preg.mother:
            PersonRef.model_validate(preg.mother)
        else:
            PersonIn.model_validate(preg.mother)
    mother = spec()["components"]["schemas"]["PregnancyIn"]["properties"]["mother"]
    assert mother["anyOf"] == [{"$ref": "#/components/schemas/PersonIn"}, {"$ref": "#/components/schemas/PersonRef"}]


def test_every_operation_has_a_description_and_its_problem_answers() -> None:
    s = spec()
    for path, ops in s["paths"].items():
        for method, op in ops.items():
            assert op.get("summary") and op.get("description"), (method, path)
            if op.get("x-mch-auth") != "none":
                assert {"401", "403"} <= set(op["responses"]), (method, path)
            if "requestBody" in op or op.get("parameters"):
                problem = op["responses"]["422"]["content"]["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}, (method, path)
    assert "HTTPValidationError" not in s["components"]["schemas"]
