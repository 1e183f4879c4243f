"""The criteria fingerprint: a hash of the criteria's canonical JSON.

Keys sorted, no whitespace, so the same criteria written in another key order
or layout have the same fingerprint; later issues compare it to tell when a
bucket's meaning changed.
"""

import hashlib
import json


def canonical_json(criteria) -> str:
    return json.dumps(criteria, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(criteria) -> str:
    """SHA-256 of the canonical JSON, hex; empty for a bucket without criteria."""
    if criteria is None:
        return ""
    return hashlib.sha256(canonical_json(criteria).encode()).hexdigest()
