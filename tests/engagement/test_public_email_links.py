"""A public (ingest-only) key cannot take a user over by naming its email next to a new id,
and cannot learn whether an email or an id belongs to a user: such an email is simply not
used to resolve the user, and the answer is the one an unknown email gets."""

import base64
import json

import pytest
from django.test import Client
from django.utils import timezone

from engagement.identity import Identifiers, find_user, links_by_email, without_email
from engagement.models import EndUser, Signal

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


def _untouched(lead):
    lead.refresh_from_db()
    assert lead.external_id is None and lead.anonymous_id is None
    assert lead.properties == {"phone": "+33 6 00"}


def test_identify_with_a_new_id_and_someone_elses_email_does_not_reach_the_email_owner(api_as, lead):
    response = api_as("ingest").post_json(
        "/api/v1/users", {"id": "attacker", "email": "lead@example.net", "properties": {"x": 1}}
    )
    assert response.status_code == 200 and response.json() == {"id": "ext:attacker"}
    _untouched(lead)
    attacker = EndUser.objects.get(external_id="attacker")
    assert attacker.email is None and attacker.properties == {"x": 1}


def test_the_answer_is_the_same_whether_the_email_belongs_to_someone_or_not(api_as, lead):
    client = api_as("ingest")
    taken = client.post_json("/api/v1/users", {"id": "a1", "email": "lead@example.net"})
    free = client.post_json("/api/v1/users", {"id": "a2", "email": "nobody@example.net"})
    assert (taken.status_code, free.status_code) == (200, 200)
    assert taken.json() == {"id": "ext:a1"} and free.json() == {"id": "ext:a2"}
    assert find_user(Identifiers(email="nobody@example.net")).external_id == "a2"


def test_an_anonymous_id_cannot_be_tied_to_an_email_owner_by_an_ingest_key(api_as, lead):
    response = api_as("ingest").post_json(
        "/api/v1/users", {"anonymous_id": "dev-x", "email": "lead@example.net"}
    )
    assert response.status_code == 200 and response.json() == {"id": "anon:dev-x"}
    assert find_user(Identifiers(anonymous_id="dev-x")).pk != lead.pk
    _untouched(lead)


def test_a_signal_naming_someone_elses_email_goes_to_its_own_id_and_its_siblings_are_stored(api_as, lead):
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
    assert body["accepted"] == 2 and body["rejected"] == []
    _untouched(lead)
    owners = dict(Signal.objects.values_list("name", "user__external_id"))
    assert owners == {"x": "attacker", "plain": None}
    assert Signal.objects.get(name="plain").user_id == lead.pk


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
    assert response.status_code == 200, response.content
    assert not response.json().get("dropped")
    _untouched(lead)
    assert EndUser.objects.get(external_id="attacker").email is None


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
    assert find_user(Identifiers(external_id="me")).email == "me@example.com"


def test_without_email_keeps_the_other_identifiers():
    assert without_email(Identifiers("x", "dev", "a@b.c")) == Identifiers("x", "dev", None)


def test_an_ingest_identify_never_answers_an_id_it_did_not_send(api_as):
    EndUser.objects.create(external_id="alice", email="alice@example.com", first_seen_at=timezone.now())
    body = api_as("ingest").post_json("/api/v1/users", {"email": "ALICE@example.com"}).json()
    assert "alice" not in body["id"].replace("alice@example.com", "")
