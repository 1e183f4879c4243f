"""Import runs: the checkpoints of import_signals / import_users; read-only."""

from django.contrib import admin

from ..models import ImportRun
from .common import LargeTableAdmin, ReadOnlyAdmin


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin, LargeTableAdmin):
    list_display = ["kind", "path", "status", "read", "imported", "duplicates", "rejected",
                    "started_at", "finished_at"]
    list_filter = ["kind", "status"]
    search_fields = ["path"]
    ordering = ["-started_at", "-pk"]
    fields = ["kind", "format", "path", "fingerprint", "size", "status", "lines_done", "read", "imported",
              "duplicates", "rejected", "chunks", "report_path", "error", "started_at", "updated_at",
              "finished_at"]
    readonly_fields = fields
