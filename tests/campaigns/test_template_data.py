"""A template cannot change the data it is rendered from (Django calls callables it meets)."""

import copy

import pytest

from campaigns.rendering import render_source
from campaigns.template_data import ReadOnlyDict, ReadOnlyList, read_only

MUTATORS = ["clear", "popitem", "pop", "setdefault", "update", "reverse", "sort", "append"]


@pytest.mark.parametrize("method", MUTATORS)
@pytest.mark.parametrize("html", [False, True])
def test_a_mutating_method_in_a_template_renders_empty_and_changes_nothing(method, html):
    data = {"user": {"properties": {"plan": "pro", "tags": ["b", "a"]}}, "context": {"n": 1, "xs": [3, 1, 2]}}
    before = copy.deepcopy(data)
    source = (f"{{{{ context.{method} }}}}{{{{ user.properties.{method} }}}}{{{{ context.xs.{method} }}}}"
              f"{{{{ user.properties.tags.{method} }}}}|{{{{ context.n }}}} {{{{ user.properties.plan }}}} "
              "{{ context.xs }} {{ user.properties.tags }}")
    out = render_source(source, data, html=html)
    assert out.split("|", 1)[1] == (
        "1 pro [3, 1, 2] [&#x27;b&#x27;, &#x27;a&#x27;]" if html else "1 pro [3, 1, 2] ['b', 'a']"
    )
    assert data == before


def test_reading_methods_still_work_for_loops():
    out = render_source("{% for k, v in context.items %}{{ k }}={{ v }};{% endfor %}",
                        {"context": {"a": 1, "b": 2}}, html=False)
    assert out == "a=1;b=2;"


def test_read_only_copies_nested_containers_and_keeps_values():
    value = read_only({"a": [{"b": (1, 2)}], "c": "x"})
    assert isinstance(value, ReadOnlyDict) and isinstance(value["a"], ReadOnlyList)
    assert isinstance(value["a"][0]["b"], ReadOnlyList)
    assert value == {"a": [{"b": [1, 2]}], "c": "x"}
    assert repr(value) == "{'a': [{'b': [1, 2]}], 'c': 'x'}"
    value.clear()  # our own code may still call them; only the engine is refused
    assert value == {}
