"""The staff admin at /admin/ (Django's own), one module per model family.

Admin classes only translate forms and actions into calls of the domain
functions (`keys.create_api_key` / `revoke`, `pipeline.requeue_failed`,
`people.identify` / `group`); the rules live there. Logins go through
`login.ThrottledAdminLoginForm` (`login_throttle`). Large tables follow the
habits of `common.LargeTableAdmin`.
"""

from django.contrib import admin

from . import (  # noqa: F401 - registers the admins
    api_keys,
    calibrations,
    erasures,
    imports,
    jobs,
    lifecycle,
    signals,
    tenants,
    users,
)
from .login import ThrottledAdminLoginForm

admin.site.site_header = "Pulse admin"
admin.site.site_title = "Pulse admin"
admin.site.index_title = "Pulse"
admin.site.login_form = ThrottledAdminLoginForm  # login_throttle: per username and address
