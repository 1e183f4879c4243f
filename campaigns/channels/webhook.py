"""Signed webhooks per the Standard Webhooks specification.

The body is JSON (message id, template, user ref, rendered content, context);
the headers `webhook-id` (the message's stable id), `webhook-timestamp` and
`webhook-signature` are made with the `standardwebhooks` library, so
receivers verify with it. The target's host is resolved once and the
connection goes to that address, so a name cannot point at a private address
between the check and the request (DNS rebinding). Private, loopback,
link-local and reserved addresses are refused unless PULSE_WEBHOOK_ALLOW_PRIVATE.
5xx answers, timeouts and connection failures are retried; anything else fails.
"""

import http.client
import ipaddress
import json
import socket
import ssl
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from standardwebhooks import Webhook

from engagement.refs import canonical_ref

from .. import secrets
from . import Channel, Outcome, message_ref

USER_AGENT = "Pulse-Webhooks/1"


class RefusedTarget(Exception):
    pass


def resolve_target(host: str, port: int) -> str:
    """One address for `host`; RefusedTarget when any address it has is not public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OSError(f"cannot resolve the webhook host: {type(exc).__name__}") from None
    addresses = [info[4][0] for info in infos]
    if not settings.PULSE_WEBHOOK_ALLOW_PRIVATE:
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if ip.version == 6 and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            if not ip.is_global or ip.is_multicast:
                raise RefusedTarget("the webhook target is a private, loopback or link-local address")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def payload(message, rendered) -> dict:
    return {
        "id": message_ref(message),
        "template": message.template.key,
        "template_version": message.template_version.number,
        "user": canonical_ref(message.user),
        "locale": rendered.locale,
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "actions": rendered.actions,
        "context": message.context,
    }


def signed_headers(secret: str, msg_id: str, body: str, now: datetime) -> dict:
    timestamp = datetime.fromtimestamp(int(now.timestamp()), tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, timestamp, body),
    }


class WebhookChannel(Channel):
    name = "webhook"

    def send(self, message, rendered, *, now: datetime | None = None) -> Outcome:
        secret = secrets.decrypt(message.template.webhook_secret)
        if not secret:
            return Outcome(ok=False, error="the template's signing secret cannot be decrypted")
        url = urlsplit(message.destination)
        if url.scheme not in ("http", "https") or not url.hostname:
            return Outcome(ok=False, error="the destination is not an http(s) URL")
        port = url.port or (443 if url.scheme == "https" else 80)
        body = json.dumps(payload(message, rendered), separators=(",", ":"), ensure_ascii=False)
        headers = {
            "Content-Type": "application/json", "User-Agent": USER_AGENT,
            **signed_headers(secret, message_ref(message), body, now or datetime.now(tz=UTC)),
        }
        try:
            address = resolve_target(url.hostname, port)
            status = self._post(url, port, address, body, headers)
        except RefusedTarget as exc:
            return Outcome(ok=False, error=str(exc))
        except TimeoutError:
            return Outcome(ok=False, error="the webhook timed out", retryable=True)
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(ok=False, error=f"connection failed: {type(exc).__name__}", retryable=True)
        if 200 <= status < 300:
            return Outcome(ok=True, provider_id=message_ref(message))
        return Outcome(ok=False, error=f"the receiver answered HTTP {status}", retryable=status >= 500)

    def _post(self, url, port, address, body: str, headers: dict) -> int:
        cls = _PinnedHTTPSConnection if url.scheme == "https" else _PinnedHTTPConnection
        connection = cls(url.hostname, port, address, settings.PULSE_WEBHOOK_TIMEOUT)
        try:
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            connection.request("POST", path, body=body.encode(), headers=headers)
            response = connection.getresponse()
            response.read(64 * 1024)
            return response.status
        finally:
            connection.close()
