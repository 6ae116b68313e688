"""The stage field: a django-fsm key field (a foreign key to `Stage`) that cannot be assigned directly.

django-fsm's own `FSMKeyField` makes `opportunity.stage` return the raw id and leaves `stage_id`
writable, so its `protected=True` does not protect anything. `StageField` fixes both:

- `opportunity.stage` is the `Stage` row (Django's usual foreign-key descriptor, cached);
- once an opportunity is loaded or built, assigning `opportunity.stage = ...` or
  `opportunity.stage_id = ...` raises `AttributeError`; only the `@transition` methods move it
  (django-fsm writes the state through `set_state`, which bypasses the descriptors);
- `refresh_from_db` still works (django-fsm's `FSMModelMixin` lifts the protection while reloading).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.fields.related_descriptors import (
    ForeignKeyDeferredAttribute,
    ForwardManyToOneDescriptor,
)
from django_fsm import FSMKeyField


class _ProtectedStageIdAttribute(ForeignKeyDeferredAttribute):
    """`stage_id`: writable once (when the instance is built or loaded), then only by transitions."""

    def __set__(self, instance: models.Model, value: Any) -> None:
        if self.field.protected and self.field.attname in instance.__dict__:
            raise AttributeError(
                f"Direct {self.field.name} modification is not allowed: use a transition "
                "(opportunities.services.opportunity_advance, ...)."
            )
        super().__set__(instance, value)


class _StageDescriptor(ForwardManyToOneDescriptor):
    """`stage`: the related `Stage` row; assignment goes through the protected `stage_id`."""


class StageField(FSMKeyField):
    descriptor_class = _ProtectedStageIdAttribute
    forward_related_accessor_class = _StageDescriptor

    def contribute_to_class(self, cls: type[models.Model], name: str, private_only: bool = False, **kwargs: Any):
        super().contribute_to_class(cls, name, private_only=private_only, **kwargs)
        # FSMFieldMixin put its own descriptor (which returns the raw id) on `stage`: put the
        # foreign-key descriptor back, so `opportunity.stage` is the Stage and assignment is checked.
        setattr(cls, self.name, self.forward_related_accessor_class(self))

    def get_state(self, instance: models.Model) -> Any:
        return instance.__dict__.get(self.attname)

    def set_state(self, instance: models.Model, state: Any) -> None:
        """Called by django-fsm after a transition: store the id and keep the cached Stage in step."""
        if isinstance(state, models.Model):
            instance.__dict__[self.attname] = state.pk
            self.set_cached_value(instance, state)
            return
        value = self.to_python(state)
        if self.is_cached(instance) and getattr(self.get_cached_value(instance), "pk", None) != value:
            self.delete_cached_value(instance)
        instance.__dict__[self.attname] = value
