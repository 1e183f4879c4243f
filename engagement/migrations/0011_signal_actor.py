from django.db import migrations, models


class Migration(migrations.Migration):
    """Signal.actor: who caused a system signal; null on client signals (no default, no rewrite)."""

    dependencies = [
        ("engagement", "0010_jobrun_trigger"),
    ]

    operations = [
        migrations.AddField(
            model_name="signal",
            name="actor",
            field=models.CharField(blank=True, max_length=220, null=True),
        ),
    ]
