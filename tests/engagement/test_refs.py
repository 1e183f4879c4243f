"""A ref names exactly one user: the identifier as stored, one path segment, no second decoding."""

import base64
from urllib.parse import quote, unquote

import pytest

from engagement.models import EndUser
from engagement.refs import InvalidRef, canonical_ref, parse_user_ref
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db

AWKWARD_IDS = [
    " spacey",
    "spacey ",
    "%41",
    "100%",
    "a:b",
    "ext-ish:thing",
    "müller-😀",
    "日本語",
    "dot.and..dots",
    "q?x=1#frag",
    "a+b",
    "tab\there",
    "a/b",
    "/leading",
    "trailing/",
    "..",
    "email:not-an-email-ref",
]


def url_for(ref: str) -> str:
    return "/api/v1/users/" + quote(ref, safe="")


@pytest.mark.parametrize("external_id", AWKWARD_IDS)
def test_every_awkward_id_is_read_and_erased_through_its_canonical_ref_without_touching_a_neighbour(
    api, external_id
):
    target = EndUserFactory(external_id=external_id, email="target@example.com")
    near = unquote(external_id).strip()  # what a sloppy ref parser would have found instead
    neighbour = EndUserFactory(
        external_id=near if near and near != external_id else external_id + "-n",
        email="neighbour@example.com",
    )

    ref = canonical_ref(target)
    read = api.get_json(url_for(ref))
    assert read.status_code == 200, ref
    assert read.json()["email"] == "target@example.com"
    assert read.json()["id"] == ref

    erased = api.delete_json(url_for(ref))
    assert erased.status_code == 200
    assert erased.json()["internal_id"] == target.pk
    target.refresh_from_db()
    neighbour.refresh_from_db()
    assert target.deleted_at is not None
    assert neighbour.deleted_at is None and neighbour.email == "neighbour@example.com"


def test_a_leading_space_names_the_user_with_the_space_not_the_trimmed_one(api):
    spacey = EndUserFactory(external_id="spacey", email="plain@example.com")
    response = api.delete_json("/api/v1/users/%20spacey")
    assert response.status_code == 404
    spacey.refresh_from_db()
    assert spacey.deleted_at is None


def test_a_percent_sequence_is_not_decoded_a_second_time(api):
    EndUserFactory(external_id="A", email="a@example.com")
    literal = EndUserFactory(external_id="%41", email="literal@example.com")
    response = api.get_json("/api/v1/users/%2541")
    assert response.status_code == 200
    assert response.json()["internal_id"] == literal.pk


def test_a_bare_id_with_a_colon_that_is_no_prefix_is_an_external_id(api):
    user = EndUserFactory(external_id="team:42")
    assert api.get_json("/api/v1/users/team:42").json()["internal_id"] == user.pk


def test_an_external_id_that_looks_like_a_prefixed_ref_is_reached_with_ext(api):
    by_email = EndUserFactory(external_id="someone", email="x@example.com")
    tricky = EndUserFactory(external_id="email:x@example.com", email="other@example.com")
    assert api.get_json("/api/v1/users/email:x@example.com").json()["internal_id"] == by_email.pk
    assert api.get_json("/api/v1/users/ext:email:x@example.com").json()["internal_id"] == tricky.pk
    assert canonical_ref(tricky) == "ext:email:x@example.com"


def test_an_id_holding_a_slash_is_addressed_in_base64url_and_a_raw_slash_is_another_route(api):
    user = EndUserFactory(external_id="org/42")
    encoded = base64.urlsafe_b64encode(b"ext:org/42").decode().rstrip("=")
    assert canonical_ref(user) == f"b64:{encoded}"
    assert api.get_json(f"/api/v1/users/b64:{encoded}").json()["internal_id"] == user.pk
    assert api.get_json("/api/v1/users/org%2F42").status_code == 404
    assert api.get_json("/api/v1/users/org/42").status_code == 404


@pytest.mark.parametrize("kind, ref_prefix", [("anonymous_id", "anon"), ("email", "email")])
def test_users_without_an_external_id_are_named_by_their_strongest_identifier(api, kind, ref_prefix):
    value = "a/b@example.com" if kind == "email" else "device 1"
    user = EndUser.objects.create(**{kind: value}, first_seen_at=EndUserFactory().first_seen_at)
    ref = canonical_ref(user)
    assert parse_user_ref(ref) == parse_user_ref(f"{ref_prefix}:{value}")
    assert api.get_json(url_for(ref)).json()["internal_id"] == user.pk


@pytest.mark.parametrize("ref", ["", "email:", "anon:", "ext:", "b64:", "b64:!!!", "b64:" + "A" * 3,
                                 "x" * 331, "a\x00b", "b64:" + base64.urlsafe_b64encode(b"b64:eA").decode()])
def test_refs_that_can_name_no_user_are_refused(ref):
    with pytest.raises(InvalidRef):
        parse_user_ref(ref)


@pytest.mark.parametrize("path", ["/api/v1/users/x%00y", "/api/v1/users/b64:***", "/api/v1/users/email:"])
def test_a_malformed_ref_in_a_path_answers_400_without_echoing_it(api, path):
    response = api.get_json(path)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_user_ref"
    assert "***" not in response.json()["error"]["message"]


def test_identify_answers_the_canonical_ref_that_reads_the_user_back(api):
    created = api.post_json("/api/v1/users", {"id": " padded/id ", "email": "p@example.com"}).json()
    assert created["id"] == canonical_ref(EndUser.objects.get(email="p@example.com"))
    assert api.get_json(url_for(created["id"])).json()["external_id"] == " padded/id "
