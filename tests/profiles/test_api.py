"""`/api/v1/users/<user_ref>/profile` and its rebuild: shape, scopes, peek and bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from engagement import user_tokens
from profiles import registry
from profiles.models import ProfileFeatureValue
from tests.conftest import ApiClient
from tests.factories import EndUserFactory

from .helpers import signal

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    user = EndUserFactory(external_id="olivia")
    signal(user, "tip.served", timezone.now() - timedelta(hours=1))
    return user


def test_the_profile_answers_every_feature_with_its_freshness(api, user):
    response = api.get_json("/api/v1/users/olivia/profile")
    assert response.status_code == 200
    features = response.json()["features"]
    assert set(features) == set(registry.features())
    volume = features["tip_volume_30d"]
    assert set(volume) == {"value", "dtype", "computed_at", "age_seconds", "ttl_seconds", "stale"}
    assert (volume["value"], volume["dtype"], volume["ttl_seconds"]) == (1, "numeric", 3600)
    assert volume["stale"] is False
    assert features["completion_rate_30d"]["value"] is None
    assert features["completion_rate_30d"]["computed_at"] is not None


def test_peek_computes_nothing_and_marks_never_computed_values_stale(api, user):
    response = api.get_json("/api/v1/users/olivia/profile?peek=true")
    assert response.status_code == 200
    for reading in response.json()["features"].values():
        assert (reading["value"], reading["computed_at"], reading["stale"]) == (None, None, True)
    assert not ProfileFeatureValue.objects.exists()
    computed = api.get_json("/api/v1/users/olivia/profile?peek=false").json()["features"]
    assert computed["tip_volume_30d"]["value"] == 1


@pytest.mark.parametrize("query", ["peek=maybe", "peek=", "peek=TRUE", "peek=true&peek=false", "peak=true",
                                   "peek=" + "x" * 5000])
def test_a_bad_query_is_a_400_and_computes_nothing(api, user, query):
    response = api.get_json(f"/api/v1/users/olivia/profile?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert not ProfileFeatureValue.objects.exists()


def test_an_unknown_user_is_a_404_and_a_malformed_ref_a_400(api, user):
    assert api.get_json("/api/v1/users/nobody/profile").status_code == 404
    assert api.get_json("/api/v1/users/email:not-an-email/profile").status_code in (400, 404)
    assert api.get_json("/api/v1/users/b64:%%%/profile").status_code == 400


def test_a_users_own_token_reads_the_profile_but_not_anothers(user):
    raw, _ = user_tokens.mint(user, now=timezone.now())
    EndUserFactory(external_id="omar")
    client = ApiClient(raw)
    assert client.get_json("/api/v1/users/olivia/profile").status_code == 200
    assert client.get_json("/api/v1/users/omar/profile").status_code == 403
    assert client.post_json("/api/v1/users/olivia/profile/rebuild", {}).status_code == 401


def test_rebuild_needs_the_admin_scope_and_answers_the_new_profile(api_as, user):
    assert api_as("read").post_json("/api/v1/users/olivia/profile/rebuild", {}).status_code == 403
    admin = api_as("admin")
    first = admin.post_json("/api/v1/users/olivia/profile/rebuild", "")
    assert first.status_code == 200
    signal(user, "tip.served", timezone.now())
    again = admin.post_json("/api/v1/users/olivia/profile/rebuild", {})
    assert again.json()["features"]["tip_volume_30d"]["value"] == 2
    assert admin.get_json("/api/v1/users/olivia/profile/rebuild").status_code == 405


@pytest.mark.parametrize("body", [{"force": True}, "[]", "not json", '{"a": NaN}'])
def test_rebuild_refuses_a_body_that_is_not_empty(api, user, body):
    response = api.post_json("/api/v1/users/olivia/profile/rebuild", body)
    assert response.status_code == 400
    assert not ProfileFeatureValue.objects.exists()


def test_the_routes_are_in_the_openapi_document_with_their_scopes(api):
    paths = api.get_json("/api/v1/openapi.json").json()["paths"]
    assert paths["/api/v1/users/{user_ref}/profile"]["get"]["x-pulse-scope"] == "read"
    assert paths["/api/v1/users/{user_ref}/profile/rebuild"]["post"]["x-pulse-scope"] == "admin"
