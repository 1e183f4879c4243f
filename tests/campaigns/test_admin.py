import pytest
from django.urls import reverse

from campaigns.models import MessageTemplate
from tests.factories import EndUserFactory

from .helpers import deliver, make_template, queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(now):
    make_template()
    user = EndUserFactory(locale="de", properties={"name": "Kai"})
    queued = queue(user, context={"plan": "team"})
    deliver(now)
    return user, queued.message_id


@pytest.mark.parametrize("params", [{}, {"status": "sent"}, {"channel": "in_app"},
                                    {"skip_reason": "frequency_cap"}, {"source": "api"}])
def test_the_message_list_filters_by_status_channel_skip_reason_and_source(admin_client, sent, params):
    response = admin_client.get(reverse("admin:campaigns_message_changelist"), params)
    assert response.status_code == 200


def test_a_message_page_shows_the_rendered_content(admin_client, sent):
    _, message_id = sent
    page = admin_client.get(reverse("admin:campaigns_message_change", args=[message_id])).content.decode()
    assert "Hallo Kai" in page and "Tarif: team" in page


def test_a_template_page_lists_versions_and_previews_for_a_chosen_user(admin_client, sent):
    user, _ = sent
    make_template(variants={"en": {"subject": "v2 {{ user.properties.name }}", "text": "t"}})
    template = MessageTemplate.objects.get(key="tips.weekly")
    page = admin_client.get(reverse("admin:campaigns_messagetemplate_change", args=[template.pk]))
    assert page.status_code == 200 and "v2 {{ user.properties.name }}" in page.content.decode()
    preview = admin_client.get(reverse("admin:campaigns_messagetemplate_preview", args=[template.pk]),
                               {"user": user.pk}).content.decode()
    assert "v2 Kai" in preview
    missing = admin_client.get(reverse("admin:campaigns_messagetemplate_preview", args=[template.pk]),
                               {"user": 999999}).content.decode()
    assert "no user with this id" in missing


def test_deleting_a_template_in_use_in_the_admin_archives_it(admin_client, sent):
    template = MessageTemplate.objects.get(key="tips.weekly")
    admin_client.post(reverse("admin:campaigns_messagetemplate_delete", args=[template.pk]), {"post": "yes"})
    template.refresh_from_db()
    assert template.archived_at is not None


def test_the_user_page_shows_preferences_and_the_inbox(admin_client, sent):
    user, _ = sent
    page = admin_client.get(reverse("admin:engagement_enduser_change", args=[user.pk])).content.decode()
    assert "Message preferences" in page and "In-app inbox" in page and "Hallo Kai" in page
