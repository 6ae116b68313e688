"""REST API of the pipeline: pipelines and stages (configuration: everyone reads it, administrators
write it through opportunities.services as Django admin does), opportunities (scoped; created, edited
and moved through opportunities.services, so the API obeys the board's rules).

An opportunity's stage never changes in a PATCH; it moves with `POST .../transition/`. Opportunities
are never deleted (DELETE: 405): a deal that will not happen is lost, so the forecast and the stage
history keep it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import User
from accounts.scope import sees_everything
from crm.api import (
    DeleteRefused,
    EditConflict,
    IdempotentCreateMixin,
    ScopedModelViewSet,
    StrictFieldsMixin,
    TransitionNotAllowed,
)
from leads.models import Contact, Customer

from . import selectors, services
from .exceptions import ConflictError, TransitionRefused
from .models import (
    EXIT_FIELDS,
    LossReason,
    Opportunity,
    Pipeline,
    Stage,
    StageChecklistItem,
    StageKind,
    TransitionAction,
)


# --- pipelines and stages -----------------------------------------------------------------------------
class AdminWritesOnly(permissions.BasePermission):
    """Everyone signed in reads; only administrators write (403 for anyone else)."""

    message = _("Only administrators can change pipelines and stages.")

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in permissions.SAFE_METHODS or sees_everything(request.user)


def _service_call(fn, **kwargs):
    """A configuration service: refusals of the rules are 409 with their code, bad values 400."""
    try:
        return fn(**kwargs)
    except PermissionDenied as exc:
        raise exceptions.PermissionDenied(str(exc)) from exc
    except DjangoValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise serializers.ValidationError(exc.message_dict) from exc
        if exc.code in {"default_pipeline", "pipeline_in_use", "closed_stage", "stage_in_use"}:
            raise DeleteRefused(detail=" ".join(exc.messages), code=exc.code) from exc
        raise serializers.ValidationError({"non_field_errors": exc.messages}) from exc


class StageChecklistItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = StageChecklistItem
        fields = ["id", "text", "text_zh", "text_en", "order"]
        read_only_fields = fields


class StageSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A stage. Administrators create open stages (`pipeline` on create only) and edit them; setting
    `is_active` to false moves the stage's deals to `move_opportunities_to` (required if it holds any)."""

    name = serializers.CharField(read_only=True)
    checklist_items = StageChecklistItemSerializer(many=True, read_only=True)
    exit_fields = serializers.ListField(child=serializers.ChoiceField(choices=list(EXIT_FIELDS)), required=False)
    move_opportunities_to = serializers.PrimaryKeyRelatedField(
        queryset=Stage.objects.filter(kind=StageKind.OPEN, is_active=True), required=False, allow_null=True,
        write_only=True,
    )

    class Meta:
        model = Stage
        fields = [
            "id", "pipeline", "code", "name", "name_zh", "name_en", "order", "kind", "default_probability",
            "stall_days", "exit_fields", "playbook_zh", "playbook_en", "checklist_items", "is_active",
            "move_opportunities_to",
        ]
        read_only_fields = ["id", "name", "kind", "checklist_items"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if isinstance(self.instance, Stage):  # an edit: the stage stays in its pipeline
            self.fields["pipeline"].read_only = True


class StageReorderSerializer(StrictFieldsMixin, serializers.Serializer):
    pipeline = serializers.PrimaryKeyRelatedField(queryset=Pipeline.objects.all())
    stages = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)


class PipelineSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    name = serializers.CharField(read_only=True)
    stages = serializers.SerializerMethodField()

    class Meta:
        model = Pipeline
        fields = ["id", "code", "name", "name_zh", "name_en", "is_default", "is_active", "order", "stages"]
        read_only_fields = ["id", "name", "stages"]
        # "one default pipeline" is kept by the service (the new default takes over from the old one)
        extra_kwargs = {"is_default": {"validators": []}}

    def get_stages(self, obj) -> list[int]:
        return [stage.pk for stage in obj.stages.all()]


class PipelineViewSet(IdempotentCreateMixin, viewsets.ModelViewSet):
    """The sales processes. Everyone reads them; administrators create, edit and delete them (403 for
    anyone else). A new pipeline gets its won and lost stages. The default pipeline cannot be deleted,
    nor one with opportunities (409, code `default_pipeline` or `pipeline_in_use`): deactivate it
    instead."""

    serializer_class = PipelineSerializer
    queryset = Pipeline.objects.prefetch_related(Prefetch("stages", queryset=Stage.objects.order_by("order", "id")))
    permission_classes = [AdminWritesOnly]
    filterset_fields = ["is_active", "is_default"]
    search_fields = ["code", "name_zh", "name_en"]
    ordering_fields = ["order", "id"]
    ordering = ["-is_default", "order", "id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    conflict_actions = ("destroy",)

    def perform_create(self, serializer):
        serializer.instance = _service_call(services.pipeline_create, user=self.request.user,
                                            **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = _service_call(services.pipeline_update, pipeline=serializer.instance,
                                            user=self.request.user, **serializer.validated_data)

    def perform_destroy(self, instance):
        _service_call(services.pipeline_delete, pipeline=instance, user=self.request.user)


class StageFilter(filters.FilterSet):
    kind = filters.MultipleChoiceFilter(choices=StageKind.choices)

    class Meta:
        model = Stage
        fields = ["pipeline", "kind", "is_active"]


class StageViewSet(IdempotentCreateMixin, viewsets.ModelViewSet):
    """The stages of every pipeline, in order. Administrators add open stages, edit, reorder
    (`POST /stages/reorder/`), deactivate (PATCH `is_active: false` with `move_opportunities_to`) and
    delete them; a stage deals are or were in is only deactivated (409 `stage_in_use`), won and lost
    stages are never deleted (409 `closed_stage`)."""

    serializer_class = StageSerializer
    queryset = Stage.objects.prefetch_related("checklist_items")
    permission_classes = [AdminWritesOnly]
    filterset_class = StageFilter
    search_fields = ["code", "name_zh", "name_en"]
    ordering_fields = ["order", "id"]
    ordering = ["pipeline_id", "order", "id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    conflict_actions = ("destroy", "partial_update")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("move_opportunities_to", None)
        if data.pop("is_active", True) is False:
            raise serializers.ValidationError({"is_active": [_("A new stage starts active.")]})
        serializer.instance = _service_call(services.stage_create, pipeline=data.pop("pipeline"),
                                            user=self.request.user, **data)

    @transaction.atomic  # an edit and a deactivation in one PATCH: both or neither
    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        move_to = data.pop("move_opportunities_to", None)
        is_active = data.pop("is_active", None)
        stage = serializer.instance
        if data or is_active:
            stage = _service_call(services.stage_update, stage=stage, user=self.request.user,
                                  is_active=is_active or None, **data)
        if is_active is False and stage.is_active:
            if not stage.is_open:
                raise serializers.ValidationError({"is_active": [_("The won and lost stages are always active.")]})
            try:
                services.stage_deactivate(stage=stage, user=self.request.user, move_to=move_to)
            except ConflictError as exc:
                raise EditConflict(detail=exc.detail, code=exc.code) from exc
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"move_opportunities_to": exc.messages}) from exc
        serializer.instance = self.get_queryset().get(pk=stage.pk)

    def perform_destroy(self, instance):
        _service_call(services.stage_delete, stage=instance, user=self.request.user)

    @extend_schema(request=StageReorderSerializer, responses=StageSerializer(many=True))
    @action(detail=False, methods=["post"])
    def reorder(self, request):
        """Administrators: the pipeline's open stages in their new order (every one, once)."""
        body = StageReorderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stages = _service_call(services.stage_reorder, pipeline=body.validated_data["pipeline"],
                               user=request.user, stage_ids=body.validated_data["stages"])
        fresh = self.get_queryset().filter(pk__in=[s.pk for s in stages]).order_by("order", "id")
        return Response(StageSerializer(fresh, many=True, context=self.get_serializer_context()).data)


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
    return TransitionNotAllowed(detail=exc.detail, unmet=exc.unmet)


class OpportunityViewSet(ScopedModelViewSet):
    """Opportunities in the caller's scope (their own; their teams' for managers; out of scope: 404)."""

    queryset = Opportunity.objects.all()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    search_fields = ["title", "customer__name"]
    ordering_fields = ["priority_score", "amount", "expected_close_date", "created_at", "updated_at", "title"]
    ordering = ["-priority_score", "-id"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    conflict_actions = ("create", "partial_update", "transition")

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
