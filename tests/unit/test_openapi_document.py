"""The OpenAPI document's shape: references that resolve, both session headers required together, a JSON
schema for every answer, the statuses the handlers give, and Erply's field names and types. What the handlers
actually answer is the fuzzer's part (tests/integration/test_openapi_fuzz.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from tests.swagger import model_definitions
from webhook_manager.api import create_app
from webhook_manager.domain.model import Action
from webhook_manager.settings import Settings
from webhook_manager.store import Store

REF = "#/components/schemas/"
# Our models and Erply's (Swagger v1.18.3) of the same name and keys.
ERPLY_MODELS = {
    "InputWebhookConfiguration": "models.InputWebhookConfiguration",
    "WebhookConfiguration": "models.WebhookConfiguration",
    "OutputError": "models.OutputError",
    "OutputOK": "models.OutputOK",
    "OutputEvent": "models.OutputEvent",
    "OutputWebhook": "models.OutputWebhook",
}
# Extension properties beside Erply's (docs/api.md): optional, so Erply's inputs and answers stay as they are.
EXTENSIONS = {
    "InputWebhookConfiguration": {"headers"},
    "WebhookConfiguration": {"headers", "previousSecretUntil"},
}
# Every status each operation answers besides 200 (docs/api.md).
STATUSES = {
    "erplyApi": set(),
    "erplyApiGet": set(),
    "getWebhookConfigurations": {401, 503},
    "addWebhookConfiguration": {400, 401, 413, 503},
    "getWebhookConfiguration": {400, 401, 404, 503},
    "updateWebhookConfiguration": {400, 401, 404, 413, 503},
    "removeWebhookConfiguration": {400, 401, 404, 503},
    "recordEvents": {400, 401, 409, 413, 503},
    "getEvents": {400, 401, 503},
    "getWebhooks": {400, 401, 503},
    "getWebhook": {400, 401, 404, 503},
    "resendWebhook": {400, 401, 404, 409, 503},
    "resendWebhooks": {400, 401, 413, 503},
    "getWebhookTypes": {401, 503},
    "getEndpointHealth": {400, 401, 503},
    "getWebhookStats": {400, 401, 503},
    "healthz": set(),
    "readyz": {503},
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # made from the routes alone: no handler runs, so no store is needed
    return create_app(Settings(), cast(Store, None)).openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def _model(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with a top-level $ref followed."""
    ref = schema.get("$ref")
    return schema if ref is None else cast(dict[str, Any], document["components"]["schemas"][ref.removeprefix(REF)])


def _json_type(document: dict[str, Any], schema: dict[str, Any]) -> str:
    """The JSON type of a property, through a $ref or a nullable anyOf."""
    schema = _model(document, schema)
    if "anyOf" in schema:
        types = {_json_type(document, branch) for branch in schema["anyOf"]} - {"null"}
        assert len(types) == 1, schema
        return types.pop()
    return cast(str, schema["type"])


def test_every_reference_resolves_and_stands_alone(document: dict[str, Any]) -> None:
    models = document["components"]["schemas"]
    for node in _nodes(document):
        assert "$defs" not in node
        if "$ref" in node:
            assert node["$ref"].startswith(REF), node
            assert node["$ref"].removeprefix(REF) in models, node
            assert set(node) == {"$ref"}, f"{node}: nothing beside a $ref"


def test_v1_calls_need_both_session_headers_together_or_a_jwt(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    by_header = {s["name"]: name for name, s in schemes.items()}
    assert {(s["type"], s["in"], s["name"]) for s in schemes.values()} == {
        ("apiKey", "header", "clientCode"),
        ("apiKey", "header", "sessionKey"),
        ("apiKey", "header", "jwt"),
    }
    both: dict[str, list[str]] = {by_header["clientCode"]: [], by_header["sessionKey"]: []}
    for path, method, operation in _operations(document):
        if path.startswith("/v1/"):
            assert operation["security"] == [both, {by_header["jwt"]: []}], (method, path)
        else:
            assert "security" not in operation, (method, path)


def test_each_operation_documents_the_statuses_it_answers(document: dict[str, Any]) -> None:
    found = {operation["operationId"]: operation for _, _, operation in _operations(document)}
    assert found.keys() == STATUSES.keys()
    for name, operation in found.items():
        assert {int(status) for status in operation["responses"]} == {200, *STATUSES[name]}, name
    assert "HTTPValidationError" not in document["components"]["schemas"]  # bad input is a 400, never a 422


def test_every_answer_is_a_json_model(document: dict[str, Any]) -> None:
    for path, method, operation in _operations(document):
        for status, response in operation["responses"].items():
            schema = response["content"]["application/json"]["schema"]
            if schema.get("type") == "array":
                schema = schema["items"]
            model = _model(document, schema)
            assert model["type"] == "object", (method, path, status)
            assert model["additionalProperties"] is False, (method, path, status)
            if status != "200":
                assert schema == {"$ref": REF + "OutputError"}, (method, path, status)


def test_ids_tables_and_actions_are_constrained(document: dict[str, Any]) -> None:
    models = document["components"]["schemas"]
    assert models["Action"]["enum"] == [a.value for a in Action]
    for path, method, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "id":
                assert parameter["schema"]["pattern"] == "^[0-9a-f]{24}$", (method, path)
    for name in ("WebhookConfiguration", "OutputEvent", "OutputWebhook"):
        properties = models[name]["properties"]
        assert properties["id"]["pattern"] == "^[0-9a-f]{24}$", name
        assert properties["action"] == {"$ref": REF + "Action"}, name
        assert "pattern" in properties["table"], name
    for name in ("InputWebhookConfiguration", "InputEvents"):
        assert models[name]["properties"]["action"] == {"$ref": REF + "Action"}, name


@pytest.mark.parametrize(("ours", "erplys"), sorted(ERPLY_MODELS.items()))
def test_models_keep_erplys_field_names_and_types(document: dict[str, Any], ours: str, erplys: str) -> None:
    model = document["components"]["schemas"][ours]
    erply = model_definitions()[erplys]
    extensions = EXTENSIONS.get(ours, set())
    assert model["properties"].keys() == erply["properties"].keys() | extensions
    assert not extensions & set(model.get("required", [])), "an extension is never required"
    for key, prop in erply["properties"].items():
        assert _json_type(document, model["properties"][key]) == prop["type"], key
