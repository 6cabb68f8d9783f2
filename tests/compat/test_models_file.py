"""The facts file of Erply's models (erply_models.json) is well formed: a JSON Schema draft 4 document of object
models whose every reference names a model it defines, usable by the compatibility tests as it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft4Validator  # type: ignore[import-untyped]

from tests.swagger import MODELS_FILE, model_definitions, one, problems, strict_definitions

JSON_TYPES = {"array", "boolean", "integer", "number", "null", "object", "string"}
# The models the API's answers and inputs are checked against (Swagger v1.18.3).
EXPECTED_MODELS = {
    "models.InputWebhookConfiguration",
    "models.OutputError",
    "models.OutputEvent",
    "models.OutputOK",
    "models.OutputWebhook",
    "models.WebhookConfiguration",
}


def _nodes(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every schema node under ``node`` (properties and items), with where it is."""
    yield where, node
    for name, prop in node.get("properties", {}).items():
        yield from _nodes(prop, f"{where}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], f"{where}[]")


def test_the_file_is_a_draft_4_schema_with_a_comment() -> None:
    document = json.loads(MODELS_FILE.read_text(encoding="utf-8"))
    assert document["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert "v1.18.3" in document["$comment"]
    Draft4Validator.check_schema(document)


def test_it_defines_the_models_of_the_api() -> None:
    assert set(model_definitions()) >= EXPECTED_MODELS


@pytest.mark.parametrize("name", sorted(model_definitions()))
def test_each_model_is_an_object_with_typed_properties(name: str) -> None:
    model = model_definitions()[name]
    assert model["type"] == "object"
    assert isinstance(model["properties"], dict)
    assert model["properties"]
    for where, node in _nodes(model, name):
        if where == name:
            continue
        assert ("type" in node) != ("$ref" in node), f"{where}: give a type or a $ref, not both or neither"
        if "type" in node:
            assert node["type"] in JSON_TYPES, where
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{where}: an array says what its items are"
        if "enum" in node:
            assert isinstance(node["enum"], list), where
            assert node["enum"], where
        assert not {"description", "example", "examples"} & set(node), f"{where}: facts only"


def test_every_ref_names_a_defined_model() -> None:
    definitions = model_definitions()
    for name, model in definitions.items():
        for where, node in _nodes(model, name):
            ref = node.get("$ref")
            if ref is not None:
                assert ref.startswith("#/definitions/"), where
                assert ref.removeprefix("#/definitions/") in definitions, f"{where}: {ref} is not defined"


def test_strict_models_require_every_property_and_refuse_others() -> None:
    strict = strict_definitions()
    assert strict.keys() == model_definitions().keys()
    for name, model in strict.items():
        assert model["required"] == sorted(model["properties"]), name
        assert model["additionalProperties"] is False, name
    ok = {"message": "configuration removed"}
    assert problems(strict, one("models.OutputOK"), ok) == []
    assert problems(strict, one("models.OutputOK"), {})
    assert problems(strict, one("models.OutputOK"), {**ok, "extra": 1})
    assert problems(strict, one("models.OutputOK"), {"message": 1})
