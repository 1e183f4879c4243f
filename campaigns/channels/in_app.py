"""The in-app inbox: the rendered message is stored, the client app reads it through the API."""

from . import Channel, Outcome


class InAppChannel(Channel):
    name = "in_app"
    stores_only = True

    def send(self, message, rendered) -> Outcome:
        return Outcome(ok=True)
