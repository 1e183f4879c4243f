from django.db import migrations, models


class Migration(migrations.Migration):
    """The staleness panel counts stored values per feature and computed_at cutoff."""

    dependencies = [
        ('profiles', '0001_profilefeaturevalue'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='profilefeaturevalue',
            index=models.Index(fields=['name', 'computed_at'], name='profilevalue_name_computed_idx'),
        ),
    ]
