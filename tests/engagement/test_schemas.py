"""The OpenAPI document and what the API enforces come from one declaration (engagement/schemas.py).

These tests read the served document, never the module that built it, and
probe the running endpoints with values at and one past each limit it states.
"""

import copy

import pytest

from engagement import schemas, segment
from engagement.models import EndUser, Membership, Signal, Tenant

pytestmark = pytest.mark.django_db

# The smallest valid body of each request shape; the probes change one field of it.
MINIMAL = {
    "Identify": {"id": "probe"},
    "Signal": {"user": {"id": "probe"}, "name": "Probed"},
}
ENDPOINTS = {"Identify": "/api/v1/users", "Signal": "/api/v1/signals"}


@pytest.fixture
def document(api):
    return api.get_json("/api/v1/openapi.json").json()


def resolve(document, schema):
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def limited_strings(document, schema, path=()):
    """(path, maxLength, plain) for every string with a maxLength; plain = no format."""
    schema = resolve(document, schema)
    if "string" in _types(schema) and "maxLength" in schema:
        yield path, schema["maxLength"], "format" not in schema
    for name, child in schema.get("properties", {}).items():
        yield from limited_strings(document, child, (*path, name))
    if "items" in schema:
        yield from limited_strings(document, schema["items"], (*path, 0))


def _types(schema):
    kind = schema.get("type", ())
    return kind if isinstance(kind, list) else [kind]


def body_with(shape, path, value):
    body = copy.deepcopy(MINIMAL[shape])
    if path[0] == "tenants":
        body["tenants"] = [{"key": "probe-tenant"}]
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def field_name(path):
    name = ""
    for step in path:
        name += f"[{step}]" if isinstance(step, int) else (f".{step}" if name else step)
    return name


def text_of(length, plain):
    return "x" * length if plain else "a" * (length - len("@example.com")) + "@example.com"


def request_shapes(document):
    users = document["paths"]["/api/v1/users"]["post"]["requestBody"]["content"]["application/json"]
    signals = document["paths"]["/api/v1/signals"]["post"]["requestBody"]["content"]["application/json"]
    return {"Identify": users["schema"], "Signal": signals["schema"]["oneOf"][0]}


def test_every_request_schema_comes_from_the_shared_declaration(document):
    for name, shape in schemas.SHAPES.items():
        assert document["components"]["schemas"][name] == schemas.json_schema(shape)


def test_the_document_states_limits_for_every_identifier_and_name(document):
    shapes = request_shapes(document)
    identify = {field_name(p): n for p, n, _ in limited_strings(document, shapes["Identify"])}
    signal = {field_name(p): n for p, n, _ in limited_strings(document, shapes["Signal"])}
    assert identify["id"] == identify["anonymous_id"] == signal["user.id"] == 255
    assert identify["tenants[0].key"] == signal["tenant"] == 200
    assert signal["name"] == 200 and identify["locale"] == 35 and identify["email"] == 320


@pytest.mark.parametrize("shape", sorted(ENDPOINTS))
def test_a_string_one_over_its_documented_limit_is_refused_by_the_api_naming_its_path(
    api, document, shape
):
    probes = list(limited_strings(document, request_shapes(document)[shape]))
    assert len(probes) >= 8
    for path, limit, plain in probes:
        response = api.post_json(ENDPOINTS[shape], body_with(shape, path, text_of(limit + 1, plain)))
        assert response.status_code == 400, (path, limit)
        errors = response.json()["error"]["details"]
        if shape == "Signal":
            errors = errors[0]["errors"]
        assert {"field": field_name(path), "message": f"must be at most {limit} characters"} in errors


@pytest.mark.parametrize("shape", sorted(ENDPOINTS))
def test_a_string_at_its_documented_limit_is_accepted_by_the_api(api, document, shape):
    for path, limit, plain in limited_strings(document, request_shapes(document)[shape]):
        if not plain and path[-1] != "email":
            continue  # a time zone cannot be padded to its limit
        response = api.post_json(ENDPOINTS[shape], body_with(shape, path, text_of(limit, plain)))
        assert response.status_code in (200, 201, 202), (path, limit, response.json())


def test_unknown_and_required_fields_agree_with_the_document(api, document):
    signal = resolve(document, request_shapes(document)["Signal"])
    assert signal["additionalProperties"] is False and signal["required"] == ["user", "name"]
    response = api.post_json("/api/v1/signals", {"user": {"id": "u"}, "color": "red"})
    errors = response.json()["error"]["details"][0]["errors"]
    assert {"field": "color", "message": "unknown field"} in errors
    assert {"field": "name", "message": "is required"} in errors


def test_the_token_lifetime_bounds_in_the_document_are_the_ones_enforced(api, document, settings):
    schema = resolve(document, document["paths"]["/api/v1/users/{user_ref}/token"]["post"]
                     ["requestBody"]["content"]["application/json"]["schema"])
    bounds = schema["properties"]["ttl_seconds"]
    assert bounds["maximum"] == settings.PULSE_USER_TOKEN_MAX_TTL.total_seconds()
    api.post_json("/api/v1/users", {"id": "t1"})
    for ttl, status in ((bounds["minimum"] - 1, 400), (bounds["minimum"], 201),
                        (bounds["maximum"], 201), (bounds["maximum"] + 1, 400)):
        assert api.post_json("/api/v1/users/t1/token", {"ttl_seconds": ttl}).status_code == status


def test_the_batch_limits_in_the_document_are_the_setting(document, settings):
    signals = document["paths"]["/api/v1/signals"]["post"]["requestBody"]["content"]["application/json"]
    assert signals["schema"]["oneOf"][1]["properties"]["signals"]["maxItems"] == settings.PULSE_MAX_BATCH
    batch = document["components"]["schemas"]["SegmentBatch"]["properties"]["batch"]
    assert batch["maxItems"] == settings.PULSE_MAX_BATCH


@pytest.mark.parametrize(("kind", "name", "schema_name"), [
    ("track", "event", "SegmentTrack"),
    ("track", "userId", "SegmentTrack"),
    ("group", "groupId", "SegmentGroup"),
])
def test_segment_fields_are_refused_one_past_their_documented_limit(document, now, kind, name, schema_name):
    limit = document["components"]["schemas"][schema_name]["properties"][name]["maxLength"]
    message = {"userId": "u1", "event": "Clicked", "groupId": "acme"}
    segment.parse_message({**message, name: "x" * limit}, kind, now=now)
    with pytest.raises(segment.Invalid, match=f"at most {limit} characters"):
        segment.parse_message({**message, name: "x" * (limit + 1)}, kind, now=now)


def test_the_columns_hold_what_the_schemas_allow():
    def width(model, name):
        return model._meta.get_field(name).max_length

    assert width(EndUser, "external_id") >= schemas.ID_MAX
    assert width(EndUser, "anonymous_id") >= schemas.ID_MAX
    assert width(EndUser, "email") >= schemas.EMAIL_MAX
    assert width(EndUser, "locale") >= schemas.LOCALE_MAX
    assert width(EndUser, "timezone") >= schemas.TIME_ZONE_MAX
    assert width(Tenant, "key") >= schemas.TENANT_KEY_MAX
    assert width(Tenant, "name") >= schemas.TENANT_NAME_MAX
    assert width(Membership, "role") >= schemas.ROLE_MAX
    assert width(Signal, "name") >= schemas.SIGNAL_NAME_MAX
    assert width(Signal, "feature") >= schemas.FEATURE_MAX
    assert width(Signal, "item") >= schemas.ITEM_MAX
    assert width(Signal, "interaction") >= schemas.INTERACTION_MAX
