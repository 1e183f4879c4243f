import logging

import pytest

from campaigns.rendering import pick_locale, render
from tests.factories import EndUserFactory

from .helpers import make_template

pytestmark = pytest.mark.django_db
VARIANTS = {"en": {}, "de": {}, "pt-BR": {}}


@pytest.mark.parametrize("locale, picked", [
    ("de-AT", "de"), ("de", "de"), ("DE_at", "de"), ("pt-BR", "pt-BR"), ("pt_br", "pt-BR"),
    ("pt-PT", "en"), ("fr-FR", "en"), ("", "en"),
])
def test_the_variant_is_the_users_locale_then_its_language_then_the_default(locale, picked):
    assert pick_locale(VARIANTS, locale, "en") == picked


def test_rendering_uses_the_user_the_context_and_the_users_language():
    version = make_template().version
    user = EndUserFactory(locale="de-AT", properties={"name": "Jo"})
    out = render(version, user, {"plan": "pro"})
    assert (out.locale, out.subject, out.text) == ("de", "Hallo Jo", "Tarif: pro")
    assert out.actions == [{"id": "ok", "label": "Gut"}]


def test_a_missing_variable_renders_empty_and_is_logged_by_name(caplog):
    version = make_template().version
    user = EndUserFactory(locale="en", properties={})
    with caplog.at_level(logging.INFO, logger="pulse.messages"):
        out = render(version, user, {})
    assert out.subject == "Hi" and out.text == "Plan: "
    line = next(r.getMessage() for r in caplog.records if "template_variable_missing" in r.getMessage())
    assert "context.plan" in line and user.email not in line


def test_html_is_autoescaped_and_text_is_not():
    version = make_template().version
    out = render(version, EndUserFactory(locale="en", properties={"name": "<i>x</i>"}), {"plan": "<script>"})
    assert out.html == "<b>&lt;script&gt;</b>"
    assert out.subject == "Hi <i>x</i>" and out.text == "Plan: <script>"
