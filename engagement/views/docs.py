from django.http import JsonResponse
from django.views.decorators.http import require_GET

from ..openapi import document


@require_GET
def openapi_json(request):
    return JsonResponse(document())
