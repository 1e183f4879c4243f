"""Calibrations and their history; staff roll back one change with an action.

The rows are written by the tuning jobs only; the rollback action calls
`loops.calibration.rollback`, which restores the old value and records the
rollback as a change of its own (actor `staff:<username>`).
"""

from django.contrib import admin, messages
from django.contrib.admin.options import ActionLocation
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from ..loops.calibration import NothingToRollBack, rollback
from ..models import Calibration, CalibrationHistory
from .common import LargeTableAdmin, ReadOnlyAdmin


def _job_run_link(run_id):
    if run_id is None:
        return "—"
    return format_html('<a href="{}">job run #{}</a>',
                       reverse("admin:engagement_jobrun_change", args=[run_id]), run_id)


@admin.register(Calibration)
class CalibrationAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "key", "value", "sample_size", "window_days", "computed_at", "run"]
    list_filter = ["key"]
    list_select_related = ["tenant"]
    search_fields = ["tenant__key", "key"]
    fields = ["tenant", "key", "value", "sample_size", "window_days", "computed_at", "run", "history"]
    readonly_fields = fields

    @admin.display(description="job run")
    def run(self, obj):
        return _job_run_link(obj.job_run_id)

    @admin.display(description="history")
    def history(self, obj):
        url = reverse("admin:engagement_calibrationhistory_changelist")
        return format_html('<a href="{}?tenant__id__exact={}&amp;key={}">Every change of this calibration'
                           ' &rsaquo;</a>', url, obj.tenant_id, obj.key)


class KeyFilter(admin.SimpleListFilter):
    title = "key"
    parameter_name = "key"

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request, queryset):
        return queryset.filter(key=self.value()) if self.value() else queryset


@admin.register(CalibrationHistory)
class CalibrationHistoryAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["changed_at", "tenant", "key", "old_value", "new_value", "actor", "job_kind", "run",
                    "window_start", "window_end"]
    list_filter = [KeyFilter, "job_kind", "tenant"]
    list_select_related = ["tenant"]
    date_hierarchy = "changed_at"
    fields = ["tenant", "key", "old_value", "new_value", "sample_size", "actor", "job_kind", "run",
              "window_start", "window_end", "changed_at", "rollback_of"]
    readonly_fields = fields
    actions = ["roll_back"]

    @admin.display(description="job run")
    def run(self, obj):
        return _job_run_link(obj.job_run_id)

    def get_actions(self, request, action_location=ActionLocation.CHANGE_LIST):
        # ReadOnlyAdmin forbids change; the rollback needs the change permission on Calibration.
        actions = super().get_actions(request, action_location)
        if not request.user.has_perm("engagement.change_calibration"):
            actions.pop("roll_back", None)
        return actions

    @admin.action(description="Roll back the selected change (restore its old value)")
    def roll_back(self, request, queryset):
        changes = list(queryset[:2])
        if len(changes) != 1:
            self.message_user(request, "Select exactly one change to roll back.", messages.WARNING)
            return
        try:
            done = rollback(changes[0], actor=f"staff:{request.user.get_username()}", now=timezone.now())
        except NothingToRollBack as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        self.message_user(
            request, f"{done.key} of {changes[0].tenant} is back to {done.new_value} (recorded).",
            messages.SUCCESS,
        )
