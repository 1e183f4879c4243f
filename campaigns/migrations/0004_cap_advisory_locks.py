"""The frequency cap locks (user, category) with PostgreSQL advisory locks held for the
transaction instead of locking one `FrequencyLock` row each: a row lock writes the row, which
cost a write per capped message in every delivery batch. The table goes."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0003_delivery_hot_updates")]

    operations = [migrations.DeleteModel(name="FrequencyLock")]
