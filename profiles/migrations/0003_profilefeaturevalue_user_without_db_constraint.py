import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Stored values keep their user without a database foreign key: its deferred check was one
    lookup and row lock on engagement_enduser per value written at commit, about 10 s of the
    1.1 million values a full rebuild writes. Django still cascades ORM deletes (on_delete), and
    the erase and merge handlers remove the rows of erased and merged users."""

    dependencies = [
        ('profiles', '0002_profilefeaturevalue_name_computed_index'),
    ]

    operations = [
        migrations.AlterField(
            model_name='profilefeaturevalue',
            name='user',
            field=models.ForeignKey(db_constraint=False, db_index=False,
                                    on_delete=django.db.models.deletion.CASCADE, related_name='+',
                                    to='engagement.enduser'),
        ),
    ]
