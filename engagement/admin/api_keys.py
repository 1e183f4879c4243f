"""API keys: created through `engagement.keys.create_api_key`, the raw key shown once.

The add form asks for a name and scopes. The key is shown on the page that
answers the POST, with `Cache-Control: no-store`, and nowhere else: it is not
put in a message (messages live in a cookie or the session), a log entry or
the database, which holds only its SHA-256. Keys are revoked, never deleted,
so their use stays traceable; the hash and prefix are never editable.
"""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone

from ..keys import create_api_key, revoke
from ..models import ApiKey
from ..models.keys import SCOPES

SCOPE_HELP = {
    "ingest": "send signals and identify users; reads nothing back (safe inside client apps)",
    "read": "read users, signals and derived state",
    "send": "act for users on the server side: send messages, mint user tokens, lifecycle answers",
    "admin": "everything, including key and data management",
}


class ApiKeyAddForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope} — {SCOPE_HELP.get(scope, '')}") for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        initial=["ingest"],
    )

    class Meta:
        model = ApiKey
        fields = ["name"]


class ActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "scope_list", "created_at", "last_used_at", "revoked_at", "active"]
    list_filter = [ActiveFilter]
    search_fields = ["name", "=prefix"]
    search_help_text = "Part of the key's name, or its exact prefix."
    ordering = ["-created_at", "-pk"]
    actions = ["revoke_selected"]
    readonly_fields = ["prefix", "scope_list", "created_at", "last_used_at", "revoked_at", "active"]

    @admin.display(description="scopes")
    def scope_list(self, obj):
        return ", ".join(obj.scopes or [])

    @admin.display(description="active", boolean=True)
    def active(self, obj):
        return obj.revoked_at is None

    # --- forms --------------------------------------------------------------

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["name", "scopes"]})]
        return [(None, {"fields": ["name", *self.readonly_fields]})]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def add_view(self, request, form_url="", extra_context=None):
        # Saving always leads to the page that shows the key once.
        extra_context = {
            **(extra_context or {}), "show_save_and_add_another": False, "show_save_and_continue": False,
        }
        return super().add_view(request, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        key, raw = create_api_key(
            form.cleaned_data["name"], form.cleaned_data["scopes"], now=timezone.now()
        )
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(key, field.attname))
        obj._state.adding, obj._state.db = False, key._state.db
        # Kept on this request's object only, for response_add below.
        obj._raw_key = raw

    def response_add(self, request, obj, post_url_continue=None):
        raw = getattr(obj, "_raw_key", None)
        if raw is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "title": "API key created",
            "opts": self.opts,
            "key": obj,
            "raw_key": raw,
        }
        response = TemplateResponse(request, "admin/engagement/apikey/key_created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    # --- actions ------------------------------------------------------------

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request, queryset):
        count = revoke(queryset, now=timezone.now())
        self.message_user(
            request, f"Revoked {count} key{'' if count == 1 else 's'}.", messages.SUCCESS
        )

    def has_delete_permission(self, request, obj=None):
        return False
