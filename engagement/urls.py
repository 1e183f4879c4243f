from django.urls import path

from .views import calibrations, docs, engagement_items, health, lifecycle, signals, users
from .views import segment as segment_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("api/v1/openapi.json", docs.openapi_json, name="openapi"),
    path("api/v1/users", users.users_collection, name="users"),
    # A ref is one path segment (engagement/refs.py); sub-routes of a user follow it.
    path("api/v1/users/<str:user_ref>", users.user_detail, name="user-detail"),
    path("api/v1/users/<str:user_ref>/token", users.user_token, name="user-token"),
    path("api/v1/users/<str:user_ref>/engagement", engagement_items.user_engagement,
         name="user-engagement"),
    path("api/v1/users/<str:user_ref>/rank", engagement_items.user_rank, name="user-rank"),
    path("api/v1/calibrations", calibrations.calibrations, name="calibrations"),
    path("api/v1/users/<str:user_ref>/lifecycle", lifecycle.lifecycle_response, name="user-lifecycle"),
    path("api/v1/signals", signals.signals_collection, name="signals"),
    # Segment-compatible tracking API (engagement/segment.py)
    path("v1/track", segment_views.track, name="segment-track"),
    path("v1/identify", segment_views.identify, name="segment-identify"),
    path("v1/group", segment_views.group, name="segment-group"),
    path("v1/page", segment_views.page, name="segment-page"),
    path("v1/screen", segment_views.screen, name="segment-screen"),
    path("v1/alias", segment_views.alias, name="segment-alias"),
    path("v1/batch", segment_views.batch, name="segment-batch"),
    path("v1/import", segment_views.batch, name="segment-import"),
]
