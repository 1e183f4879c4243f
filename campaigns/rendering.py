"""Rendering a template version for one user, in a restricted Django template engine.

Templates get `user` (`id`, `email`, `properties`, `locale`, `timezone`),
`context` (the message's) and `preferences_url`. The variant is the user's
locale, else its language (`de-AT` → `de`), else the default locale. A missing
variable renders empty and is logged (by name only), never failing a delivery.
Autoescaping is on for HTML only.
"""

import contextlib
import contextvars
import logging
from dataclasses import dataclass, field
from functools import cache, lru_cache
from urllib.parse import quote

from django.conf import settings
from django.template import Context, Engine, TemplateSyntaxError

from . import plain_render
from .template_data import read_only

log = logging.getLogger("pulse.messages")
PARTS = ("subject", "text", "html")
_missing: contextvars.ContextVar[list | None] = contextvars.ContextVar("missing_variables", default=None)


class _Missing(str):
    """Django formats `string_if_invalid` with the variable's name when it holds `%s`:
    this one notes the name and renders nothing."""

    def __mod__(self, name):
        names = _missing.get()
        if names is not None:
            names.append(str(name))
        return ""


class RestrictedEngine(Engine):
    # Engine always loads its default builtins (which include `include` and `load`); not here.
    default_builtins = ["campaigns.template_library"]


@contextlib.contextmanager
def missing_variables():
    """Collect the names of the variables rendered as missing inside the block."""
    names: list = []
    token = _missing.set(names)
    try:
        yield names
    finally:
        _missing.reset(token)


@cache
def engine(autoescape: bool) -> Engine:
    return RestrictedEngine(
        libraries={},
        autoescape=autoescape,
        string_if_invalid=_Missing("%s"),
        loaders=[],
    )


@lru_cache(maxsize=512)
def compiled(source: str, *, html: bool):
    """A compiled template, kept: a batch renders the same few sources for every message.
    Compiled templates hold no per-render state (that lives in the Context), so sharing is safe."""
    return engine(html).from_string(source)


@lru_cache(maxsize=512)
def plan(source: str, *, html: bool) -> tuple | None:
    """The fast path's plan of `source` (campaigns/plain_render.py), or None: made once per source."""
    return plain_render.plan_of(compiled(source, html=html))


def render_source(source: str, data: dict, *, html: bool, fast: bool = True) -> str:
    """One part: by the fast path when it can decide, else by the engine (the same output)."""
    if fast and (steps := plan(source, html=html)) is not None:
        text = plain_render.render_plan(steps, data, html=html)
        if text is not None:
            return text
    return compiled(source, html=html).render(Context(read_only(data), autoescape=html))


def compile_error(source: str, *, html: bool) -> str | None:
    """Why `source` is not a valid message template, or None."""
    try:
        engine(html).from_string(source)
    except TemplateSyntaxError as exc:
        return str(exc)[:300]
    return None


def pick_locale(variants: dict, locale: str, default: str) -> str:
    """The variant for `locale`: exact (any case, `_` or `-`), then its language, then `default`."""
    by_norm = {_norm(name): name for name in variants}
    wanted = _norm(locale or "")
    if wanted in by_norm:
        return by_norm[wanted]
    language = wanted.split("-", 1)[0]
    if language in by_norm:
        return by_norm[language]
    return default


def _norm(locale: str) -> str:
    return locale.replace("_", "-").lower()


@dataclass
class Rendered:
    locale: str
    subject: str
    text: str
    html: str
    actions: list = field(default_factory=list)


def user_context(user) -> dict:
    return {
        "id": user.external_id or "",
        "email": user.email or "",
        "properties": user.properties or {},
        "locale": user.locale or "",
        "timezone": user.timezone or "",
    }


def preferences_url(user) -> str:
    from engagement.refs import canonical_ref

    pattern = settings.PULSE_PREFERENCES_URL
    ref = canonical_ref(user)
    return pattern.format(user=quote(ref, safe="")) if pattern and ref else ""


def _variant_for(version, user_locale: str) -> tuple[str, dict, list, tuple | None]:
    """(locale, variant, actions, fast plans) of `version` for a user's locale, worked out once
    per locale and version instance (versions are immutable; a batch renders few of them).
    The fast plans are the three parts' fast-path plans and whether one of them reads the
    preferences URL, or None when a part has no plan."""
    cache = version.__dict__.setdefault("_pulse_variants", {})
    if (found := cache.get(user_locale)) is None:
        locale = pick_locale(version.variants, user_locale, version.default_locale)
        variant = version.variants.get(locale) or version.variants[version.default_locale]
        actions = [{"id": a["id"], "label": _label(a.get("labels", {}), locale, version.default_locale)}
                   for a in version.actions or []]
        plans = tuple(plan(variant.get(part) or "", html=part == "html") for part in PARTS)
        fast = None if None in plans else (*plans, _reads_preferences_url(plans))
        found = cache[user_locale] = (locale, variant, actions, fast)
    return found


def render(version, user, context: dict) -> Rendered:
    """Render `version` for `user`; never raises on missing variables.

    When all three parts have a fast plan and each decides (no missing variable, nothing
    only the engine may resolve), the message is rendered without the engine, the
    missing-variable bookkeeping or — unless a part reads it — the preferences URL;
    otherwise every part goes the general way (`render_source`), so the output is the same."""
    locale, variant, actions, plans = _variant_for(version, user.locale)
    if plans is not None and (out := _render_fast(plans, user, context)) is not None:
        subject, text, html = out
    else:
        subject, text, html = _render_parts(version, variant, user, context)
    return Rendered(locale=locale, subject=subject.strip(), text=text, html=html,
                    actions=[dict(a) for a in actions])


def _render_fast(plans: tuple, user, context: dict) -> tuple[str, str, str] | None:
    """`plans`: the subject's, text's and HTML's plans, and whether any reads the preferences URL."""
    subject_plan, text_plan, html_plan, reads_url = plans
    data = {"user": user_context(user), "context": context or {}}
    if reads_url:
        data["preferences_url"] = preferences_url(user)
    if (subject := plain_render.render_plan(subject_plan, data, html=False)) is None:
        return None
    if (text := plain_render.render_plan(text_plan, data, html=False)) is None:
        return None
    if (html := plain_render.render_plan(html_plan, data, html=True)) is None:
        return None
    return subject, text, html


def _reads_preferences_url(plans: tuple) -> bool:
    return any(type(piece) is tuple and piece[0] == "preferences_url" for steps in plans for piece in steps)


def _render_parts(version, variant: dict, user, context: dict) -> tuple[str, str, str]:
    data = {"user": user_context(user), "context": context or {}, "preferences_url": preferences_url(user)}
    with missing_variables() as names:
        out = [render_source(variant.get(part) or "", data, html=part == "html") for part in PARTS]
    if names:
        log.info("event=template_variable_missing template_version_id=%s variables=%s",
                 version.pk, ",".join(sorted(set(names)))[:300])
    return out[0], out[1], out[2]


def _label(labels: dict, locale: str, default: str) -> str:
    return labels.get(locale) or labels.get(pick_locale(labels, locale, default)) or labels.get(default, "")
