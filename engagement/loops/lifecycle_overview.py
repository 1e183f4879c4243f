"""The lifecycle overview for staff: users per state, transitions per day as a stacked chart.

The chart is computed here as plain geometry (bars of an SVG drawn by the
template): server-rendered, no script, nothing fetched at run time. Two
grouped queries whatever the number of users.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate

from ..models import LifecycleState, LifecycleTransition

DAYS = 30
STATES = list(LifecycleState.State.values)
COLORS = {"active": "#2e7d32", "goodbye_sent": "#f9a825", "help_flow": "#1565c0",
          "remind_later": "#6a1b9a", "dormant": "#757575"}
WIDTH, HEIGHT, BAR, GAP, TOP = 620, 200, 16, 4, 10


@dataclass(frozen=True)
class Rect:
    x: int
    y: float
    height: float
    color: str
    title: str


def users_per_state() -> list[tuple[str, int]]:
    counts = dict(LifecycleState.objects.values_list("state").annotate(n=Count("pk")).order_by())
    return [(state, counts.get(state, 0)) for state in STATES]


def transitions_per_day(now: datetime, days: int = DAYS) -> tuple[list[date], dict]:
    """The last `days` UTC days (today included) and {(day, to_state): count}."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    rows = (LifecycleTransition.objects.filter(at__gte=start)
            .annotate(day=TruncDate("at", tzinfo=UTC)).values_list("day", "to_state")
            .annotate(n=Count("pk")).order_by())
    return [first + timedelta(days=i) for i in range(days)], {(d, s): n for d, s, n in rows}


def chart(now: datetime, days: int = DAYS) -> dict:
    """The SVG's bars (stacked by the state entered), its day labels and its scale."""
    day_list, counts = transitions_per_day(now, days)
    totals = [sum(counts.get((d, s), 0) for s in STATES) for d in day_list]
    peak = max(totals) or 1
    scale = (HEIGHT - TOP) / peak
    rects, labels = [], []
    for i, day in enumerate(day_list):
        x, bottom = i * (BAR + GAP), float(HEIGHT)
        for state in STATES:
            n = counts.get((day, state), 0)
            if n:
                height = n * scale
                bottom -= height
                rects.append(Rect(x, round(bottom, 2), round(height, 2), COLORS[state],
                                  f"{day.isoformat()}: {n} → {state}"))
        if i % 5 == 0 or i == days - 1:
            labels.append((x, day.strftime("%m-%d")))
    return {"rects": rects, "labels": labels, "peak": peak, "total": sum(totals),
            "width": days * (BAR + GAP), "height": HEIGHT, "legend": list(COLORS.items()),
            "first": day_list[0], "last": day_list[-1]}
