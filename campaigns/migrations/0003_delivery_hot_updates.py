"""The claim's index in the claim's order: (next_attempt_at, id) for due messages.

With `next_attempt_at` alone, `ORDER BY next_attempt_at, id LIMIT 500` sorted every
due message at every claim (queued rows of one moment share one time), so a backlog
of N messages cost N log N per batch. (The name was given before the change was
known: updates of `status` are still not HOT, since `status` stays in the predicate
of this index and of the frequency cap's.)
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0002_lifecycle_templates")]

    operations = [
        migrations.RemoveIndex(model_name="message", name="message_due_idx"),
        migrations.AddIndex(
            model_name="message",
            index=models.Index(
                condition=models.Q(("status__in", ["queued", "sending"])),
                fields=["next_attempt_at", "id"], name="message_due_order_idx",
            ),
        ),
    ]
