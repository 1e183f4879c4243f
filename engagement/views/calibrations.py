"""`/api/v1/calibrations?tenant=<key>`: what the tuning jobs learned for one tenant."""

from ..api import ApiError, api_view, json_response
from ..models import Calibration, Tenant


@api_view({"GET": "read"})
def calibrations(request):
    key = request.GET.get("tenant", "")
    if not key.strip() or len(key) > 200 or "\x00" in key:
        raise ApiError(400, "invalid_request", "give the tenant's key: ?tenant=<key>",
                       [{"field": "tenant", "message": "is required (at most 200 characters)"}])
    tenant = Tenant.objects.filter(key=key).first()
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    rows = Calibration.objects.filter(tenant=tenant).order_by("key")
    return json_response({
        "tenant": tenant.key,
        "calibrations": [
            {"key": c.key, "value": c.value, "sample_size": c.sample_size,
             "window_days": c.window_days, "computed_at": c.computed_at.isoformat()}
            for c in rows
        ],
    })
