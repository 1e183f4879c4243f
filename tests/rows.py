"""Rows as plain data, for tests that compare what two writers stored."""


def columns_but_id(queryset) -> list[dict]:
    """Every concrete column of every row (attname → value) except the primary key, in the
    queryset's order."""
    fields = [f for f in queryset.model._meta.concrete_fields if not f.primary_key]
    return [{f.attname: getattr(row, f.attname) for f in fields} for row in queryset]
