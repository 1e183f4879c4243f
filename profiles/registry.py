"""The feature registry: the one source of truth for what a profile holds.

A feature is declared once, next to its computation (profiles/features/):

    @feature_group(
        Feature("tip_volume_30d", NUMERIC, "…", invalidated_by=["tip.served"], without_data="0"),
        Feature("completion_rate_30d", NUMERIC, "…", invalidated_by=["tip.feedback"]),
    )
    def tips(user_ids, now) -> {"tip_volume_30d": {user_id: value}, …}

A group's compute answers for many users at once with a fixed number of
queries; a group of one feature may return `{user_id: value}` directly
(`@single_feature`). A user missing from an answer gets null: a computed null is
stored, distinct from never computed. The modules holding declarations are
listed in PULSE_PROFILE_FEATURE_MODULES and imported at start-up; the system
check (profiles/checks.py) validates every declaration there.

A group may also declare its computation as SQL (`@sql_for(compute)`), so a
rebuild of many users runs it set-based, as one INSERT … SELECT … GROUP BY per
range of users, without bringing any answer to Python (profiles/set_refresh.py).
The SQL must answer exactly what compute answers, nulls included; a test holds
the two forms together for every shipped feature on both databases.

Groups that read the same rows may share one pass over them: a shared relation
(`@shared_sql(name)`, a SELECT with at most one row per user) is computed once per
range of users and read by every group that names it (`@sql_for(compute,
reads=[relation])`), as a table of that name (a CTE when answers are read back).
"""

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_module

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DTYPES = (NUMERIC, CATEGORICAL)
DEFAULT_TTL = timedelta(hours=1)
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str
    description: str
    invalidated_by: tuple[str, ...] = ()
    ttl: timedelta = DEFAULT_TTL
    # What the feature answers for a user without data (documentation, shown in the admin).
    without_data: str = "null"
    group: "FeatureGroup | None" = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.invalidated_by, str):  # a bare string is reported by the check
            object.__setattr__(self, "invalidated_by", tuple(self.invalidated_by))

    @property
    def ttl_seconds(self) -> int:
        return int(self.ttl.total_seconds())


@dataclass(frozen=True)
class FeatureGroup:
    name: str
    compute: Callable
    features: tuple[Feature, ...]
    # True when compute answers {user_id: value} for its only feature.
    single: bool = False
    module: str = ""  # where it was declared
    # Optional: `sql(users, now) -> (sql, params)`, the same computation as one SELECT of
    # (user_id, name, value, value_text) with one row per user of `profile_users` and per
    # feature of the group (profiles/set_sql.py has the pieces).
    sql: Callable | None = None
    # The shared relations the SQL reads (by their names), each computed once per range.
    reads: tuple["SharedRelation", ...] = ()

    def run(self, user_ids: Sequence[int], now) -> dict[str, dict[int, object]]:
        """Every feature of the group for `user_ids`: {feature: {user_id: value}}."""
        answer = self.compute(list(user_ids), now)
        if self.single:
            answer = {self.features[0].name: answer}
        return {f.name: dict(answer.get(f.name) or {}) for f in self.features}


# Every declaration, in the order the modules declared them. Duplicates are kept so the
# system check can report them instead of one silently replacing the other.
DECLARED: list[FeatureGroup] = []


def feature_group(*features: Feature, name: str | None = None, single: bool = False) -> Callable:
    """Declare features computed together by the decorated `compute(user_ids, now)`."""

    def declare(compute: Callable) -> Callable:
        group = FeatureGroup(name or f"{compute.__module__}.{compute.__qualname__}", compute, (), single,
                             compute.__module__)
        bound = tuple(_bind(f, group) for f in features)
        object.__setattr__(group, "features", bound)
        DECLARED.append(group)
        compute.feature_group = group
        return compute

    return declare


def single_feature(name: str, dtype: str, description: str, **options) -> Callable:
    """Declare one feature whose compute returns {user_id: value}."""
    return feature_group(Feature(name, dtype, description, **options), name=name, single=True)


@dataclass(frozen=True)
class SharedRelation:
    """Rows several groups' SQL forms read: `sql(users, now) -> (sql, params)`, a SELECT with
    at most one row per user of `users` (an EndUser id queryset), read under `name`."""

    name: str
    sql: Callable


def shared_sql(name: str) -> Callable:
    """Declare the decorated `sql(users, now)` as a shared relation named `name` (an identifier)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a relation name: {name!r}")

    def declare(sql: Callable) -> SharedRelation:
        return SharedRelation(name, sql)

    return declare


def sql_for(compute: Callable, *, reads: Sequence[SharedRelation] = ()) -> Callable:
    """Declare the decorated `sql(users, now)` as the set-based form of the group `compute` declares,
    reading the shared relations `reads`."""

    def attach(sql: Callable) -> Callable:
        object.__setattr__(compute.feature_group, "sql", sql)
        object.__setattr__(compute.feature_group, "reads", tuple(reads))
        return sql

    return attach


def _bind(feature: Feature, group: FeatureGroup) -> Feature:
    object.__setattr__(feature, "group", group)
    return feature


@cache
def _load_modules(modules: tuple[str, ...]) -> None:
    for module in modules:
        import_module(module)


def declared(modules: Sequence[str]) -> tuple[list[FeatureGroup], list[tuple[str, Exception]]]:
    """The groups declared by these modules (imported as needed) and the modules that failed."""
    failures = []
    for module in modules:
        try:
            import_module(module)
        except Exception as exc:  # noqa: BLE001 - reported by the system check
            failures.append((module, exc))
    wanted = set(modules)
    return [g for g in DECLARED if g.module in wanted], failures


def groups() -> list[FeatureGroup]:
    """The groups declared by the modules the setting lists (a module imported for another
    reason, a test's say, adds nothing to the registry)."""
    modules = tuple(getattr(settings, "PULSE_PROFILE_FEATURE_MODULES", ()))
    _load_modules(modules)
    return [group for group in DECLARED if group.module in modules]


def features() -> dict[str, Feature]:
    """Every feature by name, in declaration order (the first of a duplicated name)."""
    found: dict[str, Feature] = {}
    for group in groups():
        for item in group.features:
            found.setdefault(item.name, item)
    return found


def get(name: str) -> Feature:
    try:
        return features()[name]
    except KeyError:
        raise UnknownFeature(name) from None


def select(names: Iterable[str] | None) -> list[Feature]:
    """The named features (all when None), in registry order; unknown names raise."""
    everything = features()
    if names is None:
        return list(everything.values())
    wanted = set(names)
    unknown = sorted(wanted - set(everything))
    if unknown:
        raise UnknownFeature(", ".join(unknown))
    return [f for n, f in everything.items() if n in wanted]


class UnknownFeature(LookupError):
    pass
