from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/users/<str:user_ref>/profile", views.user_profile, name="user-profile"),
    path("api/v1/users/<str:user_ref>/profile/rebuild", views.rebuild_user_profile,
         name="user-profile-rebuild"),
]
