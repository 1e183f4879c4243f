"""A public (ingest-only) key cannot take a user over by naming its email next to a new id."""

import base64
import json

import pytest
from django.test import Client
from django.utils import timezone

from engagement.identity import Identifiers, find_user, links_by_email
from engagement.models import EndUser

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead():
    """An email-only user, as an import of a lead list or a server-side identify leaves one."""
    return EndUser.objects.create(
        email="lead@example.net", properties={"phone": "+33 6 00"}, first_seen_at=timezone.now()
    )


def segment(key, path, body):
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return Client().post(path, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth)


def test_identify_with_a_new_id_and_someone_elses_email_is_refused_for_an_ingest_key(api_as, lead):
    response = api_as("ingest").post_json("/api/v1/users", {"id": "attacker", "email": "lead@example.net"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "identity_conflict"
    lead.refresh_from_db()
    assert lead.external_id is None and lead.properties == {"phone": "+33 6 00"}
    assert not EndUser.objects.filter(external_id="attacker").exists()


def test_an_anonymous_id_cannot_be_tied_to_an_email_owner_by_an_ingest_key(api_as, lead):
    response = api_as("ingest").post_json(
        "/api/v1/users", {"anonymous_id": "dev-x", "email": "lead@example.net"}
    )
    assert response.status_code == 409
    assert find_user(Identifiers(anonymous_id="dev-x")) is None


def test_a_signal_linking_by_email_is_rejected_alone_and_its_siblings_stored(api_as, lead):
    response = api_as("ingest").post_json(
        "/api/v1/signals",
        {
            "signals": [
                {"user": {"id": "attacker", "email": "lead@example.net"}, "name": "x"},
                {"user": {"email": "lead@example.net"}, "name": "plain"},
            ]
        },
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["accepted"] == 1 and [r["index"] for r in body["rejected"]] == [0]
    assert body["rejected"][0]["errors"][0]["code"] == "identity_conflict"
    lead.refresh_from_db()
    assert lead.external_id is None


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/identify", {"userId": "attacker", "traits": {"email": "lead@example.net"}}),
        (
            "/v1/track",
            {"userId": "attacker", "event": "x", "context": {"traits": {"email": "lead@example.net"}}},
        ),
        (
            "/v1/batch",
            {
                "batch": [
                    {"type": "identify", "userId": "attacker", "traits": {"email": "lead@example.net"}},
                    {"type": "track", "userId": "other", "event": "ok"},
                ]
            },
        ),
    ],
)
def test_segment_calls_from_a_write_key_cannot_link_by_email(make_key, lead, path, body):
    response = segment(make_key("ingest"), path, body)
    if path == "/v1/batch":
        assert response.status_code == 200 and response.json()["dropped"][0]["code"] == "identity_conflict"
    else:
        assert response.status_code == 400 and response.json()["code"] == "identity_conflict"
    lead.refresh_from_db()
    assert lead.external_id is None


def test_a_server_key_that_also_reads_links_by_email_as_before(api_as, lead):
    response = api_as("ingest,read").post_json("/api/v1/users", {"id": "u-7", "email": "lead@example.net"})
    assert response.status_code == 200
    lead.refresh_from_db()
    assert lead.external_id == "u-7"


def test_the_anonymous_to_known_flow_of_a_browser_still_works(api_as):
    client = api_as("ingest")
    client.post_json("/api/v1/users", {"anonymous_id": "dev-1", "email": "me@example.com"})
    response = client.post_json(
        "/api/v1/users", {"id": "me", "anonymous_id": "dev-1", "email": "me@example.com"}
    )
    assert response.status_code == 200
    assert find_user(Identifiers(external_id="me")).email == "me@example.com"


def test_the_same_user_named_by_its_own_id_and_email_is_no_link(api_as):
    client = api_as("ingest")
    client.post_json("/api/v1/users", {"id": "me", "email": "me@example.com"})
    assert client.post_json("/api/v1/users", {"id": "me", "email": "me@example.com"}).status_code == 200
    assert links_by_email([Identifiers("me", None, "me@example.com")]) == set()



def test_an_ingest_identify_never_answers_an_id_it_did_not_send(api_as):
    EndUser.objects.create(external_id="alice", email="alice@example.com", first_seen_at=timezone.now())
    body = api_as("ingest").post_json("/api/v1/users", {"email": "ALICE@example.com"}).json()
    assert "alice" not in body["id"].replace("alice@example.com", "")
