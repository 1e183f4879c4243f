"""Shared helpers for the messages tests: templates through templates-as-code, queueing, delivery."""

from datetime import timedelta

from django.utils import timezone

from campaigns.delivery import deliver_messages
from campaigns.outbox import queue_message
from campaigns.templates_as_code import save_template

IN_APP = {
    "channel": "in_app", "category": "marketing", "feature": "tips", "default_locale": "en",
    "variants": {
        "en": {"subject": "Hi {{ user.properties.name }}", "text": "Plan: {{ context.plan }}",
               "html": "<b>{{ context.plan }}</b>"},
        "de": {"subject": "Hallo {{ user.properties.name }}", "text": "Tarif: {{ context.plan }}"},
    },
    "actions": [{"id": "ok", "labels": {"en": "OK", "de": "Gut"}}],
}


def make_template(key="tips.weekly", now=None, **changes):
    return save_template(key, {**IN_APP, **changes}, actor="test", now=now or timezone.now())


def queue(user, key="tips.weekly", now=None, **row):
    """Queue a message; by default a minute ago, so it is due for a test's `now`."""
    return queue_message(user_id=user.pk, template=key, now=now or timezone.now() - timedelta(minutes=1),
                         **row)


def deliver(now=None, **kwargs):
    return deliver_messages(now=now or timezone.now(), **kwargs)
