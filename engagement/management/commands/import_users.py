from django.core.management.base import BaseCommand

from engagement.imports import FORMATS, import_users

from .import_signals import EXIT_NOTE, add_import_arguments, run_import_command


class Command(BaseCommand):
    help = (
        "Import users from a CSV (header row; columns id or external_id, anonymous_id, email, "
        "timezone, locale, tenant or tenants (separated by ; or ,), role, joined_at, "
        "reengagement_opt_out; any other column becomes a string property; empty cells are "
        "ignored) or from JSON Lines of POST /api/v1/users bodies. The format comes from the "
        "extension (.csv, .jsonl, .ndjson, .json) unless --format says otherwise. Each user "
        "appends a $identify system signal under a key derived from its line, so re-running "
        "changes nothing. " + EXIT_NOTE
    )

    def add_arguments(self, parser):
        add_import_arguments(parser)
        parser.add_argument("--format", choices=FORMATS, help="override the format the extension implies")

    def handle(self, *args, **options):
        run_import_command(self, import_users, options)
