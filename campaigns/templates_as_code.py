"""Templates as code: validating a template document, creating or replacing a template,
its versions and its webhook secret.

Every change makes a new `TemplateVersion` recorded with its actor; an
unchanged document makes none. Messages keep the version they were rendered
from, so a template in use is archived, never deleted.
"""

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.db import transaction

from engagement.validation import unstorable_text_path

from . import rendering, secrets
from .models import Category, Channel, MessageTemplate, TemplateVersion

KEY_RE = re.compile(r"[a-z0-9_]+(?:[.-][a-z0-9_]+)*")
LOCALE_RE = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*")
ACTION_ID_RE = re.compile(r"[a-z0-9_]{1,64}")
MAX_TEXT = 100_000
FIELDS = {"channel", "category", "feature", "default_locale", "variants", "actions", "url"}


class InvalidTemplate(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("invalid template")
        self.errors = errors


@dataclass
class Saved:
    template: MessageTemplate
    version: TemplateVersion
    created: bool
    changed: bool
    secret: str | None = None  # a new webhook template's secret, shown once


def key_error(key: str) -> str | None:
    if not isinstance(key, str) or not 1 <= len(key) <= 200 or not KEY_RE.fullmatch(key):
        return "a template key is dotted lower-case words: letters, digits, _ and -, at most 200"
    return None


def validate(doc: dict) -> dict:
    """A clean template document, or InvalidTemplate with the path of every error."""
    errors: list[dict] = []

    def err(path, message):
        errors.append({"field": path, "message": message})

    bad_text = unstorable_text_path(doc, "")
    if bad_text:
        raise InvalidTemplate([{"field": bad_text or "(root)",
                                "message": "must be valid UTF-8 text without NUL characters"}])
    for name in sorted(set(doc) - FIELDS):
        err(name, "is not a template field")
    channel, category = doc.get("channel"), doc.get("category")
    if channel not in Channel.values:
        err("channel", f"must be one of {', '.join(Channel.values)}")
    if category not in Category.values:
        err("category", f"must be one of {', '.join(Category.values)}")
    feature = doc.get("feature")
    if feature is not None and (not isinstance(feature, str) or not 1 <= len(feature) <= 200):
        err("feature", "must be a string of 1 to 200 characters")
    default = doc.get("default_locale")
    if not isinstance(default, str) or not LOCALE_RE.fullmatch(default):
        err("default_locale", "must be a locale such as en or de-AT")
    variants = _variants(doc.get("variants"), err)
    if isinstance(default, str) and variants is not None and default not in variants:
        err("variants", f"has no variant for the default locale {default!r}")
    actions = _actions(doc.get("actions", []), err)
    url = doc.get("url")
    if channel == Channel.WEBHOOK:
        if not isinstance(url, str) or not _http_url(url):
            err("url", "a webhook template needs an absolute http(s) URL")
    elif url is not None:
        err("url", "only webhook templates have a URL")
    if errors:
        raise InvalidTemplate(errors)
    return {
        "channel": channel, "category": category, "feature": feature, "default_locale": default,
        "variants": variants, "actions": actions, "url": url or "",
    }


def _variants(value, err) -> dict | None:
    if not isinstance(value, dict) or not value:
        err("variants", "must be an object of locale → {subject, text, html?}")
        return None
    clean = {}
    for locale, variant in value.items():
        path = f"variants.{locale}"
        if not LOCALE_RE.fullmatch(locale):
            err(path, "is not a locale such as en or de-AT")
            continue
        if not isinstance(variant, dict):
            err(path, "must be an object {subject, text, html?}")
            continue
        for extra in sorted(set(variant) - {"subject", "text", "html"}):
            err(f"{path}.{extra}", "is not a variant field")
        for part in rendering.PARTS:
            source = variant.get(part)
            if source is None and part != "html":
                err(f"{path}.{part}", "is required")
            elif source is not None and (not isinstance(source, str) or len(source) > MAX_TEXT):
                err(f"{path}.{part}", f"must be a string of at most {MAX_TEXT} characters")
            elif source is not None:
                problem = rendering.compile_error(source, html=part == "html")
                if problem:
                    err(f"{path}.{part}", f"template syntax error: {problem}")
        clean[locale] = {k: v for k, v in variant.items() if k in rendering.PARTS and v is not None}
    return clean


def _actions(value, err) -> list:
    if not isinstance(value, list):
        err("actions", "must be a list of {id, labels}")
        return []
    seen, clean = set(), []
    for index, action in enumerate(value):
        path = f"actions.{index}"
        if not isinstance(action, dict) or set(action) - {"id", "labels"}:
            err(path, "must be an object {id, labels}")
            continue
        action_id, labels = action.get("id"), action.get("labels")
        if not isinstance(action_id, str) or not ACTION_ID_RE.fullmatch(action_id):
            err(f"{path}.id", "must be lower-case letters, digits and _ (at most 64)")
        elif action_id in seen:
            err(f"{path}.id", "is used twice")
        seen.add(action_id)
        if (not isinstance(labels, dict) or not labels
                or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in labels.values())):
            err(f"{path}.labels", "must be an object of locale → label (1 to 200 characters)")
        clean.append({"id": action_id, "labels": labels})
    return clean


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return len(url) <= 2000 and parts.scheme in ("http", "https") and bool(parts.hostname)


def _content(version: TemplateVersion) -> dict:
    return {
        "category": version.category, "feature": version.feature,
        "default_locale": version.default_locale, "variants": version.variants,
        "actions": version.actions, "url": version.url,
    }


def save_template(key: str, doc: dict, *, actor: str, now: datetime) -> Saved:
    """Create or replace the template `key` from a document; InvalidTemplate on bad input."""
    problem = key_error(key)
    if problem:
        raise InvalidTemplate([{"field": "key", "message": problem}])
    clean = validate(doc)
    content = {**clean, "feature": clean["feature"] or key}
    channel = content.pop("channel")
    with transaction.atomic():
        template = MessageTemplate.objects.select_for_update().filter(key=key).first()
        created = template is None
        secret = None
        if created:
            template = MessageTemplate(key=key, channel=channel, created_at=now, updated_at=now)
            if channel == Channel.WEBHOOK:
                secret = secrets.new_secret()
                template.webhook_secret = secrets.encrypt(secret)
            template.save()
        elif template.channel != channel:
            raise InvalidTemplate([{"field": "channel", "message": "a template's channel cannot change; "
                                    "make a new template"}])
        current = template.current_version
        if current is not None and _content(current) == content and template.archived_at is None:
            return Saved(template, current, created=False, changed=False)
        version = TemplateVersion.objects.create(
            template=template, number=(current.number + 1) if current else 1,
            created_by=actor, created_at=now, **content,
        )
        template.current_version = version
        template.archived_at = None
        template.updated_at = now
        template.save(update_fields=["current_version", "archived_at", "updated_at"])
        return Saved(template, version, created=created, changed=True, secret=secret)


def rotate_secret(template: MessageTemplate, *, now: datetime) -> str:
    """A new signing secret for a webhook template; returned once, stored encrypted."""
    if template.channel != Channel.WEBHOOK:
        raise ValueError("only webhook templates have a signing secret")
    secret = secrets.new_secret()
    MessageTemplate.objects.filter(pk=template.pk).update(webhook_secret=secrets.encrypt(secret),
                                                          updated_at=now)
    template.webhook_secret = secrets.encrypt(secret)
    return secret


def retire_template(template: MessageTemplate, *, now: datetime) -> str:
    """Delete an unused template; archive one that messages refer to. Returns what happened."""
    from .models import Message

    if Message.objects.filter(template=template).exists():
        MessageTemplate.objects.filter(pk=template.pk).update(archived_at=now, updated_at=now)
        return "archived"
    with transaction.atomic():
        MessageTemplate.objects.filter(pk=template.pk).update(current_version=None)
        template.delete()
    return "deleted"


def as_json(template: MessageTemplate, version: TemplateVersion | None = None) -> dict:
    version = version or template.current_version
    out = {
        "key": template.key, "channel": template.channel,
        "version": version.number if version else None,
        "archived": template.archived_at is not None,
        "updated_at": template.updated_at.isoformat(),
    }
    if version is not None:
        out.update(_content(version))
        if template.channel != Channel.WEBHOOK:
            out.pop("url")
        out["version_created_by"] = version.created_by
    return out
