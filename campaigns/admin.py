"""Staff pages: messages (filters, rendered content), templates with versions and a preview."""

from django.contrib import admin, messages
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from engagement.admin.common import LargeTableAdmin, NoWrites
from engagement.models import EndUser

from . import rendering
from .models import Message, MessageTemplate, Preference, TemplateVersion
from .templates_as_code import retire_template, rotate_secret


@admin.register(Message)
class MessageAdmin(NoWrites, LargeTableAdmin):
    list_display = ("id", "template", "channel", "category", "status", "skip_reason", "source",
                    "attempts", "scheduled_for", "sent_at", "read_at")
    list_filter = ("status", "channel", "skip_reason", "source", "category")
    list_select_related = ("template",)
    raw_id_fields = ("user",)
    date_hierarchy = "created_at"
    search_fields = ("=id", "=idempotency_key")
    fieldsets = (
        (None, {"fields": ("user", "template", "template_version", "channel", "category", "destination",
                           "source", "idempotency_key", "context")}),
        ("Delivery", {"fields": ("status", "skip_reason", "attempts", "scheduled_for", "next_attempt_at",
                                 "lease_expires_at", "last_error", "sent_at", "read_at", "provider_id",
                                 "created_at")}),
        ("What the user saw", {"fields": ("locale", "subject", "text", "html_preview", "rendered_actions")}),
    )
    readonly_fields = ("html_preview",)

    @admin.display(description="HTML")
    def html_preview(self, obj):
        if not obj.html:
            return "—"
        return format_html('<iframe sandbox="" srcdoc="{}" style="width:100%;height:300px;border:1px solid '
                           '#ccc"></iframe>', obj.html)


class VersionInline(NoWrites, admin.TabularInline):
    model = TemplateVersion
    fk_name = "template"
    fields = ("number", "category", "feature", "default_locale", "variants", "actions", "url",
              "created_by", "created_at")
    readonly_fields = fields
    extra = 0
    ordering = ("-number",)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    """Content changes go through templates as code (PUT /api/v1/templates/<key>) so each
    is a version with its actor; here staff read versions, preview, rotate and retire."""

    list_display = ("key", "channel", "current_version", "archived_at", "updated_at", "preview_link")
    list_filter = ("channel", "archived_at")
    search_fields = ("key",)
    readonly_fields = ("key", "channel", "current_version", "archived_at", "created_at", "updated_at")
    exclude = ("webhook_secret",)
    inlines = [VersionInline]
    actions = ["rotate_signing_secret"]

    def has_add_permission(self, request):
        return False

    def get_urls(self):
        return [path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="campaigns_messagetemplate_preview"), *super().get_urls()]

    @admin.display(description="preview")
    def preview_link(self, obj):
        return format_html('<a href="{}">preview</a>', reverse("admin:campaigns_messagetemplate_preview",
                                                               args=[obj.pk]))

    def preview_view(self, request, pk):
        template = get_object_or_404(MessageTemplate, pk=pk)
        version = template.current_version
        user, rendered, error = None, None, None
        user_id = request.GET.get("user", "")
        if user_id.isdigit():
            user = EndUser.objects.filter(pk=int(user_id)).first()
            error = None if user else "no user with this id"
        if version and user:
            rendered = rendering.render(version, user, {})
        context = {**self.admin_site.each_context(request), "opts": self.model._meta,
                   "template_obj": template, "version": version, "preview_user": user,
                   "rendered": rendered, "error": error,
                   "title": f"Preview of {template.key}"}
        return TemplateResponse(request, "admin/campaigns/messagetemplate/preview.html", context)

    @admin.action(description="Rotate the signing secret (webhook templates)")
    def rotate_signing_secret(self, request, queryset):
        for template in queryset.filter(channel="webhook"):
            secret = rotate_secret(template, now=timezone.now())
            self.message_user(request, f"New signing secret of {template.key} (shown once): {secret}",
                              messages.WARNING)

    def get_deleted_objects(self, objs, request):
        """Messages protect their template; deleting one in use archives it (delete_model)."""
        deleted, counts, _perms, _protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), []

    def delete_model(self, request, obj):
        outcome = retire_template(obj, now=timezone.now())
        if outcome == "archived":
            self.message_user(request, f"{obj.key} is in use, so it was archived, not deleted.",
                              messages.WARNING)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Preference)
class PreferenceAdmin(NoWrites, admin.ModelAdmin):
    list_display = ("user", "unsubscribed_all", "categories", "updated_at", "updated_by")
    list_filter = ("unsubscribed_all",)
    raw_id_fields = ("user",)
