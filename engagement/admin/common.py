"""Large-table habits shared by the Pulse model admins.

- `CappedCountPaginator` never counts a whole table: it counts at most
  `CAP + 1` rows of the filtered query and reports "10,000+" beyond that.
- `LargeTableAdmin` uses it, hides the full (unfiltered) count, and replaces
  Django's date hierarchy, whose top levels run `SELECT DISTINCT` over every
  row, with one computed from MIN/MAX of the filtered query (index-only on the
  date column): the links cover the range between the first and the last row,
  so a month without rows may be listed; it never scans the table.
- `ReadOnlyAdmin`: view-only pages for rows only the system writes.
"""

import datetime

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import models
from django.template.response import TemplateResponse
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst


class CappedCountPaginator(Paginator):
    """A paginator whose `count` stops at CAP: `SELECT COUNT(*) FROM (… LIMIT CAP+1)`."""

    CAP = 10_000

    @cached_property
    def _counted(self) -> int:
        query = self.object_list
        if not hasattr(query, "query"):
            return len(query)
        return query.order_by().values("pk")[: self.CAP + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.CAP)

    @property
    def capped(self) -> bool:
        """True when there are more rows than `count` says (the list shows "CAP+")."""
        return self._counted > self.CAP


class LargeTableAdmin(admin.ModelAdmin):
    """A changelist that stays cheap on tables of many millions of rows."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    change_list_template = "admin/pulse/change_list.html"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if isinstance(response, TemplateResponse) and response.context_data:
            cl = response.context_data.get("cl")
            if cl is not None and cl.date_hierarchy:
                response.context_data["pulse_date_hierarchy"] = range_date_hierarchy(cl)
        return response


class NoWrites:
    """Rows written only by Pulse itself: staff may look, never add, edit or delete."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(NoWrites, admin.ModelAdmin):
    """A model admin for rows only Pulse writes."""


def range_date_hierarchy(cl) -> dict:
    """The context `admin/date_hierarchy.html` expects, from MIN/MAX instead of DISTINCT.

    `cl.queryset` already carries the year/month/day filters of the current
    level (ChangeList turns them into a half-open range on the field).
    """
    name = cl.date_hierarchy
    field = cl.model._meta.get_field(name)
    year_param, month_param, day_param = (f"{name}__{part}" for part in ("year", "month", "day"))
    year, month, day = (cl.params.get(p) for p in (year_param, month_param, day_param))
    year, month, day = (_single(v) for v in (year, month, day))

    def link(filters):
        return cl.get_query_string(filters, [f"{name}__"])

    first, last = _bounds(cl.queryset, name, isinstance(field, models.DateTimeField))
    if not (year or month or day) and first and last and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month
    context = {"show": True, "field_name": field.verbose_name, "back": None, "choices": []}
    if year and month and day:
        moment = datetime.date(int(year), int(month), int(day))
        context["back"] = {
            "link": link({year_param: year, month_param: month}),
            "title": capfirst(formats.date_format(moment, "YEAR_MONTH_FORMAT")),
        }
        context["choices"] = [{"title": capfirst(formats.date_format(moment, "MONTH_DAY_FORMAT"))}]
    elif year and month:
        context["back"] = {"link": link({year_param: year}), "title": str(year)}
        if first and last:
            context["choices"] = [
                {
                    "link": link({year_param: year, month_param: month, day_param: d}),
                    "title": capfirst(
                        formats.date_format(
                            datetime.date(int(year), int(month), d), "MONTH_DAY_FORMAT"
                        )
                    ),
                }
                for d in range(first.day, last.day + 1)
            ]
    elif year:
        context["back"] = {"link": link({}), "title": "All dates"}
        if first and last:
            context["choices"] = [
                {
                    "link": link({year_param: year, month_param: m}),
                    "title": capfirst(
                        formats.date_format(datetime.date(int(year), m, 1), "YEAR_MONTH_FORMAT")
                    ),
                }
                for m in range(first.month, last.month + 1)
            ]
    elif first and last:
        context["choices"] = [
            {"link": link({year_param: str(y)}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ]
    return context


def _single(value):
    if isinstance(value, list):
        return value[-1] if value else None
    return value


def _bounds(queryset, name: str, is_datetime: bool):
    bounds = queryset.order_by().aggregate(first=models.Min(name), last=models.Max(name))
    first, last = bounds["first"], bounds["last"]
    if is_datetime:
        first, last = (
            timezone.localtime(v) if v is not None and timezone.is_aware(v) else v for v in (first, last)
        )
    return first, last


def staff_actor(request) -> str:
    """The actor recorded on what a staff member changes (docs/ARCHITECTURE.md §4)."""
    return f"staff:{request.user.get_username()}"
