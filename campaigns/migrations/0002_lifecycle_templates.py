"""Ship the two lifecycle templates the engagement loops send, in English and German."""

from django.db import migrations
from django.utils import timezone

ACTOR = "migration:campaigns.0002"

TEMPLATES = {
    "engagement.goodbye.self_select": {
        "feature": "goodbye",
        "variants": {
            "en": {
                "subject": "Should we stop checking in?",
                "text": "We have not seen you for a while. Tell us what changed and we will adjust, "
                        "or stop writing if that is what you prefer.",
            },
            "de": {
                "subject": "Sollen wir uns nicht mehr melden?",
                "text": "Wir haben Sie eine Weile nicht gesehen. Sagen Sie uns, was sich geändert hat, "
                        "dann passen wir uns an – oder wir schreiben Ihnen nicht mehr.",
            },
        },
        "actions": [
            {"id": "confused", "labels": {"en": "I got stuck", "de": "Ich kam nicht weiter"}},
            {"id": "busy", "labels": {"en": "Just busy, later", "de": "Gerade viel los, später"}},
            {"id": "no_thanks", "labels": {"en": "Not for me", "de": "Nichts für mich"}},
            {"id": "stop", "labels": {"en": "Stop these messages", "de": "Keine solchen Nachrichten mehr"}},
        ],
    },
    "engagement.help": {
        "feature": "help",
        "variants": {
            "en": {
                "subject": "Need a hand?",
                "text": "If something is in your way, reply from the app and a person will help you.",
            },
            "de": {
                "subject": "Können wir helfen?",
                "text": "Wenn Sie etwas aufhält, antworten Sie in der App – ein Mensch hilft Ihnen weiter.",
            },
        },
        "actions": [],
    },
}


def ship(apps, schema_editor):
    MessageTemplate = apps.get_model("campaigns", "MessageTemplate")
    TemplateVersion = apps.get_model("campaigns", "TemplateVersion")
    now = timezone.now()
    for key, spec in TEMPLATES.items():
        if MessageTemplate.objects.filter(key=key).exists():
            continue
        template = MessageTemplate.objects.create(key=key, channel="in_app", created_at=now, updated_at=now)
        version = TemplateVersion.objects.create(
            template=template, number=1, category="lifecycle", feature=spec["feature"], default_locale="en",
            variants=spec["variants"], actions=spec["actions"], url="", created_by=ACTOR, created_at=now,
        )
        template.current_version = version
        template.save(update_fields=["current_version"])


def unship(apps, schema_editor):
    MessageTemplate = apps.get_model("campaigns", "MessageTemplate")
    Message = apps.get_model("campaigns", "Message")
    for template in MessageTemplate.objects.filter(key__in=list(TEMPLATES)):
        if not Message.objects.filter(template=template).exists():
            MessageTemplate.objects.filter(pk=template.pk).update(current_version=None)
            template.delete()


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_messages")]
    operations = [migrations.RunPython(ship, unship)]
