from .identity import EndUser, Erasure, Membership, Tenant, UserAlias
from .imports import ImportRun
from .jobs import JobRun
from .keys import ApiKey
from .logins import LoginFailure
from .signals import Signal, SignalQueue

__all__ = [
    "ApiKey",
    "EndUser",
    "Erasure",
    "ImportRun",
    "JobRun",
    "LoginFailure",
    "Membership",
    "Signal",
    "SignalQueue",
    "Tenant",
    "UserAlias",
]
