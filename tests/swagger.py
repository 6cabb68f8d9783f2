"""Erply's Webhook Manager API v1.18.3 models (tests/compat/erply_models.json), made strict: every property
required, no other key allowed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator  # type: ignore[import-untyped]

MODELS_FILE = Path(__file__).parent / "compat" / "erply_models.json"


def model_definitions() -> dict[str, Any]:
    """The models as recorded in the facts file (JSON Schema draft 4 definitions)."""
    definitions: dict[str, Any] = json.loads(MODELS_FILE.read_text(encoding="utf-8"))["definitions"]
    return definitions


def strict_definitions() -> dict[str, Any]:
    """The models with all their keys required and no others."""
    strict = {}
    for name, definition in model_definitions().items():
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
