"""A believable demo dataset, written through the real ingestion functions.

`seed_demo(users=N, days=D, seed=S)` creates a handful of B2B tenants and N
users (identifiers, properties, time zone, locale, memberships with roles)
through `people.identify` and `people.group`, so each gets its `$identify` /
`$group` signal like any real user. It then writes D days of history through
`ingest.ingest_signals(source="import")` in batches of 500, and drains the log
so `last_seen_at` and every handler's state are filled. Every signal it writes
is history (`realtime=False`, the `$identify` / `$group` ones included), so
`HandlerContext.may_act` is False for all of them: seeding fills derived state
and fires no reaction or message. Then it runs the
tuning jobs so the tenants with enough activity get their calibrations.

The activity follows people's habits: sessions mostly in working hours of
the user's own time zone, much less on weekends, power/regular/casual users,
some users lapsing (their activity stops days before the end), `app.opened`,
`issue.viewed` on items like `AI-1799` with a `view`/`query`/`mention`
interaction, `feature.used`, `search.performed`, `tip.served` followed by
`tip.feedback`, and the odd `report.exported`.

Everything is drawn from `random.Random` generators seeded by `seed`: the
same seed, N, D and `now` give the same data. A user's activity on a given
local day comes from its own generator (seed, user, day), and its signals
carry idempotency keys made of the same three, so running the same seed
again later only adds the days not written yet.
"""

import math
import random
import time
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

from django.db import transaction
from django.utils import timezone

from .identity import Identifiers
from .ingest import SignalInput, ingest_signals
from .loops.tuning import tune_engagement, tune_thresholds
from .models import EndUser, Signal
from .people import TenantLink, group, identify
from .pipeline import process_signals
from .registry import entries

BATCH_SIZE = 500
USERS_PER_TRANSACTION = 100

# key, display name, country, industry
COMPANIES = [
    ("northwind", "Northwind Traders", "US", "Wholesale"),
    ("brightline", "Brightline Software", "GB", "Software"),
    ("kestrel-robotics", "Kestrel Robotics", "DE", "Manufacturing"),
    ("meridian-health", "Meridian Health", "US", "Healthcare"),
    ("tidewater", "Tidewater Logistics", "NL", "Logistics"),
    ("fernhill-bank", "Fernhill Bank", "GB", "Financial services"),
    ("lumen-legal", "Lumen Legal", "FR", "Legal"),
    ("quarry-labs", "Quarry Labs", "US", "Biotech"),
    ("sable-media", "Sable Media", "BR", "Media"),
    ("cobalt-freight", "Cobalt Freight", "CA", "Logistics"),
    ("pinecrest", "Pinecrest Insurance", "AU", "Insurance"),
    ("orbital-retail", "Orbital Retail", "IN", "Retail"),
    ("redwood-energy", "Redwood Energy", "US", "Energy"),
    ("hanami-games", "Hanami Games", "JP", "Gaming"),
]
# country → (time zones, locale)
COUNTRIES = {
    "US": (["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"], "en-US"),
    "GB": (["Europe/London"], "en-GB"),
    "DE": (["Europe/Berlin"], "de-DE"),
    "NL": (["Europe/Amsterdam"], "nl-NL"),
    "FR": (["Europe/Paris"], "fr-FR"),
    "BR": (["America/Sao_Paulo"], "pt-BR"),
    "CA": (["America/Toronto", "America/Vancouver"], "en-CA"),
    "AU": (["Australia/Sydney", "Australia/Melbourne"], "en-AU"),
    "IN": (["Asia/Kolkata"], "en-IN"),
    "JP": (["Asia/Tokyo"], "ja-JP"),
}
FIRST_NAMES = [
    "Olivia", "Liam", "Amara", "Noah", "Sofia", "Mateo", "Priya", "Lucas", "Yuki", "Emma",
    "Aarav", "Chloe", "Jonas", "Fatima", "Ethan", "Ingrid", "Diego", "Mei", "Samuel", "Zara",
    "Hugo", "Aisha", "Felix", "Leila", "Oscar", "Nina", "Kenji", "Grace", "Tomas", "Elena",
    "Ravi", "Hannah", "Marco", "Isla", "Kwame", "Julia", "Arjun", "Freya", "Luis", "Maya",
]
LAST_NAMES = [
    "Smith", "Garcia", "Nguyen", "Müller", "Okafor", "Rossi", "Tanaka", "Patel", "Silva", "Dubois",
    "Johansson", "Kowalski", "Haddad", "Brown", "Fernandes", "Kim", "Novak", "O'Brien", "Mensah",
    "Schmidt", "Costa", "Ivanova", "Sato", "Martin", "Shah", "Andersen", "Lopez", "Walker", "Ali",
    "Moreau", "Bakker", "Chen", "Wright", "Santos", "Yilmaz", "Hughes", "Kaur", "Berg", "Reyes",
]
TITLES = [
    "Software Engineer", "Senior Engineer", "Engineering Manager", "Product Manager",
    "Product Designer", "QA Engineer", "Data Analyst", "Support Lead", "CTO", "Operations Manager",
]
ROLES = [("member", 60), ("admin", 15), ("viewer", 20), ("owner", 5)]
PLANS = [("starter", 25), ("team", 40), ("business", 25), ("enterprise", 10)]
SIGNUP_SOURCES = [
    ("organic", 30), ("invite", 30), ("google_ads", 12), ("referral", 10), ("partner", 8),
    ("product_hunt", 5), ("sales", 5),
]
PROJECTS = ["AI", "DMD", "OPS", "WEB", "MOB", "PAY", "SEC", "DATA", "CORE", "INFRA", "CRM", "DOCS"]
FEATURES = ["board", "roadmap", "search", "ai_assistant", "reports", "automations", "integrations"]
TIPS = [
    "tip-keyboard-shortcuts", "tip-saved-filters", "tip-ai-summaries", "tip-slack-digest",
    "tip-bulk-edit", "tip-roadmap-view", "tip-automation-rules", "tip-weekly-report",
]
PLATFORMS = [("web", 70), ("desktop", 15), ("ios", 10), ("android", 5)]
# Relative chance of starting a session at each local hour (0–23).
WEEKDAY_HOURS = [0, 0, 0, 0, 0, 0, 1, 3, 9, 14, 13, 11, 6, 9, 12, 11, 9, 6, 3, 2, 2, 1, 1, 0]
WEEKEND_HOURS = [0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 4, 3, 3, 3, 3, 3, 2, 2, 3, 3, 2, 1, 0]


@dataclass(frozen=True)
class Persona:
    weekday: float  # chance of being active on a working day
    weekend: float
    sessions: tuple[int, int]
    events: tuple[int, int]  # events per session after app.opened


PERSONAS = {
    "power": Persona(0.92, 0.35, (2, 5), (4, 10)),
    "regular": Persona(0.72, 0.12, (1, 3), (3, 7)),
    "casual": Persona(0.30, 0.05, (1, 2), (2, 5)),
}
PERSONA_WEIGHTS = [("power", 15), ("regular", 45), ("casual", 40)]
LAPSED_SHARE = 0.18


@dataclass
class TenantPlan:
    key: str
    name: str
    traits: dict
    projects: list[str]
    hot_issues: list[str]


@dataclass
class UserPlan:
    index: int
    external_id: str
    anonymous_id: str | None
    email: str
    timezone: str
    locale: str
    properties: dict
    memberships: list[tuple[str, str, datetime]]  # (tenant key, role, joined at)
    persona: str
    signed_up_at: datetime
    stops_at: datetime | None  # lapsed: no activity from here on
    opt_out: bool
    favourite_features: list[str]
    tip_affinity: float


@dataclass
class DemoResult:
    users: int = 0
    tenants: int = 0
    signals: int = 0  # activity signals written
    system_signals: int = 0  # $identify and $group
    duplicates: int = 0
    lapsed: int = 0
    drained: int = 0
    failed: int = 0
    stalled: bool = False  # the drain stopped on a persisting database error
    seconds: float = 0.0
    lapsed_external_ids: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"seed_demo: {self.users} users, {self.tenants} tenants, "
            f"{self.signals + self.system_signals} signals ({self.signals} activity, "
            f"{self.system_signals} system, {self.duplicates} already present), "
            f"{self.lapsed} lapsed; drained {self.drained} ({self.failed} failed"
            f"{'; stopped on database errors, the rest is pending' if self.stalled else ''}) "
            f"in {self.seconds:.1f}s"
        )


class _NoBar:
    def __init__(self, *args, **kwargs):
        pass

    def update(self, n=1):
        pass

    def set_postfix_str(self, text, refresh=True):
        pass

    def close(self):
        pass


ProgressFactory = Callable[..., object]


def seed_demo(
    *,
    users: int,
    days: int = 30,
    seed: int = 1,
    now: datetime | None = None,
    progress: ProgressFactory = _NoBar,
) -> DemoResult:
    """Create the dataset; `progress(total=, desc=, unit=)` makes a tqdm-like bar."""
    if users < 1:
        raise ValueError("users must be at least 1")
    if days < 0:
        raise ValueError("days must be 0 or more")
    started = time.monotonic()
    now = now or timezone.now()
    rng = random.Random(f"pulse-demo:{seed}")
    tenants = plan_tenants(rng, users, now)
    people = plan_users(seed, users, days, tenants, now)
    _avoid_taken_emails(people)
    by_key = {t.key: t for t in tenants}
    result = DemoResult(users=users, tenants=len(tenants))
    result.lapsed_external_ids = [p.external_id for p in people if p.stops_at is not None]
    result.lapsed = len(result.lapsed_external_ids)

    buffer: list[SignalInput] = []
    grouped: set[str] = set()
    bar = progress(total=users, desc="users", unit="user")
    try:
        for start in range(0, users, USERS_PER_TRANSACTION):
            chunk = people[start : start + USERS_PER_TRANSACTION]
            with transaction.atomic():
                for person in chunk:
                    result.system_signals += _identify(person, by_key, grouped, now)
            for person in chunk:
                for item in activity(person, by_key, days=days, now=now, seed=seed):
                    buffer.append(item)
                    if len(buffer) >= BATCH_SIZE:
                        _flush(buffer, now, result)
                bar.update(1)
                bar.set_postfix_str(f"signals={result.signals + len(buffer)}", refresh=False)
        _flush(buffer, now, result)
    finally:
        bar.close()
    # Higher layers add their demo data (campaigns: delivered messages and reads) as history.
    for seeder in entries("PULSE_DEMO_SEEDERS"):
        result.system_signals += (seeder(seed=seed, days=days, now=now) or {}).get("signals", 0)
    drain(now=now, result=result, progress=progress)
    for tune in (tune_thresholds, tune_engagement):  # calibrations learned from the demo activity
        tune(None, now)
    result.seconds = time.monotonic() - started
    return result


def drain(*, now: datetime, result: DemoResult, progress: ProgressFactory = _NoBar) -> None:
    """Run the real drain until nothing is pending, with a bar over the pending count."""
    pending = Signal.objects.pending().count()
    bar = progress(total=pending, desc="drain", unit="signal")
    try:
        while True:
            drained = process_signals(now=now, max_batches=10)
            result.drained += drained.processed
            result.failed += drained.failed
            bar.update(drained.processed + drained.failed)
            if drained.stalled:
                result.stalled = True
            if not drained.batches or drained.stalled:
                break
    finally:
        bar.close()


# --- plans ------------------------------------------------------------------


def plan_tenants(rng: random.Random, users: int, now: datetime) -> list[TenantPlan]:
    count = max(1, min(len(COMPANIES), round(math.sqrt(users) * 0.9)))
    plans = []
    for key, name, country, industry in COMPANIES[:count]:
        projects = rng.sample(PROJECTS, rng.randint(2, 4))
        if key == COMPANIES[0][0] and "AI" not in projects:
            projects[0] = "AI"
        hot = [f"{projects[0]}-1799"] if projects[0] == "AI" else []
        while len(hot) < 24:
            issue = f"{rng.choice(projects)}-{rng.randint(100, 2400)}"
            if issue not in hot:
                hot.append(issue)
        plans.append(
            TenantPlan(
                key=key,
                name=name,
                traits={
                    "plan": _weighted(rng, PLANS),
                    "industry": industry,
                    "country": country,
                    "domain": f"{key}.example",
                    "seats": rng.choice([10, 25, 50, 100, 250, 500]),
                    "customer_since": (now - timedelta(days=rng.randint(450, 1800))).date().isoformat(),
                },
                projects=projects,
                hot_issues=hot,
            )
        )
    return plans


def plan_users(
    seed: int, users: int, days: int, tenants: list[TenantPlan], now: datetime
) -> list[UserPlan]:
    rng = random.Random(f"pulse-demo:{seed}:people")
    sizes = [1 / (i + 1) ** 0.8 for i in range(len(tenants))]
    lapsed_count = max(1, round(users * LAPSED_SHARE)) if users >= 3 else 0
    lapsed = set(rng.sample(range(users), lapsed_count))
    emails: set[str] = set()
    plans = []
    for index in range(users):
        person = random.Random(f"pulse-demo:{seed}:user:{index}")
        tenant = rng.choices(tenants, weights=sizes)[0]
        country = tenant.traits["country"] if person.random() < 0.7 else person.choice(list(COUNTRIES))
        zones, locale = COUNTRIES[country]
        first, last = person.choice(FIRST_NAMES), person.choice(LAST_NAMES)
        email = _unique_email(first, last, tenant.traits["domain"], emails)
        role = _weighted(person, ROLES)
        is_lapsed = index in lapsed
        if is_lapsed or days == 0 or person.random() < 0.85:
            signed_up_at = now - timedelta(days=days + person.uniform(5, 400))
        else:
            signed_up_at = now - timedelta(days=person.uniform(0.5, days))
        stops_at = None
        if is_lapsed:
            lo = max(3, days // 6) if days >= 4 else 1
            hi = max(lo, (days * 2) // 3)
            stops_at = now - timedelta(days=person.randint(lo, hi), hours=person.uniform(0, 12))
        memberships = [(tenant.key, role, signed_up_at)]
        if len(tenants) > 1 and person.random() < 0.06:
            other = person.choice([t for t in tenants if t.key != tenant.key])
            memberships.append((other.key, "viewer", signed_up_at + timedelta(days=person.uniform(1, 30))))
        persona = "regular" if is_lapsed and person.random() < 0.5 else _weighted(person, PERSONA_WEIGHTS)
        plans.append(
            UserPlan(
                index=index,
                external_id=f"usr_{seed}_{index:05d}",
                anonymous_id=f"dev_{person.getrandbits(64):016x}" if person.random() < 0.5 else None,
                email=email,
                timezone=person.choice(zones),
                locale=locale,
                properties={
                    "first_name": first,
                    "last_name": last,
                    "title": person.choice(TITLES),
                    "role": role,
                    "plan": tenant.traits["plan"],
                    "signup_source": "invite" if role == "viewer" else _weighted(person, SIGNUP_SOURCES),
                    "country": country,
                    "signed_up_at": signed_up_at.isoformat(timespec="seconds"),
                },
                memberships=memberships,
                persona=persona,
                signed_up_at=signed_up_at,
                stops_at=stops_at,
                opt_out=person.random() < 0.03,
                favourite_features=person.sample(FEATURES, 3),
                tip_affinity=person.uniform(0.15, 0.8),
            )
        )
    return plans


def _unique_email(first: str, last: str, domain: str, taken: set[str]) -> str:
    local = f"{_ascii(first)}.{_ascii(last)}"
    email, n = f"{local}@{domain}", 1
    while email in taken:
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    return email


def _ascii(text: str) -> str:
    table = str.maketrans({"ü": "ue", "ö": "oe", "ä": "ae", "'": ""})
    return text.lower().translate(table)


def _avoid_taken_emails(people: list[UserPlan]) -> None:
    """Emails held by other live users (an earlier run with another seed) get a suffix."""
    ours = {p.external_id for p in people}
    taken: set[str] = set()
    for start in range(0, len(people), BATCH_SIZE):
        chunk = [p.email for p in people[start : start + BATCH_SIZE]]
        taken.update(
            email
            for email, external_id in EndUser.objects.filter(
                deleted_at__isnull=True, email__in=chunk
            ).values_list("email", "external_id")
            if external_id not in ours
        )
    if not taken:
        return
    used = {p.email for p in people} | taken
    for person in people:
        if person.email in taken:
            local, domain = person.email.split("@")
            n = 2
            while f"{local}{n}@{domain}" in used:
                n += 1
            person.email = f"{local}{n}@{domain}"
            used.add(person.email)


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


# --- writing ----------------------------------------------------------------


def _identify(person: UserPlan, tenants: dict[str, TenantPlan], grouped: set[str], now) -> int:
    """identify() the user with its memberships; group() once per tenant for its traits."""
    ids = Identifiers(
        external_id=person.external_id, anonymous_id=person.anonymous_id, email=person.email
    )
    identify(
        ids,
        now=now,
        realtime=False,
        actor="job:seed_demo",
        properties=person.properties,
        timezone=person.timezone,
        locale=person.locale,
        reengagement_opt_out=person.opt_out,
        tenants=tuple(
            TenantLink(key=key, name=tenants[key].name, joined_at=joined, role=role)
            for key, role, joined in person.memberships
        ),
    )
    written = 1
    for key, role, joined in person.memberships:
        if key not in grouped:
            grouped.add(key)
            tenant = tenants[key]
            group(
                Identifiers(external_id=person.external_id), key, now=now, actor="job:seed_demo",
                realtime=False,
                name=tenant.name, traits=tenant.traits, role=role, joined_at=joined,
            )
            written += 1
    return written


def _flush(buffer: list[SignalInput], now: datetime, result: DemoResult) -> None:
    if not buffer:
        return
    written = ingest_signals(buffer, source=Signal.Source.IMPORT, now=now)
    result.signals += written.accepted
    result.duplicates += written.duplicates
    buffer.clear()


# --- activity ---------------------------------------------------------------


def activity(
    person: UserPlan, tenants: dict[str, TenantPlan], *, days: int, now: datetime, seed: int
) -> Iterator[SignalInput]:
    """The user's signals over the last `days` days, oldest first."""
    if days <= 0:
        return
    zone = _zone(person.timezone)
    persona = PERSONAS[person.persona]
    window_start = max(now - timedelta(days=days), person.signed_up_at)
    window_end = min(now, person.stops_at) if person.stops_at else now
    today = now.astimezone(zone).date()
    for back in range(days, -1, -1):
        day = today - timedelta(days=back)
        # One generator per (user, local day): a day's events do not depend on `now` or
        # `days`, so a later run with the same seed only adds the days it has not seen.
        rng = random.Random(f"pulse-demo:{seed}:activity:{person.index}:{day.isoformat()}")
        weekend = day.weekday() >= 5
        if rng.random() >= (persona.weekend if weekend else persona.weekday):
            continue
        hours = WEEKEND_HOURS if weekend else WEEKDAY_HOURS
        starts = sorted(
            datetime.combine(day, dtime(h, rng.randrange(60), rng.randrange(60)), tzinfo=zone)
            for h in rng.choices(range(24), weights=hours, k=rng.randint(*persona.sessions))
        )
        counter = 0
        for local_start in starts:
            for item in _session(person, tenants, rng, local_start.astimezone(UTC), persona):
                counter += 1
                if not window_start <= item.occurred_at < window_end:
                    continue
                item.idempotency_key = f"demo:{seed}:{person.index}:{day.isoformat()}:{counter}"
                yield item


def _session(person, tenants, rng: random.Random, at: datetime, persona: Persona):
    ids = Identifiers(external_id=person.external_id)
    key = person.memberships[0][0]
    if len(person.memberships) > 1 and rng.random() < 0.25:
        key = person.memberships[1][0]
    tenant = tenants[key]
    platform = _weighted(rng, PLATFORMS)
    opened_ids = (
        Identifiers(anonymous_id=person.anonymous_id)
        if person.anonymous_id and platform in ("ios", "android")
        else ids
    )
    session_id = f"{rng.getrandbits(48):012x}"
    context = {"platform": platform, "timezone": person.timezone, "session_id": session_id}

    def signal(ids_, name, when, **fields):
        return SignalInput(
            ids=ids_, name=name, occurred_at=when, tenant_key=key, context=context, **fields
        )

    yield signal(
        opened_ids, "app.opened", at,
        properties={"platform": platform, "app_version": f"4.{rng.randint(10, 14)}.{rng.randint(0, 9)}"},
    )
    for _ in range(rng.randint(*persona.events)):
        at += timedelta(seconds=rng.randint(20, 420))
        kind = rng.choices(
            ["issue", "feature", "tip", "search", "report"], weights=[45, 20, 18, 13, 4]
        )[0]
        if kind == "issue":
            interaction = rng.choices(["view", "query", "mention"], weights=[65, 25, 10])[0]
            issue = _issue(rng, tenant)
            via = "assistant" if interaction == "query" else rng.choice(
                ["board", "search", "notification", "link"]
            )
            yield signal(
                ids, "issue.viewed", at, item=issue, interaction=interaction, feature="issues",
                properties={"project": issue.split("-")[0], "via": via},
            )
        elif kind == "feature":
            feature = rng.choice(person.favourite_features * 3 + FEATURES)
            yield signal(ids, "feature.used", at, feature=feature, properties={"surface": platform})
        elif kind == "tip":
            tip = rng.choice(TIPS)
            yield signal(
                ids, "tip.served", at, feature="tips", item=tip,
                properties={
                    "tip_id": tip,
                    "placement": rng.choice(["sidebar", "inline", "modal"]),
                    "variant": rng.choice(["a", "b"]),
                },
            )
            if rng.random() < 0.65:
                roll = rng.random()
                action = (
                    "completed" if roll < person.tip_affinity
                    else "dismissed" if roll < person.tip_affinity + (1 - person.tip_affinity) * 0.7
                    else "snoozed"
                )
                dwell_ms = rng.randint(800, 25_000) if action == "completed" else rng.randint(200, 4000)
                at += timedelta(milliseconds=dwell_ms)
                yield signal(
                    ids, "tip.feedback", at, feature="tips", item=tip,
                    properties={
                        "tip_id": tip, "action": action, "dwell_ms": dwell_ms,
                        "helpful": action == "completed",
                    },
                )
        elif kind == "search":
            yield signal(
                ids, "search.performed", at, feature="search",
                properties={"query_length": rng.randint(3, 40), "results": rng.randint(0, 60)},
            )
        else:
            yield signal(
                ids, "report.exported", at, feature="reports",
                properties={"format": rng.choice(["csv", "pdf", "xlsx"]), "rows": rng.randint(10, 5000)},
            )


def _issue(rng: random.Random, tenant: TenantPlan) -> str:
    if rng.random() < 0.7:
        weights = [1 / (i + 1) for i in range(len(tenant.hot_issues))]
        return rng.choices(tenant.hot_issues, weights=weights)[0]
    return f"{rng.choice(tenant.projects)}-{rng.randint(1, 2400)}"


_zones: dict[str, zoneinfo.ZoneInfo] = {}


def _zone(name: str) -> zoneinfo.ZoneInfo:
    if name not in _zones:
        _zones[name] = zoneinfo.ZoneInfo(name)
    return _zones[name]
