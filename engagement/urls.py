from django.urls import path

from .views import docs, health, signals, users

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/openapi.json", docs.openapi_json, name="openapi"),
    path("api/v1/users", users.users_collection, name="users"),
    path("api/v1/users/<path:user_ref>", users.user_detail, name="user-detail"),
    path("api/v1/signals", signals.signals_collection, name="signals"),
]
