"""Render data the template engine may read but not change.

Django's engine calls a callable it meets during a lookup, so `{{ context.clear }}` or
`{{ user.properties.popitem }}` in a template would empty or pop the very dicts the rest of
the message — or the next message of the same user in the batch — is rendered from. The
engine refuses to call anything marked `alters_data`; these containers mark every mutating
method that takes no argument (those that need one cannot be called from a template)."""

MUTATING = {
    dict: ("clear", "popitem", "pop", "setdefault", "update"),
    list: ("clear", "pop", "reverse", "sort", "append", "extend", "insert", "remove"),
}


def _refusing(cls, names):
    def refused(name):
        def method(self, *args, **kwargs):
            return getattr(cls.__mro__[1], name)(self, *args, **kwargs)

        method.alters_data = True
        method.__name__ = name
        return method

    for name in names:
        setattr(cls, name, refused(name))
    return cls


class ReadOnlyDict(dict):
    __slots__ = ()


class ReadOnlyList(list):
    __slots__ = ()


_refusing(ReadOnlyDict, MUTATING[dict])
_refusing(ReadOnlyList, MUTATING[list])


def read_only(value):
    """`value` with every dict and list inside it replaced by its engine-safe twin."""
    if isinstance(value, dict):
        return ReadOnlyDict((key, read_only(item)) for key, item in value.items())
    if isinstance(value, list | tuple):
        return ReadOnlyList(read_only(item) for item in value)
    return value
