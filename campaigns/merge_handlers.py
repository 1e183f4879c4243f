"""PULSE_USER_MERGE_HANDLERS entries: `handler(survivor, losers, now)`, set-based."""

from .models import Message, Preference


def move_messages(survivor, losers, now) -> None:
    Message.objects.filter(user_id__in=[u.pk for u in losers]).update(user=survivor)


def merge_preferences(survivor, losers, now) -> None:
    """The most restrictive preferences win: any unsubscribe, any category opt-out."""
    ids = [survivor.pk, *(u.pk for u in losers)]
    found = list(Preference.objects.filter(user_id__in=ids))
    if not found:
        return
    categories: dict = {}
    for pref in found:
        for name, allowed in pref.categories.items():
            categories[name] = categories.get(name, True) and allowed
    merged = {"unsubscribed_all": any(p.unsubscribed_all for p in found), "categories": categories,
              "updated_at": now, "updated_by": "merge"}
    Preference.objects.filter(user_id__in=ids[1:]).delete()
    Preference.objects.update_or_create(user=survivor, defaults=merged)
