"""The fast path for plain `{{ a.b }}` templates renders exactly what Django's engine renders,
logs the same missing variables, and steps aside for anything it does not know."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import plain_render
from campaigns.rendering import compile_error, missing_variables, plan, render_source

KEYS = ["a", "b", "plan", "n", "name", "0", "1", "items", "keys", "values", "get", "upper", "pop", "clear"]
TOPS = ["user", "context", "preferences_url", "True", "None", "missing"]
HOSTILE_PIECES = ["<", ">", "&", '"', "'", "é", "\u202e", "%s", "%", "}", "}}", "{ a }", "\n", " ", "\\", "x"]

texts = st.lists(st.sampled_from(HOSTILE_PIECES), max_size=8).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=10,
)
render_data = st.fixed_dictionaries({
    "user": st.fixed_dictionaries({
        "id": texts, "email": texts, "locale": texts, "timezone": texts,
        "properties": st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5),
    }),
    "context": st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
    "preferences_url": texts,
})
paths = st.tuples(
    st.sampled_from(TOPS),
    st.lists(st.sampled_from([*KEYS, "id", "email", "properties", "locale"]), max_size=3),
).map(lambda p: ".".join([p[0], *p[1]]))
FILTERS = ["", "", "", "|upper", '|default:"-"', "|length", "|safe"]
SPACING = ["{{ %s }}", "{{%s}}", "{{  %s }}"]
variables = st.tuples(paths, st.sampled_from(FILTERS), st.sampled_from(SPACING)).map(
    lambda v: v[2] % (v[0] + v[1]))
tags = st.sampled_from(["{% if context.a %}yes{% endif %}", "{% for x in context.b %}[{{ x }}]{% endfor %}",
                        "{# a comment #}", "{% comment %}gone{% endcomment %}", '{{ "<lit>" }}', "{{ 12 }}"])
templates = st.lists(texts | variables | tags, max_size=8).map("".join)


def _outcome(source: str, data: dict, *, html: bool, fast: bool):
    """The output, or the error Django raises (`{% for %}` over `false` is a TypeError, which
    delivery turns into that message's failure): the fast path must do the same either way."""
    with missing_variables() as missing:
        try:
            output = render_source(source, data, html=html, fast=fast)
        except Exception as exc:  # noqa: BLE001 - compared, not swallowed
            output = f"raised {type(exc).__name__}"
    return output, sorted(missing)


def both(source: str, data: dict, *, html: bool):
    return _outcome(source, data, html=html, fast=True), _outcome(source, data, html=html, fast=False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=templates, data=render_data, html=st.booleans())
def test_generated_templates_render_the_same_on_the_fast_path_and_the_engine(source, data, html):
    assert compile_error(source, html=html) is None
    fast, engine = both(source, data, html=html)
    assert fast == engine


@settings(max_examples=200, deadline=None)
@given(data=render_data, html=st.booleans())
def test_plain_lookups_that_all_exist_are_rendered_by_the_fast_path_itself(data, html):
    data["context"]["a"] = {"b": data["user"]["id"]}
    source = "Hi {{ user.id }} & {{ context.a.b }}, see {{ preferences_url }}<br>"
    steps = plan(source, html=html)
    assert steps is not None
    fast = plain_render.render_plan(steps, data, html=html)
    assert fast is not None
    assert fast == render_source(source, data, html=html, fast=False)


@pytest.mark.parametrize("source", [
    "{{ context.a|safe }}", "{% if context.a %}x{% endif %}", '{{ "lit" }}', "{{ 3 }}",
    "{{ context.n|add:1 }}", "{% for x in context.b %}{{ x }}{% endfor %}", "{{ _('x') }}",
    "{% autoescape off %}{{ context.a }}{% endautoescape %}", "{% templatetag openblock %}",
])
def test_anything_but_text_and_plain_lookups_goes_to_the_engine(source):
    assert plan(source, html=True) is None


@pytest.mark.parametrize("context, expected_text, expected_html", [
    ({"a": "<script>\"&'"}, "<script>\"&'", "&lt;script&gt;&quot;&amp;&#x27;"),
    ({"a": 1234567}, "1234567", "1234567"),
    ({"a": True}, "True", "True"),
    ({"a": None}, "None", "None"),
    ({"a": 1.5}, "1.5", "1.5"),
    ({"a": ["<x>", 1]}, "['<x>', 1]", "[&#x27;&lt;x&gt;&#x27;, 1]"),
    ({"a": {"k": "<v>"}}, "{'k': '<v>'}", "{&#x27;k&#x27;: &#x27;&lt;v&gt;&#x27;}"),
])
def test_values_are_formatted_like_django_and_escaped_for_html_only(context, expected_text, expected_html):
    data = {"user": {}, "context": context, "preferences_url": ""}
    for html, expected in ((False, expected_text), (True, expected_html)):
        fast, engine = both("[{{ context.a }}]", data, html=html)
        assert fast == engine == (f"[{expected}]", [])


@pytest.mark.parametrize("source, context, expected", [
    ("{{ context.items }}", {}, "dict_items([])"),  # Django calls the dict's method
    ("{{ context.keys }}", {"a": 1}, "dict_keys([&#x27;a&#x27;])"),
    ("{{ context.items }}", {"items": "mine"}, "mine"),  # a key wins over the method
    ("{{ context.l.1 }}", {"l": ["x", "y"]}, "y"),  # a list index
    ("{{ True }}/{{ None }}", {}, "True/None"),  # the Context's builtins
    ("{{ context.a.b }}", {"a": "text"}, ""),  # a lookup into a string is missing
])
def test_lookups_django_resolves_otherwise_than_a_dict_key_are_left_to_the_engine(source, context, expected):
    data = {"user": {}, "context": context, "preferences_url": ""}
    fast, engine = both(source, data, html=True)
    assert fast == engine
    assert fast[0] == expected


def test_a_missing_variable_is_rendered_empty_and_named_the_same_on_both_paths():
    data = {"user": {"properties": {}}, "context": {}, "preferences_url": ""}
    fast, engine = both("Hi {{ user.properties.name }} {{ context.plan }}!", data, html=False)
    assert fast == engine == ("Hi  !", ["context.plan", "user.properties.name"])


@pytest.mark.parametrize("grouping", [False, True])
def test_integers_follow_the_thousand_separator_setting_on_both_paths(settings, grouping):
    settings.USE_THOUSAND_SEPARATOR = grouping
    data = {"user": {}, "context": {"n": 1234567, "m": -5, "b": False}, "preferences_url": ""}
    for html in (False, True):
        fast, engine = both("{{ context.n }} {{ context.m }} {{ context.b }}", data, html=html)
        assert fast == engine
    assert fast[0] == ("1,234,567 -5 False" if grouping else "1234567 -5 False")
