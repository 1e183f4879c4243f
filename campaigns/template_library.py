"""The only tags and filters message templates may use: Django's defaults without the
ones that reach outside the template (`load`, `include`, `extends`, `debug`, `url`, `ssi`)."""

from django.template import Library, defaultfilters, defaulttags

FORBIDDEN_TAGS = {"load", "include", "extends", "block", "debug", "ssi", "url", "csrf_token"}

register = Library()
register.tags.update({name: tag for name, tag in defaulttags.register.tags.items()
                      if name not in FORBIDDEN_TAGS})
register.filters.update(defaultfilters.register.filters)
