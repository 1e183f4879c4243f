"""Job runs: one row per scheduled (kind, window), plus one per manual run; read-only."""

from django.contrib import admin
from django.db.models import Subquery

from ..models import JobRun
from ..schedules import schedules
from .common import LargeTableAdmin, ReadOnlyAdmin

RECENT_RUNS_FOR_KINDS = 1000


class KindFilter(admin.SimpleListFilter):
    """Kinds from the schedules in settings plus those of the latest 1,000 run ids: no full scan."""

    title = "kind"
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = {schedule.kind for schedule in schedules()}
        latest = JobRun.objects.order_by("-pk").values("pk")[:1]
        kinds.update(
            JobRun.objects.filter(pk__gt=Subquery(latest) - RECENT_RUNS_FOR_KINDS)
            .order_by("kind")
            .values_list("kind", flat=True)
            .distinct()
        )
        if self.value():
            kinds.add(self.value())
        return [(kind, kind) for kind in sorted(kinds)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(kind=self.value())
        return queryset


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = [
        "kind", "window", "trigger", "queue", "status", "attempts", "processed", "succeeded",
        "failed", "skipped", "duration", "started_at", "finished_at",
    ]
    list_filter = [KindFilter, "status", "trigger"]
    date_hierarchy = "window"
    ordering = ["-window", "-pk"]
    fields = [
        "kind", "window", "trigger", "actor", "as_of", "status", "queue", "job_id", "attempts",
        "started_at", "finished_at", "lease_expires_at", "duration", "processed", "succeeded",
        "failed", "skipped", "errors", "cursor",
    ]
    readonly_fields = fields

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, obj):
        if obj.duration_ms is None:
            return "—"
        if obj.duration_ms < 1000:
            return f"{obj.duration_ms} ms"
        seconds = obj.duration_ms / 1000
        if seconds < 120:
            return f"{seconds:.1f} s"
        return f"{seconds / 60:.1f} min"
