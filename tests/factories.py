"""factory-boy factories shared by every app's tests."""

import factory
from django.utils import timezone

from engagement.models import EndUser, Membership, Signal, Tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    key = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.Sequence(lambda n: f"Tenant {n}")
    created_at = factory.LazyFunction(timezone.now)


class EndUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EndUser

    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_seen_at = factory.LazyFunction(timezone.now)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(EndUserFactory)
    tenant = factory.SubFactory(TenantFactory)
    joined_at = factory.LazyFunction(timezone.now)


class SignalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Signal

    user = factory.SubFactory(EndUserFactory)
    name = "app.opened"
    occurred_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    source = Signal.Source.API

    @factory.post_generation
    def state(obj, create, extracted, **kwargs):
        """state="pending" (default) queues it for the drain; "failed" marks it failed."""
        from engagement.pipeline import enqueue

        if not create:
            return
        state = extracted or Signal.State.PENDING
        if state == Signal.State.PENDING:
            enqueue([obj.pk])
        elif state == Signal.State.FAILED:
            obj.failed_at = obj.failed_at or timezone.now()
            obj.error = obj.error or "ValueError: boom"
            Signal.objects.filter(pk=obj.pk).update(failed_at=obj.failed_at, error=obj.error)
