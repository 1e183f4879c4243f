"""The shared list convention: `limit`, an opaque `cursor`, `next_cursor` (engagement/pagination.py)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.http import QueryDict

from engagement import pagination
from engagement.api import ApiError
from engagement.models import Signal
from engagement.pagination import paginate
from tests.factories import EndUserFactory

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ASCENDING = ("occurred_at", "id")
NEWEST_FIRST = ("-occurred_at", "-id")


def make_signals(count, distinct_times=5):
    """`count` signals whose occurred_at takes only a few values, so the leading field ties a lot."""
    user = EndUserFactory()
    Signal.objects.bulk_create(
        Signal(user=user, name="app.opened", received_at=T0,
               occurred_at=T0 + timedelta(minutes=n % distinct_times, microseconds=7))
        for n in range(count)
    )
    return list(Signal.objects.all())


def query(**params) -> QueryDict:
    q = QueryDict(mutable=True)
    for name, value in params.items():
        q.setlist(name, value if isinstance(value, list) else [value])
    return q


def walk(ordering, limit, queryset=None, salt="signals"):
    queryset = queryset if queryset is not None else Signal.objects.all()
    pages, cursor = [], None
    while True:
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        page = paginate(queryset, query(**params), ordering=ordering, salt=salt)
        pages.append(page.rows)
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 1000, "paging does not end"


def expected_order(signals, ordering):
    keys = {"occurred_at": lambda s: s.occurred_at.timestamp(), "id": lambda s: s.pk, "pk": lambda s: s.pk}

    def sort_key(signal):
        return tuple(-keys[f.lstrip("-")](signal) if f.startswith("-") else keys[f](signal) for f in ordering)

    return [s.pk for s in sorted(signals, key=sort_key)]


@pytest.mark.parametrize("ordering", [ASCENDING, NEWEST_FIRST, ("-occurred_at", "id"), ("id",), ("-pk",)])
@pytest.mark.parametrize("limit", [1, 7, 40])
def test_walking_every_page_visits_each_row_once_in_order_despite_ties(db, ordering, limit):
    signals = make_signals(40)
    pages = walk(ordering, limit)
    assert [s.pk for page in pages for s in page] == expected_order(signals, ordering)
    assert all(len(page) == limit for page in pages[:-1])


def test_a_list_that_fills_its_last_page_exactly_ends_with_a_null_cursor(db):
    make_signals(14)
    first = paginate(Signal.objects.all(), query(limit="7"), ordering=ASCENDING, salt="signals")
    second = paginate(Signal.objects.all(), query(limit="7", cursor=first.next_cursor),
                      ordering=ASCENDING, salt="signals")
    assert first.next_cursor is not None
    assert len(second.rows) == 7
    assert second.next_cursor is None


def test_an_empty_list_is_one_empty_page(db):
    page = paginate(Signal.objects.all(), query(), ordering=ASCENDING, salt="signals")
    assert page == pagination.Page([], None)


def test_the_default_limit_is_fifty_and_the_most_is_five_hundred(db):
    make_signals(501)
    assert len(paginate(Signal.objects.all(), query(), ordering=ASCENDING, salt="s").rows) == 50
    page = paginate(Signal.objects.all(), query(limit="500"), ordering=ASCENDING, salt="s")
    assert len(page.rows) == 500
    assert page.next_cursor is not None


def test_each_page_is_one_query(db, django_assert_num_queries):
    make_signals(30)
    cursor = None
    for _ in range(3):
        with django_assert_num_queries(1):
            page = paginate(Signal.objects.all(), query(limit="10", **({"cursor": cursor} if cursor else {})),
                            ordering=NEWEST_FIRST, salt="signals")
        cursor = page.next_cursor
    assert cursor is None


def test_rows_added_while_paging_repeat_nothing_already_seen(db):
    signals = make_signals(20)
    first = paginate(Signal.objects.all(), query(limit="10"), ordering=ASCENDING, salt="signals")
    Signal.objects.bulk_create(
        [Signal(user=signals[0].user, name="app.opened", received_at=T0, occurred_at=T0 - timedelta(days=1))]
    )
    rest = paginate(Signal.objects.all(), query(limit="100", cursor=first.next_cursor),
                    ordering=ASCENDING, salt="signals")
    seen = [s.pk for s in first.rows + rest.rows]
    assert len(seen) == len(set(seen)) == 20


def test_the_cursor_pages_within_the_filtered_queryset(db):
    make_signals(20)
    mine = Signal.objects.filter(occurred_at__gte=T0 + timedelta(minutes=3))
    pages = walk(ASCENDING, 3, queryset=mine)
    assert sum(len(p) for p in pages) == mine.count() == 8


@pytest.mark.parametrize(
    "limit",
    ["0", "-1", "501", "abc", "", " 5", "5 ", "5.0", "1e2", "+5", "5_0", "0x10", "٥", "9" * 40, ["5", "6"]],
)
def test_a_bad_limit_is_refused_with_a_400_naming_the_field(db, limit):
    with pytest.raises(ApiError) as caught:
        paginate(Signal.objects.all(), query(limit=limit), ordering=ASCENDING, salt="signals")
    error = caught.value
    assert (error.status, error.code) == (400, "invalid_request")
    assert [d["field"] for d in error.details] == ["limit"]
    assert error.details[0]["message"]


def _valid_cursor():
    make_signals(10)
    return paginate(Signal.objects.all(), query(limit="3"), ordering=ASCENDING, salt="signals").next_cursor


def _flip_last(token):
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "forge",
    [
        _flip_last,
        lambda c: c[:-30],
        lambda c: "garbage",
        lambda c: "::::",
        lambda c: "x" * 100_000,
        lambda c: signing.dumps([1, 2], salt="pulse.pagination:signals:occurred_at,id").replace("[", "{"),
        lambda c: signing.dumps([T0.isoformat(), 5], salt="another salt"),
        lambda c: signing.dumps(["not a time", 5], salt="pulse.pagination:signals:occurred_at,id"),
        lambda c: signing.dumps([T0.isoformat()], salt="pulse.pagination:signals:occurred_at,id"),
        lambda c: signing.dumps({"id": 5}, salt="pulse.pagination:signals:occurred_at,id"),
        lambda c: signing.dumps([T0.isoformat(), "five"], salt="pulse.pagination:signals:occurred_at,id"),
        lambda c: [c, c],
    ],
)
def test_a_tampered_or_garbage_cursor_is_refused_with_a_400(db, forge):
    cursor = forge(_valid_cursor())
    with pytest.raises(ApiError) as caught:
        paginate(Signal.objects.all(), query(cursor=cursor), ordering=ASCENDING, salt="signals")
    assert (caught.value.status, caught.value.code) == (400, "invalid_request")
    assert [d["field"] for d in caught.value.details] == ["cursor"]


def test_a_cursor_from_another_list_is_refused(db):
    cursor = _valid_cursor()
    for salt, ordering in (("messages", ASCENDING), ("signals", NEWEST_FIRST)):
        with pytest.raises(ApiError):
            paginate(Signal.objects.all(), query(cursor=cursor), ordering=ordering, salt=salt)


def test_an_empty_cursor_is_the_first_page(db):
    make_signals(5)
    page = paginate(Signal.objects.all(), query(cursor=""), ordering=ASCENDING, salt="signals")
    assert len(page.rows) == 5


@pytest.mark.parametrize("ordering", [("occurred_at",), ("id", "occurred_at"), ("failed_at", "id"), ()])
def test_an_ordering_a_keyset_cannot_page_is_a_programming_error(db, ordering):
    with pytest.raises(ValueError):
        paginate(Signal.objects.all(), query(), ordering=ordering, salt="signals")
