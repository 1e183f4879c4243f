"""A small reference evaluator of criteria in plain Python, for the property-based tests only.

It states the language's meaning as directly as possible, one user at a time,
so that the compiled SQL can be checked against it on both databases.
"""

from .population import NOW

MISSING = object()
ORDER = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
         "lte": lambda a, b: a <= b}
COUNTS = {"eq": lambda n, v: n == v, "neq": lambda n, v: n != v, **ORDER}
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def lookup(properties, dotted: str):
    value = properties
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return MISSING if value is None else value


def kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def equal(stored, value) -> bool:
    return stored is not MISSING and kind(stored) == kind(value) and stored == value


def holds(stored, op: str, value) -> bool:
    if op == "exists":
        return stored is not MISSING
    if op == "not_exists":
        return stored is MISSING
    if op == "eq":
        return equal(stored, value)
    if op == "neq":
        return not equal(stored, value)
    if op == "in":
        return any(equal(stored, item) for item in value)
    if op in ORDER:
        return (stored is not MISSING and kind(stored) == kind(value) in ("number", "str")
                and ORDER[op](stored, value))
    if op == "contains":
        if isinstance(stored, str) and isinstance(value, str):
            return value in stored
        return isinstance(stored, list) and any(equal(item, value) for item in stored)
    raise ValueError(op)


def seconds(within: str) -> int:
    return int(within[:-1]) * UNITS[within[-1]]


def matches(node: dict, user: dict) -> bool:
    """`user` is {"properties", "signals": [(name, occurred_at, properties)], "tenants"}."""
    if "all" in node:
        return all(matches(child, user) for child in node["all"])
    if "any" in node:
        return any(matches(child, user) for child in node["any"])
    if "not" in node:
        return not matches(node["not"], user)
    if "property" in node:
        return holds(lookup(user["properties"], node["property"]), node["op"], node.get("value"))
    if "tenant" in node:
        return node["tenant"] in user["tenants"]
    if "event" in node:
        found = [s for s in user["signals"] if s[0] == node["event"] and s[1] <= NOW
                 and ("within" not in node or (NOW - s[1]).total_seconds() <= seconds(node["within"]))
                 and all(holds(lookup(s[2], w["property"]), w["op"], w.get("value"))
                         for w in node.get("where", ()))]
        if node["check"] == "exists":
            return bool(found)
        if node["check"] == "not_exists":
            return not found
        return COUNTS[node["op"]](len(found), node["value"])
    raise ValueError(node)
