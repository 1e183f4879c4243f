"""A URLconf for tests: the real routes plus one that opts in to user tokens, as the
inbox, preferences and profile routes of later issues will."""

from django.urls import path

from config.urls import urlpatterns as real_patterns
from engagement.api import api_view, json_response, user_for_ref
from engagement.refs import canonical_ref


@api_view({"GET": "read", "POST": "send"}, user_token=("GET",))
def whoami(request, user_ref):
    user = user_for_ref(request, user_ref)
    return json_response({"user": canonical_ref(user), "actor": request.actor})


urlpatterns = [path("api/v1/users/<str:user_ref>/whoami", whoami), *real_patterns]
