"""OpenAPI fragment for the public landing page `/` (engagement/home.py)."""

FRAGMENT = {
    "paths": {
        "/": {
            "get": {
                "summary": "A small HTML page: Pulse is running, its version, links to the admin, "
                "this document and /healthz",
                "x-pulse-scope": None,
                "security": [],
                "parameters": [],
                "responses": {"200": {"description": "success", "content": {"text/html": {}}}},
            }
        }
    }
}
