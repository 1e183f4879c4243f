"""Where the `lifecycle` and `profile` leaves read from, found through a setting.

The lifecycle states (`engagement.loops`) and the stored profile features
(`profiles`) are built by their own issues. The compiler is written against
their documented table shapes:

- lifecycle: one row per user with `user_id` and a `state` string;
- profile: one row per (user, feature) with `user_id`, `name`, a numeric
  `value` or a categorical `value_text`, and `computed_at`;

and `PULSE_BUCKET_SOURCES` names the model classes and the profiles entry point
`refresh_expired(features, users_queryset, now)` by dotted path. When a name
does not import (the app is not in this deployment yet), criteria that use
that leaf are refused by validation with a clear message instead of failing
at query time. Plugging the real apps in is one settings line each.
"""

from django.conf import settings
from django.utils.module_loading import import_string

DEFAULTS = {
    "lifecycle": "engagement.models.LifecycleState",
    "profile": "profiles.models.ProfileFeatureValue",
    "profile_refresh": "profiles.refresh.refresh_expired",
}
UNAVAILABLE = {
    "lifecycle": "lifecycle states are not available in this deployment",
    "profile": "profile features are not available in this deployment",
}


def _source(kind: str):
    path = {**DEFAULTS, **getattr(settings, "PULSE_BUCKET_SOURCES", {})}.get(kind)
    if not path:
        return None
    try:
        return import_string(path)
    except ImportError:
        return None


def lifecycle_model():
    """The lifecycle-state model, or None when this deployment has none."""
    return _source("lifecycle")


def profile_model():
    """The stored profile-feature model, or None when this deployment has none."""
    return _source("profile")


def known_states() -> set[str] | None:
    """The lifecycle states the model declares as choices, or None when it declares none."""
    model = lifecycle_model()
    if model is None:
        return None
    choices = model._meta.get_field("state").choices
    return {str(value) for value, _ in choices} if choices else None


def refresh_profiles(features: set[str], users, now) -> None:
    """Recompute expired values of `features` for `users` before criteria read them.

    The seam to profiles' `refresh_expired(features, users_queryset, now)`, which
    works set-based over the queryset; nothing is done when no feature is read.
    """
    if not features:
        return
    refresh = _source("profile_refresh")
    if refresh is None:
        raise LookupError(UNAVAILABLE["profile"])
    refresh(sorted(features), users, now)
