from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/templates", views.templates_collection, name="templates"),
    path("api/v1/templates/<str:key>", views.template_detail, name="template-detail"),
    path("api/v1/messages", views.messages_collection, name="messages"),
    # ids are matched as text so a malformed one is the view's 404 after authentication
    path("api/v1/messages/<str:message_id>", views.message_detail, name="message-detail"),
    path("api/v1/messages/<str:message_id>/read", views.message_read, name="message-read"),
    path("api/v1/users/<str:user_ref>/messages", views.inbox, name="user-inbox"),
    path("api/v1/users/<str:user_ref>/preferences", views.preferences, name="user-preferences"),
]
