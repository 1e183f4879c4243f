from django.contrib import admin
from django.urls import include, path

from engagement.views.home import home

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("", include("engagement.urls")),
    path("", include("campaigns.urls")),
    path("", include("profiles.urls")),
    path("", include("buckets.urls")),
]

handler404 = "engagement.views.docs.not_found"
handler500 = "engagement.views.docs.server_failure"
