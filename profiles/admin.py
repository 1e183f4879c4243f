"""Staff views of profiles: the stored values, a user's Rebuild profile button, the
"Rebuild profiles" action on the users list, and the staleness panel.

Rebuilding a few users happens in the request; a larger selection, and the
panel's "rebuild stale", become a `rebuild_profiles` job run on the default
queue whose progress (`cursor.done` of `cursor.total`) shows on its job-run page.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from engagement.admin.common import LargeTableAdmin, ReadOnlyAdmin, staff_actor
from engagement.models import EndUser

from . import registry
from .charts import staleness_chart
from .jobs import start_rebuild
from .models import ProfileFeatureValue
from .reads import rebuild_profile
from .refresh import rebuild
from .staleness import staleness


class FeatureFilter(admin.SimpleListFilter):
    """Choices from the registry, not a SELECT DISTINCT over the table."""

    title = "feature"
    parameter_name = "feature"

    def lookups(self, request, model_admin):
        return [(name, name) for name in registry.features()]

    def queryset(self, request, queryset):
        return queryset.filter(name=self.value()) if self.value() else queryset


@admin.register(ProfileFeatureValue)
class ProfileFeatureValueAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["user", "name", "value", "value_text", "computed_at", "invalidated_at", "generation"]
    list_filter = [FeatureFilter]
    raw_id_fields = ["user"]
    search_fields = ["=user__id"]
    change_list_template = "admin/profiles/profilefeaturevalue/change_list.html"

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("staleness/", wrap(self.staleness_view), name="profiles_staleness"),
            path("rebuild/<int:user_id>/", wrap(self.rebuild_user_view), name="profiles_rebuild_user"),
            *super().get_urls(),
        ]

    def rebuild_user_view(self, request, user_id):
        """POST from the user's page (CSRF-checked by admin_view): recompute, then show the page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("engagement.change_enduser"):
            raise PermissionDenied
        user = get_object_or_404(EndUser, pk=user_id, deleted_at__isnull=True)
        readings = rebuild_profile(user, timezone.now())
        failed = [name for name, r in readings.items() if r.error]
        if failed:
            messages.warning(request, f"Profile rebuilt, except: {', '.join(failed)}.")
        else:
            messages.success(request, f"Profile rebuilt: {len(readings)} features recomputed.")
        page = reverse("admin:engagement_enduser_change", args=[user.pk])
        return HttpResponseRedirect(f"{page}#pulse-profile")

    def staleness_view(self, request):
        now = timezone.now()
        if request.method == "POST":
            if not request.user.has_perm("engagement.change_enduser"):
                raise PermissionDenied
            run = start_rebuild(actor=staff_actor(request), now=now, scope="eligible", stale_only=True)
            _report_run(request, run)
            return HttpResponseRedirect(reverse("admin:profiles_staleness"))
        eligible, figures = staleness(now)
        context = {
            **self.admin_site.each_context(request),
            "title": "Profile staleness",
            "opts": self.model._meta,
            "eligible": eligible,
            "figures": figures,
            "chart": staleness_chart(figures),
            "now": now,
        }
        return TemplateResponse(request, "admin/profiles/staleness.html", context)


def _report_run(request, run) -> None:
    url = reverse("admin:engagement_jobrun_change", args=[run.pk])
    if run.status == "failed":
        messages.error(request, format_html(
            'The rebuild could not be queued: see <a href="{}">job run #{}</a>.', url, run.pk))
    else:
        messages.success(request, format_html(
            'Rebuild queued as <a href="{}">job run #{}</a>; its page shows the progress.', url, run.pk))


@admin.action(description="Rebuild profiles", permissions=["change"])
def rebuild_profiles_action(modeladmin, request, queryset):
    live = queryset.filter(deleted_at__isnull=True)
    limit = settings.PULSE_PROFILE_INLINE_REBUILD
    ids = list(live.order_by("pk").values_list("pk", flat=True)[: limit + 1])
    if len(ids) <= limit:
        done = rebuild(EndUser.objects.filter(pk__in=ids), timezone.now())
        level = messages.WARNING if done.failed_groups else messages.SUCCESS
        note = f" (failed: {', '.join(done.failed_groups)})" if done.failed_groups else ""
        modeladmin.message_user(request, f"Rebuilt the profiles of {done.users} users{note}.", level)
        return None
    run = start_rebuild(actor=staff_actor(request), now=timezone.now(),
                        user_ids=list(live.values_list("pk", flat=True)))
    _report_run(request, run)
    return None


def _add_user_action() -> None:
    """The users list belongs to engagement, which must not import profiles: the action is
    added to its registered ModelAdmin from here."""
    user_admin = admin.site.get_model_admin(EndUser)
    actions = list(user_admin.actions or ())
    if rebuild_profiles_action not in actions:
        user_admin.actions = [*actions, rebuild_profiles_action]


_add_user_action()
