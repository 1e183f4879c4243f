"""`GET /`: a small public page saying Pulse is running, with links to what it serves.

Public, so it shows nothing but the version: no settings, no counts.
"""

from django.shortcuts import render

from ..api import public_view
from ..version import pulse_version


@public_view(("GET", "HEAD"))
def home(request):
    return render(request, "pulse/home.html", {"version": pulse_version()})
