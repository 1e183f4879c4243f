"""Positivity: a dynamic bucket must be matchable only by users with something to show for it.

Real time re-evaluates the users a signal touched; a user who did nothing
cannot be touched, so a bucket that such a user could match ("never opened
the app") would be missed. A leaf is negative when it is `not_exists`, `neq`
or under a `not`; a `count` is positive only with `gte`, `gt` or `eq` and a
value of at least 1; an `all` is positive when one of its children is, an
`any` only when every child is.
"""

POSITIVE_COUNT_OPS = ("gte", "gt", "eq")


def is_positive(node) -> bool:
    if not isinstance(node, dict):
        return False
    if "all" in node:
        children = node["all"] if isinstance(node["all"], list) else []
        return any(is_positive(child) for child in children)
    if "any" in node:
        children = node["any"] if isinstance(node["any"], list) else []
        return bool(children) and all(is_positive(child) for child in children)
    if "not" in node:
        return False
    if "event" in node:
        return _event_is_positive(node)
    if "property" in node or "profile" in node:
        return node.get("op") not in ("neq", "not_exists")
    return any(kind in node for kind in ("lifecycle", "tenant", "in_bucket"))


def _event_is_positive(node: dict) -> bool:
    check = node.get("check")
    if check == "exists":
        return True
    if check == "count":
        value = node.get("value")
        return (node.get("op") in POSITIVE_COUNT_OPS and isinstance(value, int)
                and not isinstance(value, bool) and value >= 1)
    return False
