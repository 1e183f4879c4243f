"""Erasures: who erased which user and when; the record itself is never edited."""

from django.contrib import admin

from ..models import Erasure
from .common import LargeTableAdmin, ReadOnlyAdmin


@admin.register(Erasure)
class ErasureAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["user_id_erased", "erased_by", "erased_at", "count_summary"]
    search_fields = ["user_id_erased__exact", "erased_by"]
    search_help_text = "The erased user's id, or who erased it."
    date_hierarchy = "erased_at"
    ordering = ["-erased_at", "-pk"]
    fields = ["user_id_erased", "erased_by", "erased_at", "counts"]
    readonly_fields = fields

    @admin.display(description="counts")
    def count_summary(self, obj):
        return ", ".join(f"{key}={value}" for key, value in sorted((obj.counts or {}).items()))
