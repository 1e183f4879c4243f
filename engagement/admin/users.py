"""Users (EndUser), their memberships and the aliases merges left behind.

Everything that changes a user is a signal (docs/ARCHITECTURE.md §1): edits made here go
through `engagement.people.identify` (properties, time zone, locale,
re-engagement opt-out) and `engagement.people.group` (memberships), which
append `$identify` / `$group` signals in the same transaction. Identifiers,
merges and activity times are read-only. Merged and erased users are
view-only. Users are never added or deleted here (erasure is its own flow).
"""

from django import forms
from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from ..admin_panels import render_panels
from ..identity import KINDS, identifiers_of, normalize_email, properties_patch_between
from ..models import EndUser, Membership, Tenant, UserAlias
from ..people import group, identify
from .common import LargeTableAdmin, NoWrites, staff_actor

EDITABLE = ("properties", "timezone", "locale", "reengagement_opt_out")


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("live", "live"), ("merged", "merged"), ("erased", "erased")]

    def queryset(self, request, queryset):
        match self.value():
            case "live":
                return queryset.filter(deleted_at__isnull=True)
            case "merged":
                return queryset.filter(deleted_at__isnull=False, merged_into__isnull=False)
            case "erased":
                return queryset.filter(deleted_at__isnull=False, merged_into__isnull=True)
        return queryset


class TenantFilter(admin.SimpleListFilter):
    """Members of one tenant (`?tenant=<id>`, linked from the tenant page); no list of choices."""

    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        value = self.value()
        if not value:
            return []
        tenant = Tenant.objects.filter(pk=as_id(value)).first() if as_id(value) else None
        return [(value, str(tenant) if tenant else f"unknown tenant {value!r}")]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not as_id(value):
            return queryset.none()
        members = Membership.objects.filter(tenant_id=as_id(value)).values("user_id")
        return queryset.filter(pk__in=members)


class UserForm(forms.ModelForm):
    class Meta:
        model = EndUser
        fields = list(EDITABLE)
        help_texts = {
            "properties": "A JSON object. Saving records an $identify signal with the keys that changed.",
            "reengagement_opt_out": "The user asked not to receive re-engagement messages.",
        }

    def clean_properties(self):
        value = self.cleaned_data.get("properties")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Properties must be a JSON object.")
        return value


class MembershipInline(admin.TabularInline):
    """Existing memberships: the role may change; tenant and join date are history."""

    model = Membership
    fields = ["tenant", "role", "joined_at"]
    readonly_fields = ["tenant", "joined_at"]
    extra = 0
    can_delete = False
    ordering = ["joined_at", "pk"]
    verbose_name_plural = "memberships"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class NewMembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["tenant", "role", "joined_at"]
        help_texts = {"joined_at": "Empty: now."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["joined_at"].required = False


class NewMembershipInline(admin.TabularInline):
    """Adding the user to a tenant (through `group`); never lists existing rows."""

    model = Membership
    form = NewMembershipForm
    fields = ["tenant", "role", "joined_at"]
    raw_id_fields = ["tenant"]
    extra = 0
    can_delete = False
    verbose_name = "new membership"
    verbose_name_plural = "add to a tenant"

    def get_queryset(self, request):
        return super().get_queryset(request).none()

    def has_add_permission(self, request, obj=None):
        return _editable(obj) and obj is not None and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False


class AliasInline(NoWrites, admin.TabularInline):
    """Identifiers of users merged into this one; they keep resolving here."""

    model = UserAlias
    fields = ["kind", "value", "created_at"]
    readonly_fields = fields
    extra = 0
    verbose_name_plural = "aliases (identifiers of merged users)"


@admin.register(EndUser)
class EndUserAdmin(LargeTableAdmin):
    form = UserForm
    change_form_template = "admin/engagement/enduser/change_form.html"
    list_display = [
        "__str__", "external_id", "email", "status", "primary_tenant",
        "first_seen_at", "last_seen_at", "reengagement_opt_out",
    ]
    list_select_related = ["primary_tenant", "merged_into"]
    list_filter = [StatusFilter, "reengagement_opt_out", TenantFilter]
    search_fields = ["=external_id", "=anonymous_id", "=email", "=aliases__value"]
    search_help_text = (
        "An exact external id, anonymous id or email (also those of merged users), "
        "or #<id>."
    )
    raw_id_fields = ["primary_tenant", "merged_into"]
    readonly_fields = [
        "id", "external_id", "anonymous_id", "email", "status", "primary_tenant",
        "first_seen_at", "last_seen_at", "deleted_at", "merged_into",
    ]
    fieldsets = [
        (None, {"fields": ["id", "status", "external_id", "anonymous_id", "email"]}),
        ("Profile", {"fields": ["properties", "timezone", "locale", "reengagement_opt_out"]}),
        (
            "Activity",
            {"fields": ["primary_tenant", "first_seen_at", "last_seen_at", "deleted_at", "merged_into"]},
        ),
    ]
    inlines = [MembershipInline, NewMembershipInline, AliasInline]

    # --- list -------------------------------------------------------------

    @admin.display(description="status")
    def status(self, obj):
        if obj.deleted_at is None:
            return "live"
        if obj.merged_into_id:
            url = reverse("admin:engagement_enduser_change", args=[obj.merged_into_id])
            return format_html('merged into <a href="{}">#{}</a>', url, obj.merged_into_id)
        return "erased"

    def get_search_results(self, request, queryset, search_term):
        """Exact identifier lookups that use the live-identifier indexes.

        Merged and erased users hold no identifiers (merges move them to
        aliases, erasure removes them), so only live users can match directly;
        an alias finds the user it now belongs to.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        email = normalize_email(term)
        # Aliases first (one index lookup), so the user query stays an OR of index scans.
        alias_user_ids = list(
            UserAlias.objects.filter(kind__in=KINDS, value__in={term, email}).values_list(
                "user_id", flat=True
            )
        )
        query = Q(deleted_at__isnull=True) & (
            Q(external_id=term) | Q(anonymous_id=term) | Q(email=email)
        )
        if alias_user_ids:
            query |= Q(pk__in=alias_user_ids)
        if as_id(term.removeprefix("#")):
            query |= Q(pk=as_id(term.removeprefix("#")))
        return queryset.filter(query), False

    # --- permissions --------------------------------------------------------

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return _editable(obj) and super().has_change_permission(request, obj)

    # --- page ---------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["pulse_panels"] = render_panels(obj, request)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        """Apply the edit through identify(), which records a `$identify` signal."""
        changed = [name for name in EDITABLE if name in form.changed_data]
        if not changed:
            return
        current = EndUser.objects.get(pk=obj.pk)
        kwargs = {}
        if "properties" in changed:
            patch = properties_patch_between(current.properties, form.cleaned_data["properties"])
            if patch:
                kwargs["properties"] = patch
        for name in ("timezone", "locale", "reengagement_opt_out"):
            if name in changed:
                kwargs[name] = form.cleaned_data[name]
        if kwargs:
            identify(identifiers_of(current), now=timezone.now(), actor=staff_actor(request), **kwargs)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        user = EndUser.objects.get(pk=form.instance.pk)
        new, changed = [], []
        for membership_form in formset.forms:
            if not membership_form.has_changed() or not membership_form.cleaned_data:
                continue
            data = membership_form.cleaned_data
            tenant = data["tenant"] if not membership_form.instance.pk else membership_form.instance.tenant
            _, tenant = group(
                identifiers_of(user),
                tenant.key,
                now=timezone.now(),
                actor=staff_actor(request),
                role=data.get("role", ""),
                joined_at=data.get("joined_at") or None,
            )
            membership = Membership.objects.get(user=user, tenant=tenant)
            if membership_form.instance.pk:
                changed.append((membership, membership_form.changed_data))
            else:
                new.append(membership)
        # What Django's change message reads after formset.save().
        formset.new_objects, formset.changed_objects, formset.deleted_objects = new, changed, []
        return None


def as_id(value: str) -> int | None:
    """A positive primary key from text, or None (never overflowing a bigint)."""
    if value and value.isascii() and value.isdigit() and len(value) < 19:
        return int(value) or None
    return None


def _editable(user) -> bool:
    return user is None or user.deleted_at is None
