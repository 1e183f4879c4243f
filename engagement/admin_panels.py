"""Panels on the user's admin page, read from the ordered registry PULSE_USER_ADMIN_PANELS.

The contract, for every app that adds a panel (lifecycle, scores, buckets …):

    def my_panel(user: EndUser) -> dict | None:
        return {
            "title": "Lifecycle",                           # the panel's heading
            "template": "admin/lifecycle/panels/state.html",  # rendered for this panel
            "context": {"rows": [...]},                     # that template's context
        }

- `user` is the `EndUser` whose page is shown (live, merged or erased).
- Return None to show nothing for this user.
- The template is rendered with the panel's `context` plus `user`, `title`
  and the request (so `{% url %}`, `{% csrf_token %}` and `perms` work); it
  renders the panel's body only, the admin page draws the box and heading.
- A panel does a small, bounded number of queries whatever the user's
  history (use `select_related`, slices and indexes); it reads, never writes.
- A panel that raises does not break the page: it is shown as failed and the
  error is logged (`event=admin_panel_failed`).

Panels are listed in settings in display order, like MIDDLEWARE:

    PULSE_USER_ADMIN_PANELS = [
        "engagement.admin_panels.recent_signals",
        "engagement.lifecycle_admin.lifecycle_panel",   # a later app's panel
    ]
"""

import logging
from dataclasses import dataclass

from django.db import transaction
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .models import EndUser, Signal
from .registry import entries

log = logging.getLogger("pulse.admin")

RECENT_SIGNALS = 50


def recent_signals(user: EndUser) -> dict:
    """The latest 50 signals of the user, newest first: one query (signal + tenant)."""
    signals = list(
        Signal.objects.filter(user=user)
        .with_state()
        .select_related("tenant")
        .order_by("-occurred_at", "-pk")[:RECENT_SIGNALS]
    )
    return {
        "title": f"Recent signals (latest {RECENT_SIGNALS})",
        "template": "admin/engagement/enduser/panels/recent_signals.html",
        "context": {"signals": signals, "limit": RECENT_SIGNALS},
    }


@dataclass(frozen=True)
class RenderedPanel:
    title: str
    html: SafeString
    failed: bool = False


def render_panels(user: EndUser, request=None) -> list[RenderedPanel]:
    """Every registered panel for `user`, rendered in settings order."""
    rendered = []
    for panel in entries("PULSE_USER_ADMIN_PANELS"):
        name = f"{panel.__module__}.{getattr(panel, '__qualname__', repr(panel))}"
        try:
            # A savepoint: a failing query must not poison the page's transaction.
            with transaction.atomic():
                spec = panel(user)
                if spec is None:
                    continue
                context = {**spec.get("context", {}), "user": user, "title": spec["title"]}
                html = render_to_string(spec["template"], context, request=request)
            rendered.append(RenderedPanel(title=spec["title"], html=SafeString(html)))
        except Exception as exc:  # noqa: BLE001 - one broken panel must not hide the others
            log.exception(
                "event=admin_panel_failed panel=%s user_id=%s error_type=%s",
                name, user.pk, type(exc).__name__,
            )
            rendered.append(
                RenderedPanel(
                    title=name,
                    html=format_html(
                        '<p class="errornote">This panel failed to load ({}). The error is logged.</p>',
                        type(exc).__name__,
                    ),
                    failed=True,
                )
            )
    return rendered
