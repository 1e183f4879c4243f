from django.apps import AppConfig


class EngagementConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "engagement"
    verbose_name = "Engagement"

    def ready(self):
        from django.core import checks

        from .checks import check_schedules

        checks.register(check_schedules)
