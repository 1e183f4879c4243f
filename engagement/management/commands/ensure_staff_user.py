"""Make sure a staff superuser exists (used by `make run`).

Creates it with a random password shown once on the terminal, or says that it
exists and leaves its password alone. The password is never logged or stored
anywhere but as Django's password hash.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction


class Command(BaseCommand):
    help = "Create the staff superuser (default 'admin') with a random password shown once, if missing."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="")

    def handle(self, *args, username, email, **options):
        username = username.strip()
        if not username:
            raise CommandError("--username must not be empty")
        User = get_user_model()
        existing = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        if existing is None:
            password = secrets.token_urlsafe(15)
            try:
                with transaction.atomic():
                    User.objects.create_superuser(username=username, email=email, password=password)
            except IntegrityError:
                existing = User.objects.get(**{User.USERNAME_FIELD: username})
            else:
                rule = "=" * 64
                self.stdout.write(
                    f"{rule}\n"
                    f"Created the staff superuser '{username}'.\n"
                    f"  Password: {password}\n"
                    "This password is shown only this once and stored nowhere in clear.\n"
                    f"Change it any time with: manage.py changepassword {username}\n"
                    f"{rule}"
                )
                return
        self.stdout.write(f"Staff user '{username}' already exists; its password is unchanged.")
        if not (existing.is_staff and existing.is_active):
            self.stderr.write(
                f"warning: '{username}' is not an active staff member, so it cannot sign in to the admin."
            )
