from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "profiles"
    verbose_name = "Profiles"

    def ready(self):
        from django.db.backends.signals import connection_created

        from . import checks  # noqa: F401 - registers the feature registry check
        from .local_time import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="pulse_local_time")
