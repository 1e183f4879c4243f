"""Staff define and edit buckets here; the editor previews the criteria live as they are typed.

The form only translates: `definitions.clean_definition` checks the definition
(errors at their paths are shown on the criteria field), `apply_definition`
saves it with the staff actor, and the preview fragment is `preview.preview`
rendered through htmx (django-htmx ships htmx.js as a static file).
"""

import json

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from .definitions import BucketInvalid, apply_definition, clean_definition
from .models import Bucket
from .preview import PreviewInvalid, preview

FIELDS = ("slug", "name", "description", "kind", "criteria", "enabled")


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


@admin.register(Bucket)
class BucketAdmin(admin.ModelAdmin):
    form = BucketForm
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

    def save_model(self, request, obj, form, change):
        actor = f"staff:{request.user.get_username()}"
        apply_definition(obj, form.definition, actor=actor, now=timezone.now())

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
