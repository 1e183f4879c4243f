"""The signal log: read-only rows, plus re-queueing failed ones through the pipeline."""

from django.contrib import admin, messages
from django.db.models import Subquery
from django.urls import reverse
from django.utils.html import format_html

from ..models import Signal
from ..pipeline import requeue_failed
from .common import LargeTableAdmin, ReadOnlyAdmin

NAME_CHOICES = 50
RECENT_SIGNALS_FOR_NAMES = 5000


class NameFilter(admin.SimpleListFilter):
    """Up to 50 names among the latest 5,000 signal ids (a bounded primary-key range scan).

    A DISTINCT over the whole log would scan every row; names that only occur
    further back can still be filtered on with `?name=<name>`.
    """

    title = "name"
    parameter_name = "name"

    def lookups(self, request, model_admin):
        latest = Signal.objects.order_by("-pk").values("pk")[:1]
        names = list(
            Signal.objects.filter(pk__gt=Subquery(latest) - RECENT_SIGNALS_FOR_NAMES)
            .order_by("name")
            .values_list("name", flat=True)
            .distinct()[:NAME_CHOICES]
        )
        if self.value() and self.value() not in names:
            names.append(self.value())
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(name=self.value())
        return queryset


class StateFilter(admin.SimpleListFilter):
    """pending (queued), processed or failed: a signal's state is derived (models/signals.py)."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return Signal.State.choices

    def queryset(self, request, queryset):
        if self.value() in Signal.State.values:
            return queryset.in_state(self.value())
        return queryset


@admin.register(Signal)
class SignalAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = [
        "id", "occurred_at", "name", "user_link", "tenant", "source", "state", "item_display",
        "error_summary",
    ]
    list_display_links = ["id", "occurred_at"]
    list_select_related = ["user", "tenant"]
    list_filter = [NameFilter, "source", StateFilter, "realtime"]
    date_hierarchy = "occurred_at"
    ordering = ["-occurred_at", "-pk"]
    raw_id_fields = ["user", "tenant"]
    actions = ["requeue_selected"]
    fields = [
        "id", "name", "user", "tenant", "feature", "item", "interaction", "properties", "context",
        "occurred_at", "received_at", "idempotency_key", "source", "realtime", "state",
        "failed_at", "error",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).with_state()

    @admin.display(description="user", ordering="user")
    def user_link(self, obj):
        url = reverse("admin:engagement_enduser_change", args=[obj.user_id])
        return format_html('<a href="{}">{}</a>', url, obj.user)

    @admin.display(description="item")
    def item_display(self, obj):
        if not obj.item:
            return "—"
        return f"{obj.item} ({obj.interaction})" if obj.interaction else obj.item

    @admin.display(description="error")
    def error_summary(self, obj):
        if obj.state != Signal.State.FAILED or not obj.error:
            return ""
        lines = obj.error.strip().splitlines()
        text = lines[-1] if lines else obj.error
        return text if len(text) <= 120 else text[:119] + "…"

    @admin.action(description="Re-queue selected failed signals", permissions=["requeue"])
    def requeue_selected(self, request, queryset):
        ids = list(queryset.failed().values_list("pk", flat=True))
        if not ids:
            self.message_user(
                request, "None of the selected signals had failed; nothing was re-queued.",
                messages.WARNING,
            )
            return
        count = requeue_failed(ids)
        self.message_user(
            request, f"Re-queued {count} failed signal{'' if count == 1 else 's'}.", messages.SUCCESS
        )

    def has_requeue_permission(self, request):
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")
