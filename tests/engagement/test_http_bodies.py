"""HTTP correctness: chunked and gzip bodies on every endpoint, headers on 401/405, numbers too
long to parse, and the same through a real gunicorn."""

import gzip
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test.client import ClientHandler

from engagement.models import EndUser, Signal

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SIGNAL = {"user": {"id": "u1"}, "name": "app.opened"}
SEGMENT_TRACK = {"userId": "u1", "event": "App Opened"}


def wsgi_call(path, body: bytes, headers: dict, method="POST"):
    """Call Django the way gunicorn does for a chunked request: no CONTENT_LENGTH, the
    de-chunked body in wsgi.input."""
    environ = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "testserver", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http", "wsgi.version": (1, 0), "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "HTTP_TRANSFER_ENCODING": "chunked",
        **headers,
    }
    # The test client's handler: Django's own, minus closing the test's database connection.
    response = ClientHandler()(environ)
    return response.status_code, dict(response.headers), response.content


def test_a_chunked_native_body_is_read_not_taken_as_empty(make_key):
    key = make_key("ingest")
    status, _, content = wsgi_call(
        "/api/v1/signals", json.dumps(SIGNAL).encode(),
        {"CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {key}"},
    )
    assert status == 202, content
    assert Signal.objects.filter(name="app.opened").count() == 1


def test_a_chunked_gzip_segment_body_is_read(make_key):
    key = make_key("ingest")
    status, _, content = wsgi_call(
        "/v1/track", gzip.compress(json.dumps({**SEGMENT_TRACK, "writeKey": key}).encode()),
        {"CONTENT_TYPE": "application/json", "HTTP_CONTENT_ENCODING": "gzip"},
    )
    assert status == 200, content
    assert Signal.objects.filter(name="App Opened").count() == 1


def test_a_chunked_body_over_the_limit_is_413_without_reading_it_all(make_key):
    key = make_key("ingest")
    stream = io.BytesIO(b" " * (settings.PULSE_MAX_BODY_BYTES * 3))
    status, _, _ = wsgi_call("/api/v1/signals", b"", {
        "CONTENT_TYPE": "application/json", "HTTP_AUTHORIZATION": f"Bearer {key}", "wsgi.input": stream,
    })
    assert status == 413
    assert stream.tell() <= settings.PULSE_MAX_BODY_BYTES + 1


def test_the_native_api_accepts_gzip_bodies(api):
    body = gzip.compress(json.dumps({"signals": [SIGNAL, {**SIGNAL, "name": "b"}]}).encode())
    response = api.post("/api/v1/signals", body, content_type="application/json",
                        HTTP_CONTENT_ENCODING="gzip", **api._auth({}))
    assert response.status_code == 202 and response.json()["accepted"] == 2


def test_a_native_gzip_bomb_is_413_and_broken_gzip_is_400(api):
    bomb = gzip.compress(b"[" + b" " * (settings.PULSE_MAX_BODY_BYTES + 10) + b"]")
    response = api.post("/api/v1/users", bomb, content_type="application/json",
                        HTTP_CONTENT_ENCODING="gzip", **api._auth({}))
    assert response.status_code == 413
    broken = api.post("/api/v1/users", b"\x1f\x8b not gzip", content_type="application/json",
                      HTTP_CONTENT_ENCODING="gzip", **api._auth({}))
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_gzip"


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, br", "compress"])
def test_the_native_api_refuses_other_content_encodings_with_415(api, encoding):
    response = api.post("/api/v1/users", b"{}", content_type="application/json",
                        HTTP_CONTENT_ENCODING=encoding, **api._auth({}))
    assert response.status_code == 415


def test_a_405_names_the_allowed_methods(api):
    response = api.generic("PATCH", "/api/v1/users/ext:u1", "", **api._auth({}))
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, GET, HEAD"
    segment = api.get("/v1/track")
    assert segment.status_code == 405 and segment.headers["Allow"] == "POST"


@pytest.mark.parametrize("path", ["/api/v1/openapi.json", "/healthz"])
def test_public_json_routes_refuse_writes_with_a_json_405_not_a_csrf_page(client, path):
    response = client.post(path, "{}", content_type="application/json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, HEAD"


def test_head_on_a_read_route_answers_like_get_without_a_body(api, api_as):
    api_as("ingest").post_json("/api/v1/users", {"id": "u1"})
    reader = api_as("read")
    got = reader.get("/api/v1/users/ext:u1", **reader._auth({}))
    head = reader.generic("HEAD", "/api/v1/users/ext:u1", **reader._auth({}))
    assert head.status_code == got.status_code == 200
    assert head.content == b"" and head.headers["Content-Length"] == str(len(got.content))
    assert head.headers["Content-Type"] == got.headers["Content-Type"]
    assert reader.generic("HEAD", "/api/v1/users/ext:nobody", **reader._auth({})).status_code == 404
    assert api.generic("HEAD", "/api/v1/users/ext:u1").status_code == 401
    writer = api_as("ingest")
    assert writer.generic("HEAD", "/api/v1/users/ext:u1", **writer._auth({})).status_code == 403


def test_head_is_refused_where_get_is_not_served(api):
    response = api.generic("HEAD", "/api/v1/users", **api._auth({}))
    assert response.status_code == 405 and "HEAD" not in response.headers["Allow"]


def test_a_401_carries_a_challenge_for_native_and_segment_routes(client):
    native = client.get("/api/v1/users/ext:u1")
    assert native.status_code == 401 and native.headers["WWW-Authenticate"] == 'Bearer realm="pulse"'
    segment = client.post("/v1/track", json.dumps(SEGMENT_TRACK), content_type="application/json")
    assert segment.status_code == 401 and segment.headers["WWW-Authenticate"] == 'Basic realm="pulse"'


HUGE = "9" * 5000


def test_an_integer_too_long_to_parse_rejects_only_its_own_item_and_names_the_field(api):
    body = ('{"signals": [{"user": {"id": "u1"}, "name": "ok"}, '
            '{"user": {"id": "u2"}, "name": "bad", "properties": {"n": ' + HUGE + "}}]}")
    response = api.post_json("/api/v1/signals", body)
    assert response.status_code == 202
    rejected = response.json()["rejected"]
    assert [r["index"] for r in rejected] == [1]
    assert rejected[0]["errors"][0]["field"] == "properties"
    assert "4300" not in response.content.decode() and "int" not in rejected[0]["errors"][0]["message"][:3]
    assert list(Signal.objects.values_list("name", flat=True)) == ["ok"]


@pytest.mark.parametrize("literal", [HUGE, "9223372036854775808", "-9223372036854775809"])
def test_integers_outside_64_bits_are_a_400_naming_the_field(api, literal):
    response = api.post_json("/api/v1/users", '{"id": "u1", "properties": {"n": ' + literal + "}}")
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["field"] == "properties"
    assert not EndUser.objects.exists()
    as_id = api.post_json("/api/v1/users", '{"id": ' + literal + "}")
    assert as_id.status_code == 400 and as_id.json()["error"]["details"][0]["field"] == "id"


def test_the_largest_64_bit_integers_are_kept(api):
    response = api.post_json("/api/v1/users", '{"id": "u1", "properties": {"max": 9223372036854775807, '
                                              '"min": -9223372036854775808}}')
    assert response.status_code == 201
    assert EndUser.objects.get().properties == {"max": 2**63 - 1, "min": -(2**63)}


def test_a_segment_message_with_a_huge_integer_is_dropped_alone(make_key, client):
    key = make_key("ingest")
    body = ('{"writeKey": "' + key + '", "batch": [{"type": "track", "userId": "u1", "event": "ok"}, '
            '{"type": "track", "userId": "u1", "event": "bad", "properties": {"n": ' + HUGE + "}}]}")
    response = client.post("/v1/batch", body, content_type="application/json")
    assert response.status_code == 200
    assert [d["index"] for d in response.json()["dropped"]] == [1]
    assert "properties" in response.json()["dropped"][0]["message"]


# --- through a real gunicorn ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    credentials = f"{quote(db['USER'])}:{quote(db['PASSWORD'] or '')}"
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def gunicorn_url(transactional_db, tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(), "BIND": f"127.0.0.1:{port}",
           "WEB_CONCURRENCY": "1", "WEB_THREADS": "2", "PULSE_VAR_DIR": os.environ.get(
               "PULSE_VAR_DIR", str(tmp_path))}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "config.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"gunicorn exited: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not start within 30 s")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _post_chunked(port, path, body: bytes, headers: dict):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pieces = [body[i:i + 7] for i in range(0, len(body), 7)]
    conn.request("POST", path, body=iter(pieces), headers={**headers, "Transfer-Encoding": "chunked"},
                 encode_chunked=True)
    response = conn.getresponse()
    return response.status, response.read()


@pytest.mark.timeout(90)
def test_gunicorn_passes_chunked_bodies_native_and_segment_plain_and_gzip(gunicorn_url, make_key):
    key = make_key("ingest")
    native = json.dumps({"signals": [SIGNAL, {**SIGNAL, "name": "second"}]}).encode()
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    assert _post_chunked(gunicorn_url, "/api/v1/signals", native, auth)[0] == 202
    zipped = {**auth, "Content-Encoding": "gzip"}
    assert _post_chunked(gunicorn_url, "/api/v1/signals",
                         gzip.compress(json.dumps({**SIGNAL, "name": "third"}).encode()), zipped)[0] == 202
    segment = json.dumps({**SEGMENT_TRACK, "writeKey": key}).encode()
    assert _post_chunked(gunicorn_url, "/v1/track", segment, {"Content-Type": "application/json"})[0] == 200
    assert _post_chunked(gunicorn_url, "/v1/track", gzip.compress(segment.replace(b"App Opened", b"Z")),
                         {"Content-Type": "text/plain", "Content-Encoding": "gzip"})[0] == 200
    status, _ = _post_chunked(gunicorn_url, "/api/v1/signals",
                              b" " * (settings.PULSE_MAX_BODY_BYTES + 100), auth)
    assert status == 413
    names = set(Signal.objects.values_list("name", flat=True))
    assert {"app.opened", "second", "third", "App Opened", "Z"} <= names
