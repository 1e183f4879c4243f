"""The preview: how many users match criteria now, and a few of them, saving nothing."""

from django.db.models import Count, Window

from engagement.refs import canonical_ref

from .criteria import matching_users, validate_criteria

SAMPLE_SIZE = 20
IDENTIFIERS = ("external_id", "anonymous_id", "email")


class PreviewInvalid(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("the criteria are invalid")
        self.errors = errors


def preview(criteria, *, now) -> dict:
    """{count, sample}: the sample is up to 20 canonical refs, lowest internal ids first.

    One query: the criteria are evaluated once and `COUNT(*) OVER ()` carries the
    total on every sampled row (no row, no match: a count of 0), where a count and
    a sample as two queries would evaluate them twice.
    """
    errors = validate_criteria(criteria)
    if errors:
        raise PreviewInvalid(errors)
    users = matching_users(criteria, now).annotate(_total=Window(Count("pk")))
    sample = list(users.order_by("pk").only(*IDENTIFIERS)[:SAMPLE_SIZE])
    return {"count": sample[0]._total if sample else 0, "sample": [canonical_ref(user) for user in sample]}
