"""The admin login form, throttled by `engagement.login_throttle`.

The throttle hooks in here rather than in an authentication backend: the form
is the one place that sees the request and the username before any password
is checked, so a locked login never reaches the password hasher (a right
password does not help and the timing tells nothing), and its error is what
the admin login page shows, so the lock gets its own clear message instead of
"wrong password".
"""

import math

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from .. import login_throttle
from ..client_address import client_address


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked": (
            "Too many failed logins for this username or from your address. "
            "Logging in is locked for %(minutes)s more minute(s); try again later."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        now = timezone.now()
        address = client_address(self.request)
        lock = login_throttle.current_lock(username, address, now=now)
        if lock is not None:
            minutes = max(1, math.ceil((lock.until - now).total_seconds() / 60))
            raise ValidationError(self.error_messages["locked"], code="locked", params={"minutes": minutes})
        try:
            cleaned = super().clean()
        except ValidationError:
            login_throttle.record_failure(username, address, now=now)
            raise
        login_throttle.clear_username(username)
        return cleaned
