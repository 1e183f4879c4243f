from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from engagement.keys import create_api_key


class Command(BaseCommand):
    help = "Create an API key; the key is printed once, alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes", default="ingest",
            help="comma-separated subset of ingest,read,send,admin (admin implies the others)",
        )

    def handle(self, *args, name, scopes, **options):
        if not name.strip() or len(name) > 200:
            raise CommandError("--name must be 1 to 200 characters")
        try:
            key, raw = create_api_key(name.strip(), scopes, now=timezone.now())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(
            f"Created API key '{key.name}' (prefix {key.prefix}, scopes {','.join(key.scopes)}). "
            "Store it now: it is not shown again."
        )
        self.stdout.write(raw)
