"""Tenants: created on first use by identify/group calls, so never added or deleted here.

Staff may fix a tenant's display name and traits, through
`tenant_changes.update_tenant`, which records a `$group` signal per member
with `staff:<username>` as the actor. The member count is shown on the
change page only (one indexed COUNT), never per row of the list.
"""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from ..models import Membership, Tenant
from ..tenant_changes import update_tenant
from .common import LargeTableAdmin, staff_actor


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["name", "traits"]

    def clean_traits(self):
        value = self.cleaned_data.get("traits")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Traits must be a JSON object.")
        return value


@admin.register(Tenant)
class TenantAdmin(LargeTableAdmin):
    form = TenantForm
    list_display = ["key", "name", "created_at"]
    search_fields = ["^key", "name"]
    search_help_text = "The start of a tenant key, or part of its name."
    ordering = ["key"]
    fields = ["key", "name", "traits", "created_at", "members"]
    readonly_fields = ["key", "created_at", "members"]

    @admin.display(description="members")
    def members(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        count = Membership.objects.filter(tenant=obj).count()
        url = reverse("admin:engagement_enduser_changelist") + f"?tenant={obj.pk}"
        return format_html('<a href="{}">{} user{}</a>', url, count, "" if count == 1 else "s")

    def save_model(self, request, obj, form, change):
        """Through the domain function, which records the change; never a bare save."""
        update_tenant(
            Tenant.objects.get(pk=obj.pk),
            name=form.cleaned_data["name"],
            traits=form.cleaned_data["traits"],
            actor=staff_actor(request),
            now=timezone.now(),
        )

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
