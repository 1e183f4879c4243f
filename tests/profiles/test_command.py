"""`manage.py rebuild_profiles`: options, the summary line, and bad input."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from profiles import registry
from profiles.models import ProfileFeatureValue
from profiles.reads import get_profile
from tests.factories import EndUserFactory

from .helpers import NOW

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command("rebuild_profiles", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_the_command_rebuilds_every_live_user_and_prints_one_summary_line():
    users = [EndUserFactory() for _ in range(3)]
    EndUserFactory(deleted_at=NOW)
    line = run("--now", NOW.isoformat(), "--batch-size", "2")
    assert line.startswith("rebuild_profiles users=3 ")
    assert f"written={3 * len(registry.features())}" in line
    assert ProfileFeatureValue.objects.filter(computed_at=NOW).count() == 3 * len(registry.features())
    assert {u.pk for u in users} == set(ProfileFeatureValue.objects.values_list("user_id", flat=True))


def test_one_feature_and_stale_only_narrow_the_work():
    fresh, old = EndUserFactory(), EndUserFactory()
    get_profile(fresh, NOW)
    get_profile(old, NOW - timedelta(hours=2))
    line = run("--now", NOW.isoformat(), "--stale-only", "--feature", "signals_30d")
    assert "users=2 features=1 computed=1 written=1" in line
    assert ProfileFeatureValue.objects.get(user=old, name="signals_30d").computed_at == NOW
    assert ProfileFeatureValue.objects.get(user=old, name="top_item").computed_at == NOW - timedelta(hours=2)


@pytest.mark.parametrize(("args", "message"), [
    (["--feature", "no_such_feature"], "unknown feature no_such_feature"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "ten"], "--batch-size"),
    (["--batch-size", "9" * 30], "--batch-size"),
    (["--now", "yesterday"], "--now"),
])
def test_bad_options_are_refused_with_a_clear_message(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ProfileFeatureValue.objects.exists()
