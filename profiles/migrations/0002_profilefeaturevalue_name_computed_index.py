from django.db import migrations, models


class Migration(migrations.Migration):
    """The staleness panel counts stored values per feature and computed_at cutoff.

    On PostgreSQL the index also carries user_id (INCLUDE), so the panel joins eligible
    users with an index-only scan. The model declares the index without it: `include`
    on the model would raise warning models.W040 at every start on SQLite, which ignores it."""

    dependencies = [
        ('profiles', '0001_profilefeaturevalue'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name='profilefeaturevalue',
                    index=models.Index(fields=['name', 'computed_at'], name='profilevalue_name_computed_idx'),
                ),
            ],
            database_operations=[
                migrations.AddIndex(
                    model_name='profilefeaturevalue',
                    index=models.Index(fields=['name', 'computed_at'], include=['user'],
                                       name='profilevalue_name_computed_idx'),
                ),
            ],
        ),
    ]
