"""The features Pulse ships, one module per family of computations.

Each module declares its features next to their computation (profiles/registry.py);
PULSE_PROFILE_FEATURE_MODULES lists the modules to load, so a deployment adds
its own features by adding a module there. No migration is ever needed.
"""

from datetime import timedelta

WINDOW = timedelta(days=30)


def window(now):
    """The 30 days before `now`: [now − 30 d, now], both ends included."""
    return now - WINDOW, now
