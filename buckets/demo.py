"""Demo buckets for `seed_demo` (PULSE_DEMO_SEEDERS): telling segments with reactions.

Defined before the demo drain runs, so real time evaluates the demo's signals
into memberships. The demo's history is history: its transitions fire nothing
(only a signal live within PULSE_REALTIME_HORIZON would). Defining is keyed by
slug, so a second run changes nothing.
"""

from datetime import datetime

from .definitions import apply_definition, clean_definition
from .models import Bucket

ACTOR = "demo"
BUCKETS = [
    {"slug": "power-users", "name": "Power users",
     "description": "Opened the app at least 10 times in the last 7 days.",
     "criteria": {"event": "app.opened", "check": "count", "op": "gte", "value": 10, "within": "7d"},
     "entry_limit": {"kind": "once_per_period", "period": "30d"},
     "reactions": [{"id": "flag", "on": "enter", "action": {"signal": "power_user.reached"}}]},
    {"slug": "new-this-week", "name": "New this week",
     "description": "Identified for the first time in the last 7 days.",
     "criteria": {"event": "$identify", "check": "exists", "within": "7d",
                  "where": [{"property": "created", "op": "eq", "value": True}]},
     "reactions": [{"id": "welcome", "on": "enter", "action": {"message": "engagement.help"}}]},
    {"slug": "pro-in-northwind", "name": "Pro in Northwind",
     "description": "Business and enterprise plan users who belong to the Northwind tenant.",
     "criteria": {"all": [{"property": "plan", "op": "in", "value": ["business", "enterprise"]},
                          {"tenant": "northwind"}]},
     "entry_limit": {"kind": "once"},
     "reactions": [{"id": "left", "on": "leave", "reasons": ["criteria"],
                    "action": {"signal": "pro_in_northwind.left"}}]},
    {"slug": "vip", "name": "VIP list", "kind": "manual", "description": "Hand-picked accounts.",
     "reactions": [{"id": "vip-welcome", "on": "enter", "action": {"message": "engagement.help"}}]},
]


def seed_buckets(*, seed: int, days: int, now: datetime) -> dict:
    """Define the demo buckets that are not there yet; reactions naming a missing template
    are left out (a deployment without the demo templates still gets the buckets)."""
    from campaigns.outbox import live_templates

    templates = set(live_templates({r["action"].get("message") for b in BUCKETS for r in b["reactions"]}
                                   - {None}))
    created = 0
    for definition in BUCKETS:
        if Bucket.objects.filter(slug=definition["slug"]).exists():
            continue
        reactions = [r for r in definition["reactions"]
                     if "message" not in r["action"] or r["action"]["message"] in templates]
        cleaned = clean_definition({**definition, "reactions": reactions})
        apply_definition(Bucket(), cleaned, actor=ACTOR, now=now)
        created += 1
    return {"buckets": created, "signals": 0}
