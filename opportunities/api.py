"""REST API of the pipeline: pipelines and stages (read-only configuration), opportunities (scoped;
created, edited and moved through opportunities.services, so the API obeys the board's rules).

Pipelines and stages are read-only for everyone, administrators included: the app has no service that
creates or edits them (administrators configure them in Django admin, which also guards deactivation).
An opportunity's stage never changes in a PATCH; it moves with `POST .../transition/`.
"""

from __future__ import annotations

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from crm.api import EditConflict, ScopedModelViewSet, StrictFieldsMixin, TransitionNotAllowed
from leads.models import Contact, Customer

from . import selectors, services
from .exceptions import ConflictError, TransitionRefused
from .models import (
    LossReason,
    Opportunity,
    Pipeline,
    Stage,
    StageChecklistItem,
    StageKind,
    TransitionAction,
)


# --- pipelines and stages -----------------------------------------------------------------------------
class StageChecklistItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = StageChecklistItem
        fields = ["id", "text", "text_zh", "text_en", "order"]
        read_only_fields = fields


class StageSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    checklist_items = StageChecklistItemSerializer(many=True, read_only=True)

    class Meta:
        model = Stage
        fields = [
            "id", "pipeline", "code", "name", "name_zh", "name_en", "order", "kind", "default_probability",
            "stall_days", "exit_fields", "checklist_items", "is_active",
        ]
        read_only_fields = fields


class PipelineSerializer(serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    stages = serializers.SerializerMethodField()

    class Meta:
        model = Pipeline
        fields = ["id", "code", "name", "name_zh", "name_en", "is_default", "is_active", "order", "stages"]
        read_only_fields = fields

    def get_stages(self, obj) -> list[int]:
        return [stage.pk for stage in obj.stages.all()]


class PipelineViewSet(viewsets.ReadOnlyModelViewSet):
    """The sales processes (configuration: read-only here, edited by administrators in Django admin)."""

    serializer_class = PipelineSerializer
    queryset = Pipeline.objects.prefetch_related(Prefetch("stages", queryset=Stage.objects.order_by("order", "id")))
    filterset_fields = ["is_active", "is_default"]
    search_fields = ["code", "name_zh", "name_en"]
    ordering_fields = ["order", "id"]
    ordering = ["-is_default", "order", "id"]


class StageFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=StageKind.choices)

    class Meta:
        model = Stage
        fields = ["pipeline", "kind", "is_active"]


class StageViewSet(viewsets.ReadOnlyModelViewSet):
    """The stages of every pipeline, in order (read-only, as pipelines)."""

    serializer_class = StageSerializer
    queryset = Stage.objects.prefetch_related("checklist_items")
    filterset_class = StageFilter
    search_fields = ["code", "name_zh", "name_en"]
    ordering_fields = ["order", "id"]
    ordering = ["pipeline_id", "order", "id"]


# --- opportunities ------------------------------------------------------------------------------------
class OpportunitySerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """Read: the deal with its stage. Write (PATCH): the editable fields only; never the stage, the
    customer, the pipeline or the version (400 naming the field)."""

    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    stage_kind = serializers.CharField(source="stage.kind", read_only=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)

    class Meta:
        model = Opportunity
        fields = [
            "id", "pipeline", "stage", "stage_kind", "customer", "customer_name", "contact", "title", "amount",
            "currency", "expected_close_date", "probability", "priority_score", "owner", "source", "competitors",
            "next_step", "next_step_date", "budget", "decision_maker", "pain_points", "loss_reason", "loss_note",
            "lost_from_stage", "stage_entered_at", "stalled_since", "last_activity_at", "closed_at", "version",
            "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "pipeline", "stage", "stage_kind", "customer", "customer_name", "priority_score", "loss_reason",
            "loss_note", "lost_from_stage", "stage_entered_at", "stalled_since", "last_activity_at", "closed_at",
            "version", "created_at", "updated_at",
        ]


class OpportunityCreateSerializer(OpportunitySerializer):
    """Create: `customer` (one you see), `title`, `amount`; optionally the pipeline (default: the
    default one) and an owner (default: you; a manager may pick anyone in their teams)."""

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    pipeline = serializers.PrimaryKeyRelatedField(queryset=Pipeline.objects.filter(is_active=True), required=False)
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False)

    class Meta(OpportunitySerializer.Meta):
        read_only_fields = [
            name for name in OpportunitySerializer.Meta.read_only_fields if name not in ("customer", "pipeline")
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["customer"].queryset = Customer.objects.visible_to(request.user)


class OpportunityTransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    """A stage move. `to_stage`: move_back only (default: the previous open stage). `reason`: required
    to move back. `loss_reason`: required to lose (an id of /loss reasons/ as on the page). `note`: kept in
    the stage history. `expected_stage`: the stage the client last saw (409 if the deal moved since)."""

    action = serializers.ChoiceField(choices=[
        TransitionAction.ADVANCE, TransitionAction.MOVE_BACK, TransitionAction.WIN, TransitionAction.LOSE,
        TransitionAction.REOPEN,
    ])
    to_stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all(), required=False, allow_null=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)
    loss_reason = serializers.PrimaryKeyRelatedField(queryset=LossReason.objects.filter(is_active=True),
                                                     required=False, allow_null=True)
    expected_stage = serializers.IntegerField(required=False, allow_null=True)


class OpportunityFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=StageKind.choices, method="filter_status", label=_("status"))
    stalled = filters.BooleanFilter(method="filter_stalled", label=_("stalled"))
    close_from = filters.DateFilter(field_name="expected_close_date", lookup_expr="gte")
    close_to = filters.DateFilter(field_name="expected_close_date", lookup_expr="lte")
    amount_min = filters.NumberFilter(field_name="amount", lookup_expr="gte")
    amount_max = filters.NumberFilter(field_name="amount", lookup_expr="lte")
    priority_min = filters.NumberFilter(field_name="priority_score", lookup_expr="gte")

    class Meta:
        model = Opportunity
        fields = ["pipeline", "stage", "owner", "customer", "currency", "source"]

    def filter_status(self, queryset, name, value):
        if value == StageKind.OPEN:
            return queryset.filter(closed_at__isnull=True)
        return queryset.filter(closed_at__isnull=False, stage__kind=value)

    def filter_stalled(self, queryset, name, value):
        stages = list(Stage.objects.filter(kind=StageKind.OPEN, stall_days__isnull=False))
        q = selectors.stalled_q(stages, timezone.now())
        return queryset.filter(q) if value else queryset.exclude(q)


def _refused(exc: TransitionRefused) -> Exception:
    if isinstance(exc, ConflictError):
        return EditConflict(detail=exc.detail, code=exc.code)
    return TransitionNotAllowed(detail=exc.detail, unmet=[item.label for item in exc.unmet], code=exc.code)


class OpportunityViewSet(ScopedModelViewSet):
    """Opportunities in the caller's scope (their own; their teams' for managers; out of scope: 404)."""

    queryset = Opportunity.objects.all()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    search_fields = ["title", "customer__name"]
    ordering_fields = ["priority_score", "amount", "expected_close_date", "created_at", "updated_at", "title"]
    ordering = ["-priority_score", "-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return super().get_queryset().select_related("customer", "stage")

    def get_serializer_class(self):
        if self.action == "create":
            return OpportunityCreateSerializer
        if self.action == "transition":
            return OpportunityTransitionSerializer
        return OpportunitySerializer

    def get_object(self):
        instance = super().get_object()
        # If-Match was checked against the version read now; the service re-checks it under the row lock
        if self.request.headers.get("If-Match"):
            self.request._expected_version = instance.version
        return instance

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        try:
            serializer.instance = services.opportunity_create(user=self.request.user, **data)
        except TransitionRefused as exc:
            raise _refused(exc) from exc

    def perform_update(self, serializer):
        try:
            serializer.instance = services.opportunity_update(
                opportunity=serializer.instance, user=self.request.user,
                expected_version=getattr(self.request, "_expected_version", None), **serializer.validated_data,
            )
        except TransitionRefused as exc:
            raise _refused(exc) from exc

    @extend_schema(request=OpportunityTransitionSerializer, responses=OpportunitySerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """Move the deal: advance, move_back, win, lose or reopen, with the board's rules. A refused move
        is a 409 `{"code": "transition_not_allowed", "detail", "unmet": [...]}` naming what is missing."""
        opportunity = self.get_object()
        body = OpportunityTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        move = data["action"]
        common = {"opportunity": opportunity, "user": request.user, "expected_stage_id": data.get("expected_stage")}
        try:
            if move == TransitionAction.ADVANCE:
                services.opportunity_advance(note=data["note"], **common)
            elif move == TransitionAction.MOVE_BACK:
                services.opportunity_move_back(reason=data["reason"] or data["note"], to_stage=data.get("to_stage"),
                                               **common)
            elif move == TransitionAction.WIN:
                services.opportunity_win(note=data["note"], **common)
            elif move == TransitionAction.LOSE:
                services.opportunity_lose(loss_reason=data.get("loss_reason"), note=data["note"] or data["reason"],
                                          **common)
            else:
                services.opportunity_reopen(note=data["note"], **common)
        except TransitionRefused as exc:
            raise _refused(exc) from exc
        fresh = self.get_queryset().get(pk=opportunity.pk)
        return Response(OpportunitySerializer(fresh, context=self.get_serializer_context()).data)


routes = [
    ("pipelines", PipelineViewSet, "pipeline"),
    ("stages", StageViewSet, "stage"),
    ("opportunities", OpportunityViewSet, "opportunity"),
]
