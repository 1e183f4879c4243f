"""A fast path for templates made only of text and plain `{{ a.b.c }}` lookups.

Django's engine builds a Context per render and walks its node list: about a
third of delivery's Python time for the usual message template, which is just
text around a few variables. For a compiled template whose nodes are all
`TextNode`s and `VariableNode`s without filters, `plan_of` keeps the node list
as a tuple of text pieces and lookup paths; `render_plan` walks it against the
render data with plain dict lookups and formats each value with Django's own
`render_value_in_context` (localization and, for HTML, autoescaping: the same
code the engine runs), except the two cases that are most of a batch and whose
result Django fixes without looking at the locale: a `str` (as is, or
`html.escape`d, which is what Django's `escape` does) and an `int` while
USE_THOUSAND_SEPARATOR is off (`str(n)`, numberformat's own shortcut).

It only takes the path Django would take anyway: every step must be a `dict`
that holds the key and the value must not be callable. Anything else — a
missing variable (Django renders it empty and we log it), a lookup that Django
resolves as an attribute (`context.items`) or a list index (`context.list.0`),
a builtin (`True`) — answers None and the caller renders the part with the
engine, so the output is Django's by construction; tests/campaigns/
test_plain_render.py holds both paths to the same output over generated templates.
"""

from html import escape as html_escape

from django.conf import settings
from django.template.base import TextNode, Variable, VariableNode, render_value_in_context


class _Flags:
    """What `render_value_in_context` reads of a Context, as a fresh Context has it."""

    __slots__ = ("autoescape", "use_l10n", "use_tz")

    def __init__(self, autoescape: bool):
        self.autoescape = autoescape
        self.use_l10n = None
        self.use_tz = None


_HTML, _TEXT = _Flags(True), _Flags(False)


def plan_of(template) -> tuple | None:
    """The template as (text | lookup path) pieces, or None when it has anything else."""
    pieces = []
    for node in template.nodelist:
        if type(node) is TextNode:
            pieces.append(node.s)
        elif type(node) is VariableNode and (path := _plain_path(node)) is not None:
            pieces.append(path)
        else:
            return None
    return tuple(pieces)


def _plain_path(node) -> tuple[str, ...] | None:
    expression = node.filter_expression
    var = expression.var
    if expression.filters or not isinstance(var, Variable) or var.lookups is None:
        return None
    if var.translate or var.message_context:
        return None
    return tuple(var.lookups)


def render_plan(plan: tuple, data: dict, *, html: bool) -> str | None:
    """`plan` rendered against `data`, or None where only the engine may decide."""
    flags = _HTML if html else _TEXT
    out = []
    for piece in plan:
        if type(piece) is str:
            out.append(piece)
            continue
        value = data
        for bit in piece:
            if type(value) is not dict or bit not in value:
                return None
            value = value[bit]
        kind = type(value)
        if kind is str:  # Django's escape() is html.escape() wrapped as safe
            out.append(html_escape(value) if html else value)
        elif kind is int and not settings.USE_THOUSAND_SEPARATOR:  # number_format's own shortcut
            out.append(str(value))
        elif callable(value):
            return None
        else:
            out.append(render_value_in_context(value, flags))
    return "".join(out)
