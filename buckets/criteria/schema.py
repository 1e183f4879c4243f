"""The JSON Schema of bucket criteria: the structure, checked with `jsonschema`.

A condition is an object naming exactly one kind (`event`, `property`,
`profile`, `lifecycle`, `tenant`, `in_bucket`, `all`, `any`, `not`). The
schema applies each kind's definition through `if`/`then`, so an error is
reported at the condition it is in rather than as "not valid under any of
the given schemas" at the root. What JSON Schema says badly or cannot say
(a missing or doubled kind, empty composites, operator/value pairings,
positivity, references) is checked in `validation.py`.
"""

KINDS = ("event", "property", "profile", "lifecycle", "tenant", "in_bucket", "all", "any", "not")
COMPOSITES = ("all", "any", "not")
OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "contains", "exists", "not_exists")
COUNT_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte")
MAX_IN_VALUES = 1000

NAME = {"type": "string", "minLength": 1, "maxLength": 200}
SCALAR = {"type": ["string", "number", "boolean"]}
# Dotted object keys: no empty segment, no quote, bracket or backslash, and no all-digit
# segment (PostgreSQL's #> would read it as an array index where SQLite reads a key).
PATH = {
    "type": "string", "minLength": 1, "maxLength": 200,
    "pattern": r"^(?![0-9]+(\.|$))[^.\"\\\[\]]+(\.(?![0-9]+(\.|$))[^.\"\\\[\]]+)*$",
}
DURATION = {"type": "string", "pattern": r"^[1-9][0-9]{0,6}[smhd]$"}
VALUE = {"anyOf": [SCALAR, {"type": "array", "maxItems": MAX_IN_VALUES, "items": SCALAR}]}

PROPERTY_CONDITION = {
    "type": "object",
    "required": ["property", "op"],
    "additionalProperties": False,
    "properties": {"property": PATH, "op": {"enum": list(OPERATORS)}, "value": VALUE},
}

DEFINITIONS = {
    "event": {
        "type": "object",
        "required": ["event", "check"],
        "additionalProperties": False,
        "properties": {
            "event": NAME,
            "check": {"enum": ["exists", "not_exists", "count"]},
            "op": {"enum": list(COUNT_OPERATORS)},
            "value": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
            "within": DURATION,
            "where": {"type": "array", "maxItems": 50, "items": PROPERTY_CONDITION},
        },
    },
    "property": PROPERTY_CONDITION,
    "profile": {
        "type": "object",
        "required": ["profile", "op"],
        "additionalProperties": False,
        "properties": {"profile": NAME, "op": {"enum": list(OPERATORS)}, "value": VALUE},
    },
    "lifecycle": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"lifecycle": {"anyOf": [NAME, {"type": "array", "maxItems": 50, "items": NAME}]}},
    },
    "tenant": {"type": "object", "additionalProperties": False, "properties": {"tenant": NAME}},
    "in_bucket": {"type": "object", "additionalProperties": False, "properties": {"in_bucket": NAME}},
    "all": {"type": "object", "additionalProperties": False,
            "properties": {"all": {"type": "array", "items": {"$ref": "#/$defs/condition"}}}},
    "any": {"type": "object", "additionalProperties": False,
            "properties": {"any": {"type": "array", "items": {"$ref": "#/$defs/condition"}}}},
    "not": {"type": "object", "additionalProperties": False,
            "properties": {"not": {"$ref": "#/$defs/condition"}}},
}

CONDITION = {
    "type": "object",
    "allOf": [{"if": {"required": [kind]}, "then": {"$ref": f"#/$defs/{kind}"}} for kind in KINDS],
}

SCHEMA = {
    "$ref": "#/$defs/condition",
    "$defs": {"condition": CONDITION, **DEFINITIONS},
}
