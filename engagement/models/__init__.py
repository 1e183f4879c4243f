from .identity import EndUser, Erasure, Membership, Tenant, UserAlias
from .imports import ImportRun
from .jobs import JobRun
from .keys import ApiKey
from .lifecycle import LifecycleState, LifecycleTransition
from .logins import LoginFailure
from .signals import Signal, SignalQueue

__all__ = [
    "ApiKey",
    "EndUser",
    "Erasure",
    "ImportRun",
    "JobRun",
    "LifecycleState",
    "LifecycleTransition",
    "LoginFailure",
    "Membership",
    "Signal",
    "SignalQueue",
    "Tenant",
    "UserAlias",
]
