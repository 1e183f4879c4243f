"""The criteria language of buckets: schema and validation, and the one compiler to SQL.

    errors = validate_criteria(criteria, slug="went-dormant")   # [] when valid
    users = matching_users(criteria, now)                       # a queryset of EndUser
"""

from .compiler import InvalidCriteria, matching_users
from .fingerprint import fingerprint
from .leaves import CriteriaUnavailable
from .validation import validate_criteria

__all__ = ["CriteriaUnavailable", "InvalidCriteria", "fingerprint", "matching_users", "validate_criteria"]
