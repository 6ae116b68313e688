"""REST API of activities: scoped reads, and every write through activities.services (log, plan,
edit, reschedule, complete, cancel, reopen), with the same rules as the pages.

Create: without `planned_at`/`due_at` the activity is logged as done now (the quick-log); with one of
them it is planned. The Idempotency-Key header makes a retried POST return the first activity.
Activities are not deleted (DELETE: 405): a planned one is cancelled, a done one is the customer's
contact history.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from crm.api import (
    IDEMPOTENCY_HEADER,
    ScopedModelViewSet,
    StrictFieldsMixin,
    TransitionNotAllowed,
    unmet_entry,
)
from leads.models import Contact, Customer
from opportunities.models import Opportunity

from . import services
from .models import Activity, ActivityKind, ActivityStatus, Outcome

# the service refusals that are a state conflict (409), not invalid input
STATE_CODES = {"not_planned", "not_cancelled"}


def _kind_field(**kwargs) -> serializers.SlugRelatedField:
    return serializers.SlugRelatedField(slug_field="code", queryset=ActivityKind.objects.filter(is_active=True),
                                        **kwargs)


class ActivitySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """Read: the activity. Write (PATCH): kind, subject, notes, contact, duration, outcome, next step and,
    for a planned one, `planned_at` / `due_at` (a reschedule). Status and owner change only through the
    actions."""

    kind = _kind_field()
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)

    class Meta:
        model = Activity
        fields = [
            "id", "kind", "subject", "notes", "customer", "customer_name", "contact", "opportunity", "owner",
            "plan", "status", "planned_at", "due_at", "done_at", "duration_minutes", "outcome", "next_step",
            "created_by", "version", "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "customer", "customer_name", "opportunity", "owner", "plan", "status", "done_at", "created_by",
            "version", "created_at", "updated_at",
        ]


class ActivityCreateSerializer(ActivitySerializer):
    """Create: `customer` (one you see), `kind` (call, visit, meeting, email, wechat, demo, note) and
    `subject`; optionally an opportunity of that customer, an owner (managers: anyone in their teams),
    `planned_at`/`due_at` to plan it, or `done_at`/`outcome`/`follow_up_at` for a logged one."""

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    opportunity = serializers.PrimaryKeyRelatedField(queryset=Opportunity.objects.none(), required=False,
                                                     allow_null=True)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)
    done_at = serializers.DateTimeField(required=False, allow_null=True)
    follow_up_at = serializers.DateTimeField(required=False, allow_null=True, write_only=True)

    class Meta(ActivitySerializer.Meta):
        fields = [*ActivitySerializer.Meta.fields, "follow_up_at"]
        read_only_fields = ["id", "customer_name", "plan", "status", "created_by", "version", "created_at",
                            "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["customer"].queryset = Customer.objects.visible_to(request.user)
            self.fields["opportunity"].queryset = Opportunity.objects.visible_to(request.user)


class ActivityCompleteSerializer(StrictFieldsMixin, serializers.Serializer):
    done_at = serializers.DateTimeField(required=False, allow_null=True)
    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False, allow_blank=True, default="")
    next_step = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)
    notes = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)
    duration_minutes = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    follow_up_at = serializers.DateTimeField(required=False, allow_null=True)


class ActivityReopenSerializer(StrictFieldsMixin, serializers.Serializer):
    planned_at = serializers.DateTimeField(required=False, allow_null=True)


class ActivityFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=ActivityStatus.choices)
    kind = filters.CharFilter(field_name="kind__code")
    date_from = filters.DateTimeFilter(field_name="when_at", lookup_expr="gte", label="from")
    date_to = filters.DateTimeFilter(field_name="when_at", lookup_expr="lt", label="to")

    class Meta:
        model = Activity
        fields = ["status", "kind", "owner", "customer", "opportunity", "plan"]


def _call(fn, **kwargs):
    try:
        return fn(**kwargs)
    except DjangoValidationError as exc:
        if getattr(exc, "code", None) in STATE_CODES:
            detail = " ".join(exc.messages)
            raise TransitionNotAllowed(detail=detail, unmet=[unmet_entry(exc.code, detail)]) from exc
        raise


class ActivityViewSet(ScopedModelViewSet):
    """Activities you see (yours, your teams', and those on customers you own; out of scope: 404).
    No DELETE (405): cancel a planned activity; a done one stays in the contact history."""

    queryset = Activity.objects.all()
    serializer_class = ActivitySerializer
    filterset_class = ActivityFilter
    search_fields = ["subject", "notes", "customer__name"]
    ordering_fields = ["when_at", "planned_at", "done_at", "due_at", "created_at"]
    ordering = ["-when_at", "-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    conflict_actions = ("partial_update", "complete", "cancel", "reopen")

    def get_queryset(self):
        return (
            super().get_queryset().select_related("kind", "customer")
            .annotate(when_at=Coalesce("done_at", "planned_at", "due_at"))
        )

    def scope_count(self, request) -> int | None:
        """The unfiltered list's count from ActivityScopeTotal (crm.pagination; None: count the rows)."""
        return Activity.objects.scope_count(request.user)

    def get_serializer_class(self):
        if self.action == "create":
            return ActivityCreateSerializer
        return ActivitySerializer

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        key = self.request.META.get(IDEMPOTENCY_HEADER)
        common = {
            "by": self.request.user, "customer": data.pop("customer"), "kind": data.pop("kind"),
            "subject": data.pop("subject"), "notes": data.pop("notes", ""), "contact": data.pop("contact", None),
            "opportunity": data.pop("opportunity", None), "owner": data.pop("owner", None),
            "duration_minutes": data.pop("duration_minutes", None), "idempotency_key": key,
        }
        planned_at, due_at = data.pop("planned_at", None), data.pop("due_at", None)
        if planned_at is not None or due_at is not None:
            refused = sorted(name for name, value in data.items() if value not in (None, ""))
            if refused:
                raise serializers.ValidationError(
                    {name: [_("Only a logged (done) activity takes this field.")] for name in refused}
                )
        try:
            if planned_at is not None or due_at is not None:
                activity, _created = services.activity_plan(planned_at=planned_at, due_at=due_at, **common)
            else:
                activity, _created = services.activity_log(
                    done_at=data.get("done_at"), outcome=data.get("outcome", ""),
                    next_step=data.get("next_step", ""), follow_up_at=data.get("follow_up_at"), **common,
                )
        except PermissionDenied as exc:  # the customer is filtered above: only the owner can be refused
            raise serializers.ValidationError({"owner": [str(exc)]}) from exc
        serializer.instance = activity

    @transaction.atomic  # an edit and a reschedule in one PATCH: both or neither
    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        activity = serializer.instance
        times = {name: data.pop(name) for name in ("planned_at", "due_at") if name in data}
        if data:
            activity = services.activity_update(activity=activity, by=self.request.user, **data)
        if times:
            activity = _call(
                services.activity_reschedule, activity=activity, by=self.request.user,
                planned_at=times.get("planned_at", activity.planned_at), due_at=times.get("due_at", activity.due_at),
            )
        serializer.instance = self.get_queryset().get(pk=activity.pk)

    def _respond(self, activity):
        fresh = self.get_queryset().get(pk=activity.pk)
        return Response(ActivitySerializer(fresh, context=self.get_serializer_context()).data)

    @extend_schema(request=ActivityCompleteSerializer, responses=ActivitySerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """Mark a planned activity done, with its outcome (409 if it is not planned)."""
        activity = self.get_object()
        body = ActivityCompleteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._respond(_call(services.activity_complete, activity=activity, by=request.user,
                                   **body.validated_data))

    @extend_schema(request=None, responses=ActivitySerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a planned activity (409 if it is not planned)."""
        activity = self.get_object()
        return self._respond(_call(services.activity_cancel, activity=activity, by=request.user))

    @extend_schema(request=ActivityReopenSerializer, responses=ActivitySerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        """Plan a cancelled activity again (409 if it is not cancelled)."""
        activity = self.get_object()
        body = ActivityReopenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._respond(_call(services.activity_reopen, activity=activity, by=request.user,
                                   **body.validated_data))


routes = [("activities", ActivityViewSet, "activity")]
