"""Shared helpers of the membership tests: buckets, templates, signals through the real drain."""

from datetime import timedelta

from django.utils import timezone

from buckets.candidates import forget_index
from buckets.definitions import create_bucket
from buckets.models import BucketMembership, BucketTransition
from campaigns.models import Message
from campaigns.templates_as_code import save_template
from engagement.models import Signal
from engagement.pipeline import process_signals
from tests.factories import SignalFactory

OPENED = {"event": "app_opened", "check": "exists", "within": "7d"}
PRO = {"property": "plan", "op": "eq", "value": "pro"}


def define(slug="openers", criteria=None, *, now=None, **fields):
    data = {"slug": slug, "name": slug.title(), **fields}
    if fields.get("kind") != "manual":
        data["criteria"] = criteria or OPENED
    return create_bucket(data, actor="test", now=now or timezone.now())


def in_app_template(key="bucket.welcome"):
    doc = {"channel": "in_app", "category": "lifecycle", "default_locale": "en",
           "variants": {"en": {"subject": "Hi", "text": "You are in {{ context.bucket }}"}}}
    return save_template(key, doc, actor="test", now=timezone.now()).template


def webhook_template(key="bucket.hook", category="system"):
    doc = {"channel": "webhook", "category": category, "default_locale": "en",
           "url": "https://hooks.example/bucket",
           "variants": {"en": {"subject": "{{ context.bucket }}", "text": "{{ context.transition }}"}}}
    return save_template(key, doc, actor="test", now=timezone.now()).template


WELCOME = {"id": "welcome", "on": "enter", "action": {"message": "bucket.welcome"}}
GOODBYE = {"id": "goodbye", "on": "leave", "action": {"signal": "openers.lost"}}


def signal(user, name="app_opened", *, at=None, **fields):
    return SignalFactory(user=user, name=name, occurred_at=at or timezone.now() - timedelta(seconds=5),
                         **fields)


def drain(now=None):
    forget_index()  # a worker process starts cold; the version check is tested on its own
    return process_signals(now=now or timezone.now())


def stays(bucket, user):
    return list(BucketMembership.objects.filter(bucket=bucket, user=user).order_by("entry_count")
                .values_list("status", "entry_count"))


def transitions(bucket, user=None):
    rows = BucketTransition.objects.filter(bucket=bucket).order_by("pk")
    if user is not None:
        rows = rows.filter(user=user)
    return list(rows.values_list("kind", "entry_count"))


def bucket_messages():
    return list(Message.objects.filter(source="bucket").order_by("pk"))


def bucket_signals(name=None):
    rows = Signal.objects.filter(name__startswith="$bucket.") if name is None else Signal.objects.filter(
        name=name)
    return list(rows.order_by("pk"))
