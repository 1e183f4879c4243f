"""What each user agreed to receive, and changing it (each change appends `$preferences`)."""

from datetime import datetime

from django.db import transaction

from .id_lists import id_in
from .models import Category, Preference
from .system_signals import record_preferences_changed

EXEMPT = {Category.TRANSACTIONAL, Category.SYSTEM}  # preferences never stop these


class InvalidPreferences(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("invalid preferences")
        self.errors = errors


def preferences_of(user_ids) -> dict[int, Preference]:
    return {p.user_id: p for p in Preference.objects.filter(id_in("user_id", user_ids))}


def as_json(pref: Preference | None) -> dict:
    return {
        "unsubscribed_all": bool(pref and pref.unsubscribed_all),
        "categories": {c: (pref.categories.get(c, True) if pref else True) for c in Category.values},
    }


def validate(doc: dict) -> dict:
    errors = []
    for name in sorted(set(doc) - {"unsubscribed_all", "categories"}):
        errors.append({"field": name, "message": "is not a preference"})
    if "unsubscribed_all" in doc and not isinstance(doc["unsubscribed_all"], bool):
        errors.append({"field": "unsubscribed_all", "message": "must be true or false"})
    categories = doc.get("categories", {})
    if not isinstance(categories, dict):
        errors.append({"field": "categories", "message": "must be an object of category → true/false"})
        categories = {}
    for name, value in categories.items():
        if name not in Category.values:
            errors.append({"field": f"categories.{name}", "message": "is not a category"})
        elif not isinstance(value, bool):
            errors.append({"field": f"categories.{name}", "message": "must be true or false"})
    if errors:
        raise InvalidPreferences(errors)
    return doc


def update_preferences(user, doc: dict, *, actor: str, now: datetime) -> Preference:
    """Patch the user's preferences; a change appends a `$preferences` signal with its actor."""
    validate(doc)
    with transaction.atomic():
        pref, _ = Preference.objects.select_for_update().get_or_create(
            user=user, defaults={"updated_at": now}
        )
        before = as_json(pref)
        if "unsubscribed_all" in doc:
            pref.unsubscribed_all = doc["unsubscribed_all"]
        pref.categories = {**pref.categories, **doc.get("categories", {})}
        after = as_json(pref)
        if after != before:
            pref.updated_at, pref.updated_by = now, actor
            pref.save()
            record_preferences_changed(user, after, actor=actor, now=now)
        return pref


def block_reason(pref: Preference | None, category: str) -> str | None:
    """The gate's preference step: why this user does not get messages of `category`."""
    if pref is None or category in EXEMPT:
        return None
    if pref.unsubscribed_all:
        return "unsubscribed_all"
    if pref.categories.get(category) is False:
        return "category_opt_out"
    return None
