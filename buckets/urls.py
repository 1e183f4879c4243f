from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/buckets", views.buckets_collection, name="buckets"),
    # Before <slug>: "preview" is a reserved slug (definitions.RESERVED_SLUGS).
    path("api/v1/buckets/preview", views.bucket_preview, name="bucket-preview"),
    path("api/v1/buckets/<str:slug>", views.bucket_detail, name="bucket-detail"),
    path("api/v1/buckets/<str:slug>/members", views.bucket_members, name="bucket-members"),
    path("api/v1/users/<str:user_ref>/buckets", views.user_buckets, name="user-buckets"),
]
