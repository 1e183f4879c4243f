import json

import pytest
from django.utils import timezone

from campaigns import secrets
from campaigns.models import MessageTemplate, TemplateVersion
from campaigns.templates_as_code import retire_template, rotate_secret
from tests.factories import EndUserFactory

from .helpers import IN_APP, make_template, queue

pytestmark = pytest.mark.django_db

WEBHOOK = {"channel": "webhook", "category": "transactional", "default_locale": "en",
           "url": "https://hooks.example.com/pulse", "variants": {"en": {"subject": "s", "text": "t"}}}


def put(client, key, doc):
    body = doc if isinstance(doc, str) else json.dumps(doc)
    return client.put(f"/api/v1/templates/{key}", body, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {client.raw_key}")


def test_putting_a_new_template_creates_it_with_version_one_recorded_with_its_actor(api_as):
    client = api_as("admin")
    response = put(client, "tips.weekly", IN_APP)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True and body["template"]["version"] == 1
    assert body["template"]["feature"] == "tips" and "signing_secret" not in body
    assert TemplateVersion.objects.get(template__key="tips.weekly").created_by == "api_key:test key"


def test_putting_the_same_document_again_makes_no_new_version(api_as):
    client = api_as("admin")
    put(client, "tips.weekly", IN_APP)
    response = put(client, "tips.weekly", IN_APP)
    assert response.status_code == 200
    assert response.json()["changed"] is False and response.json()["template"]["version"] == 1


def test_every_change_makes_a_new_version_and_messages_keep_the_one_they_were_queued_with(api_as):
    client = api_as("admin")
    put(client, "tips.weekly", IN_APP)
    user = EndUserFactory()
    first = queue(user)
    changed = {**IN_APP, "variants": {"en": {"subject": "New", "text": "New text"}}}
    response = put(client, "tips.weekly", changed)
    assert response.status_code == 200 and response.json()["template"]["version"] == 2
    second = queue(user, idempotency_key="b")
    from campaigns.models import Message

    versions = dict(Message.objects.values_list("pk", "template_version__number"))
    assert versions == {first.message_id: 1, second.message_id: 2}


def test_the_template_key_may_omit_feature_which_then_is_the_key(api_as):
    doc = {k: v for k, v in IN_APP.items() if k != "feature"}
    assert put(api_as("admin"), "help.nudge", doc).json()["template"]["feature"] == "help.nudge"


@pytest.mark.parametrize("doc, paths", [
    ({**IN_APP, "channel": "sms"}, ["channel"]),
    ({**IN_APP, "category": "spam"}, ["category"]),
    ({**IN_APP, "default_locale": "fr"}, ["variants"]),
    ({**IN_APP, "variants": {"en": {"subject": "{% if %}", "text": "{{ x|nosuchfilter }}"}}},
     ["variants.en.subject", "variants.en.text"]),
    ({**IN_APP, "variants": {"en": {"subject": "{% load static %}", "text": "{% include 'x.html' %}"}}},
     ["variants.en.subject", "variants.en.text"]),
    ({**IN_APP, "variants": {"en": {"subject": "{% debug %}", "text": "{% ssi '/etc/passwd' %}"}}},
     ["variants.en.subject", "variants.en.text"]),
    ({**IN_APP, "variants": {"en": {"text": "no subject"}}}, ["variants.en.subject"]),
    ({**IN_APP, "variants": {"en": {"subject": "s", "text": 5}}}, ["variants.en.text"]),
    ({**IN_APP, "variants": []}, ["variants"]),
    ({**IN_APP, "actions": [{"id": "Bad Id", "labels": {}}]}, ["actions.0.id", "actions.0.labels"]),
    ({**IN_APP, "actions": [{"id": "a", "labels": {"en": "A"}}, {"id": "a", "labels": {"en": "B"}}]},
     ["actions.1.id"]),
    ({**WEBHOOK, "url": "ftp://hooks.example.com/x"}, ["url"]),
    ({**WEBHOOK, "url": "javascript:alert(1)"}, ["url"]),
    ({k: v for k, v in WEBHOOK.items() if k != "url"}, ["url"]),
    ({**IN_APP, "url": "https://x.example.com"}, ["url"]),
    ({**IN_APP, "colour": "red"}, ["colour"]),
    ({}, ["channel", "category", "default_locale", "variants"]),
])
def test_an_invalid_template_is_400_with_the_path_of_every_error(api_as, doc, paths):
    response = put(api_as("admin"), "tips.weekly", doc)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert sorted({d["field"] for d in response.json()["error"]["details"]}) == sorted(paths)
    assert not MessageTemplate.objects.filter(key="tips.weekly").exists()


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '{"channel": NaN}'])
def test_a_malformed_template_body_is_400(api_as, body):
    assert put(api_as("admin"), "tips.weekly", body).status_code == 400


@pytest.mark.parametrize("key", ["Upper.Case", "a..b", "x" * 201, "sp ace"])
def test_a_malformed_template_key_is_400(api_as, key):
    response = put(api_as("admin"), key, IN_APP)
    assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "key"


def test_a_templates_channel_cannot_change(api_as):
    client = api_as("admin")
    put(client, "tips.weekly", IN_APP)
    response = put(client, "tips.weekly", {**WEBHOOK})
    assert response.status_code == 400 and response.json()["error"]["details"][0]["field"] == "channel"


def test_a_new_webhook_template_shows_its_secret_once_and_stores_it_encrypted(api_as):
    client = api_as("admin")
    body = put(client, "orders.shipped", WEBHOOK).json()
    secret = body["signing_secret"]
    assert secret.startswith("whsec_")
    stored = MessageTemplate.objects.get(key="orders.shipped").webhook_secret
    assert secret not in stored and secrets.decrypt(stored) == secret
    again = put(client, "orders.shipped", {**WEBHOOK, "url": "https://hooks.example.com/v2"}).json()
    assert "signing_secret" not in again
    read = client.get_json("/api/v1/templates/orders.shipped").content.decode()
    assert secret not in read and stored not in read


def test_a_secret_encrypted_under_another_secret_key_cannot_be_read(api_as, settings):
    put(api_as("admin"), "orders.shipped", WEBHOOK)
    settings.SECRET_KEY = "another-key-entirely"
    assert secrets.decrypt(MessageTemplate.objects.get(key="orders.shipped").webhook_secret) is None


def test_rotating_a_webhook_secret_replaces_it(api_as):
    old = put(api_as("admin"), "orders.shipped", WEBHOOK).json()["signing_secret"]
    template = MessageTemplate.objects.get(key="orders.shipped")
    new = rotate_secret(template, now=timezone.now())
    template.refresh_from_db()
    assert new != old and secrets.decrypt(template.webhook_secret) == new


def test_a_template_in_use_is_archived_not_deleted_and_an_unused_one_is_deleted():
    make_template("tips.weekly")
    make_template("tips.unused")
    queue(EndUserFactory())
    used = MessageTemplate.objects.get(key="tips.weekly")
    unused = MessageTemplate.objects.get(key="tips.unused")
    assert retire_template(used, now=timezone.now()) == "archived"
    assert retire_template(unused, now=timezone.now()) == "deleted"
    assert not MessageTemplate.objects.filter(key="tips.unused").exists()
    assert MessageTemplate.objects.get(key="tips.weekly").archived_at is not None


def test_templates_are_listed_and_read_with_a_read_key(api_as):
    make_template("a.one")
    make_template("b.two")
    client = api_as("read")
    listing = client.get_json("/api/v1/templates?limit=3").json()
    assert [t["key"] for t in listing["templates"]] == ["a.one", "b.two", "engagement.goodbye.self_select"]
    listing = client.get_json("/api/v1/templates?limit=1").json()
    assert [t["key"] for t in listing["templates"]] == ["a.one"] and listing["next_cursor"]
    rest = client.get_json(f"/api/v1/templates?limit=1&cursor={listing['next_cursor']}").json()
    assert [t["key"] for t in rest["templates"]] == ["b.two"]
    detail = client.get_json("/api/v1/templates/a.one").json()["template"]
    assert detail["version"] == 1 and detail["variants"]["de"]["subject"].startswith("Hallo")
    assert client.get_json("/api/v1/templates/nope").status_code == 404


@pytest.mark.parametrize("scopes, status", [("read", 403), ("send", 403), ("ingest", 403), ("admin", 201)])
def test_only_an_admin_key_puts_templates(api_as, scopes, status):
    assert put(api_as(scopes), "tips.weekly", IN_APP).status_code == status


def test_the_lifecycle_templates_ship_in_english_and_german():
    goodbye = MessageTemplate.objects.get(key="engagement.goodbye.self_select").current_version
    help_ = MessageTemplate.objects.get(key="engagement.help").current_version
    assert goodbye.feature == "goodbye" and help_.feature == "help"
    assert goodbye.category == help_.category == "lifecycle"
    assert set(goodbye.variants) == set(help_.variants) == {"en", "de"}
    assert [a["id"] for a in goodbye.actions] == ["confused", "busy", "no_thanks", "stop"]
    assert all(set(a["labels"]) == {"en", "de"} for a in goodbye.actions)


@pytest.mark.parametrize("doc, field", [
    ({**IN_APP, "variants": {"en": {"subject": "a\u0000b", "text": "t"}}}, "variants.en.subject"),
    ({**IN_APP, "variants": {"en": {"subject": "s", "text": "\ud800"}}}, "variants.en.text"),
])
def test_text_no_database_stores_is_a_400_at_its_path(api_as, doc, field):
    response = put(api_as("admin"), "nul.text", doc)
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == field
    assert not MessageTemplate.objects.filter(key="nul.text").exists()
