"""Erply's Swagger (../shared/spec), made strict: every property required, no other key allowed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft4Validator  # type: ignore[import-untyped]

from tests.conftest import IN_CI, SPEC_DIR


def strict_definitions() -> dict[str, Any]:
    """The Swagger's definitions with all keys required and no others; fails under CI when it is missing."""
    path = SPEC_DIR / "erply-webhook-openapi.json"
    if not path.is_file():
        if IN_CI:
            pytest.fail(f"{path} is missing")
        pytest.skip(f"{path} is missing")
    strict = {}
    for name, definition in json.loads(path.read_text(encoding="utf-8"))["definitions"].items():
        strict[name] = copy.deepcopy(definition)
        strict[name]["required"] = sorted(definition.get("properties", {}))
        strict[name]["additionalProperties"] = False
    return strict


def problems(definitions: dict[str, Any], schema: dict[str, Any], value: Any) -> list[str]:
    """Where ``value`` breaks ``schema`` (which may $ref the definitions); empty when it conforms."""
    validator = Draft4Validator({"definitions": definitions, **schema})
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


def array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/definitions/{name}"}}


def one(name: str) -> dict[str, Any]:
    return {"$ref": f"#/definitions/{name}"}
