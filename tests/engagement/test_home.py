"""`GET /`: the public page saying what is running (engagement/views/home.py)."""

import re

import pytest

from engagement.version import pulse_version
from tests.factories import EndUserFactory


def test_the_home_page_says_pulse_is_running_and_its_version(client, db):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "Pulse is running" in response.text
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", pulse_version())
    assert f"Version {pulse_version()}" in response.text


@pytest.mark.parametrize("link", ["/admin/", "/api/v1/openapi.json", "/healthz"])
def test_the_home_page_links_what_pulse_serves(client, db, link):
    response = client.get("/")
    assert f'href="{link}"' in response.text
    assert client.get(link).status_code in (200, 302)


def test_the_home_page_runs_no_script_and_sets_no_cookie(client, db):
    response = client.get("/")
    assert "<script" not in response.text.lower()
    assert "csrftoken" not in response.cookies


def test_the_home_page_shows_no_counts_or_settings(client, db, settings):
    EndUserFactory.create_batch(7, email=None)
    settings.SECRET_KEY = "a-secret-that-must-never-show-" + "x" * 20
    text = client.get("/").text
    assert settings.SECRET_KEY not in text
    assert settings.DATABASES["default"]["NAME"] not in text
    assert not re.search(r"\b7\b", text)


def test_the_home_page_answers_head_and_refuses_writes(client, db):
    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405
    assert client.delete("/").status_code == 405


def test_the_home_page_is_in_the_openapi_document_without_a_scope(client, db):
    operation = client.get("/api/v1/openapi.json").json()["paths"]["/"]["get"]
    assert operation["x-pulse-scope"] is None
    assert operation["security"] == []
