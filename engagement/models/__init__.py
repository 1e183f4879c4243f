from .identity import EndUser, Erasure, Membership, Tenant, UserAlias
from .imports import ImportRun
from .jobs import JobRun
from .keys import ApiKey
from .lifecycle import LifecycleState, LifecycleTransition
from .logins import LoginFailure
from .loops import Calibration, CalibrationHistory, ItemEngagement
from .signal_tally import SignalTally
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
    "LifecycleState",
    "LifecycleTransition",
    "LoginFailure",
    "Membership",
    "Signal",
    "SignalQueue",
    "SignalTally",
    "Tenant",
    "UserAlias",
]
