"""`GET /`: a small public page saying Pulse is running, with links to what it serves.

Public, so it shows nothing but the version: no settings, no counts.
"""

from django.shortcuts import render
from django.views.decorators.http import require_safe

from .version import pulse_version


@require_safe
def home(request):
    return render(request, "pulse/home.html", {"version": pulse_version()})
