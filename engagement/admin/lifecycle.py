"""Lifecycle states (read-only list) and the lifecycle overview page."""

from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from ..loops.lifecycle_overview import chart, users_per_state
from ..models import LifecycleState, LifecycleTransition
from .common import LargeTableAdmin, ReadOnlyAdmin


@admin.register(LifecycleState)
class LifecycleStateAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["user", "state", "last_activity_at", "changed_at", "goodbye_expires_at", "remind_at"]
    list_filter = ["state"]
    raw_id_fields = ["user"]
    ordering = ["-changed_at"]

    def get_urls(self):
        overview = path("overview/", self.admin_site.admin_view(self.overview_view),
                        name="engagement_lifecyclestate_overview")
        return [overview, *super().get_urls()]

    def overview_view(self, request):
        context = {
            **self.admin_site.each_context(request),
            "title": "Lifecycle overview",
            "opts": self.model._meta,
            "states": users_per_state(),
            "chart": chart(timezone.now()),
        }
        return TemplateResponse(request, "admin/engagement/lifecyclestate/overview.html", context)


@admin.register(LifecycleTransition)
class LifecycleTransitionAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["at", "user", "from_state", "to_state", "trigger", "actor", "job_kind"]
    list_filter = ["trigger", "to_state"]
    raw_id_fields = ["user", "job_run"]
    date_hierarchy = "at"
    ordering = ["-at", "-pk"]
