"""Staff define and edit buckets here; the editor previews the criteria live as they are typed.

The form only translates: `definitions.clean_definition` checks the definition
(errors at their paths are shown on the criteria field), `apply_definition`
saves it with the staff actor, and the preview fragment is `preview.preview`
rendered through htmx (django-htmx ships htmx.js as a static file).
"""

import json

from django import forms
from django.contrib import admin
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import stats
from .charts import sparkline
from .definitions import BucketInvalid, apply_definition, clean_definition, duration_text
from .index_version import bump_version
from .models import Bucket, BucketMembership, BucketReaction, BucketTransition
from .preview import PreviewInvalid, preview
from .reaction_rules import clean_reactions

FIELDS = ("slug", "name", "description", "kind", "criteria", "enabled", "entry_limit", "entry_period")


class CriteriaField(forms.JSONField):
    """JSON text; no criteria show as an empty box rather than `null`."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class BucketForm(forms.ModelForm):
    criteria = CriteriaField(required=False, widget=forms.Textarea(attrs={
        "rows": 14, "cols": 90, "spellcheck": "false", "class": "vLargeTextField pulse-criteria"}))

    class Meta:
        model = Bucket
        fields = FIELDS

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        definition = {key: data.get(key) for key in FIELDS if key in self.fields}
        definition["description"] = definition.get("description") or ""
        period = definition.pop("entry_period", None)
        limit = {"kind": definition.pop("entry_limit", None) or "always"}
        if period:
            limit["period"] = duration_text(period)
        definition["entry_limit"] = limit
        current = self.instance.slug if self.instance.pk else None
        try:
            self.definition = clean_definition(definition, slug=current)
        except BucketInvalid as exc:
            for error in exc.errors:
                self._add_definition_error(error)
        return data

    def _add_definition_error(self, error: dict) -> None:
        """`criteria.all[1].within` is shown on the criteria field, its path leading the message."""
        field = error["field"].split(".", 1)[0].split("[", 1)[0]
        message = error["message"] if field == error["field"] else f"{error['field']}: {error['message']}"
        self.add_error(field if field in self.fields else None, message)


class ReactionForm(forms.ModelForm):
    """One reaction, checked by the same rules as the API (templates exist and fit)."""

    class Meta:
        model = BucketReaction
        fields = ("key", "on", "reasons", "action", "target")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        raw = {"id": data.get("key"), "on": data.get("on"),
               "action": {data.get("action"): data.get("target")}}
        if data.get("reasons"):
            raw["reasons"] = data["reasons"]
        errors: list = []
        clean_reactions([raw], errors)
        for error in errors:
            self.add_error(None, f"{error['field'].removeprefix('reactions[0].')}: {error['message']}")
        return data


class ReactionInline(admin.TabularInline):
    model = BucketReaction
    form = ReactionForm
    extra = 0
    fields = ("key", "on", "reasons", "action", "target", "position")


@admin.register(Bucket)
class BucketAdmin(admin.ModelAdmin):
    form = BucketForm
    inlines = [ReactionInline]
    list_display = ("slug", "name", "kind", "enabled", "updated_at", "updated_by")
    list_filter = ("kind", "enabled")
    search_fields = ("slug", "name")
    readonly_fields = ("criteria_fingerprint", "created_at", "created_by", "updated_at", "updated_by",
                       "last_error")
    change_form_template = "admin/buckets/bucket/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "slug") if obj is not None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        widget = form.base_fields["criteria"].widget
        widget.attrs.update({
            "hx-post": reverse("admin:buckets_bucket_preview"),
            "hx-trigger": "input changed delay:400ms, load",
            "hx-target": "#bucket-preview",
            "hx-include": "closest form",
        })
        return form

    def get_list_display(self, request):
        """Size and the 14-day chart, read for the whole page in two queries."""
        cache: dict = {}

        def page_stats():
            if not cache:
                ids = list(Bucket.objects.values_list("pk", flat=True))
                cache["sizes"] = stats.sizes(ids)
                cache["charts"] = stats.daily_counts(ids, now=timezone.now())
            return cache

        def size(obj):
            return page_stats()["sizes"].get(obj.pk, 0)

        def last_14_days(obj):
            return sparkline(page_stats()["charts"].get(obj.pk, []))

        def members(obj):
            query = f"?bucket__id__exact={obj.pk}"
            url = reverse("admin:buckets_bucketmembership_changelist") + query
            transitions = reverse("admin:buckets_buckettransition_changelist") + query
            return format_html('<a href="{}">members</a> · <a href="{}">transitions</a>', url, transitions)

        size.short_description = "size"
        last_14_days.short_description = "entered / left, 14 days"
        members.short_description = "history"
        return ("slug", "name", "kind", "enabled", size, last_14_days, members, "updated_at")

    def save_model(self, request, obj, form, change):
        actor = f"staff:{request.user.get_username()}"
        apply_definition(obj, form.definition, actor=actor, now=timezone.now(), reactions=False)

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            bump_version()  # reactions are part of what workers cache

    def get_urls(self):
        preview_url = path("preview/", self.admin_site.admin_view(self.preview_view),
                           name="buckets_bucket_preview")
        return [preview_url, *super().get_urls()]

    def preview_view(self, request):
        """The fragment under the criteria: N users match now and a sample, or the errors."""
        context = {"errors": [], "result": None}
        if request.method != "POST":
            context["errors"] = [{"field": "", "message": "send the criteria with POST"}]
        elif request.POST.get("kind") == Bucket.Kind.MANUAL:
            context["manual"] = True
        else:
            context.update(_preview(request.POST.get("criteria", "")))
        return TemplateResponse(request, "admin/buckets/bucket/preview.html", context)


def _preview(text: str) -> dict:
    if not text.strip():
        return {"errors": [], "result": None, "empty": True}
    try:
        criteria = json.loads(text)
    except ValueError as exc:
        return {"errors": [{"field": "criteria", "message": f"not valid JSON yet: {exc}"}], "result": None}
    try:
        return {"errors": [], "result": preview(criteria, now=timezone.now())}
    except PreviewInvalid as exc:
        return {"errors": exc.errors, "result": None}


class ReadOnlyAdmin(admin.ModelAdmin):
    """History is written by the rules, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BucketMembership)
class BucketMembershipAdmin(ReadOnlyAdmin):
    list_display = ("bucket", "user", "status", "entered_at", "left_at", "leave_reason", "entry_count",
                    "source")
    list_filter = ("status", "leave_reason", "source", "bucket")
    list_select_related = ("bucket", "user")
    raw_id_fields = ("user",)
    date_hierarchy = "entered_at"


@admin.register(BucketTransition)
class BucketTransitionAdmin(ReadOnlyAdmin):
    list_display = ("bucket", "user", "kind", "entry_count", "reason", "source", "occurred_at", "realtime",
                    "fires", "dispatched_at")
    list_filter = ("kind", "fires", "realtime", "bucket")
    list_select_related = ("bucket", "user")
    raw_id_fields = ("user", "membership")
    date_hierarchy = "occurred_at"
