"""The preview: how many users match criteria now, and a few of them, saving nothing."""

from engagement.refs import canonical_ref

from .criteria import matching_users, validate_criteria

SAMPLE_SIZE = 20
IDENTIFIERS = ("external_id", "anonymous_id", "email")


class PreviewInvalid(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("the criteria are invalid")
        self.errors = errors


def preview(criteria, *, now) -> dict:
    """{count, sample}: the sample is up to 20 canonical refs, lowest internal ids first."""
    errors = validate_criteria(criteria)
    if errors:
        raise PreviewInvalid(errors)
    users = matching_users(criteria, now)
    sample = users.order_by("pk").only(*IDENTIFIERS)[:SAMPLE_SIZE]
    return {"count": users.count(), "sample": [canonical_ref(user) for user in sample]}
