from .identity import EndUser, Erasure, Membership, Tenant, UserAlias
from .imports import ImportRun
from .jobs import JobRun
from .keys import ApiKey
from .logins import LoginFailure
from .loops import Calibration, CalibrationHistory, ItemEngagement
from .signals import Signal, SignalQueue

__all__ = [
    "ApiKey",
    "Calibration",
    "CalibrationHistory",
    "EndUser",
    "Erasure",
    "ImportRun",
    "ItemEngagement",
    "JobRun",
    "LoginFailure",
    "Membership",
    "Signal",
    "SignalQueue",
    "Tenant",
    "UserAlias",
]
