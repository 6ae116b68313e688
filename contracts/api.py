"""REST API of contracts: scoped reads (with lines, payment plan, approval trail and money), drafting
(create, PATCH and DELETE of a draft), the lifecycle moves and receipts, all written through
contracts.services (the pages' rules).

Moves: `POST .../transition/` with `{"action": "submit" | "approve" | "reject" | "activate" | "complete" |
"terminate", "comment"?, "reason"?}`, or the same as one endpoint each (`POST .../submit/`, ...). A move
the rules refuse is 409 `transition_not_allowed`, each reason named in `unmet` (e.g. `no_lines`,
`no_plan`, `cannot_review`). Signing needs the signed scan and goes through the page (multipart
upload); the API reports it. DELETE: only a draft never sent to review (409 `not_deletable` otherwise)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api import (
    IDEMPOTENCY_HEADER,
    DeleteRefused,
    ScopedModelViewSet,
    StrictFieldsMixin,
    TransitionNotAllowed,
    idempotent,
    unmet_entry,
)
from leads.models import Contact, Customer

from . import rules, selectors, services
from .models import (
    Contract,
    ContractApproval,
    ContractLine,
    Currency,
    PaymentInstalment,
    PaymentMethod,
    PaymentReceipt,
)


class ContractLineSerializer(serializers.ModelSerializer):
    total_amount = serializers.SerializerMethodField()

    class Meta:
        model = ContractLine
        fields = ["id", "name", "quantity", "unit_price", "discount_percent", "tax_rate", "total_amount"]
        read_only_fields = ["id", "total_amount"]

    def get_total_amount(self, obj) -> str:
        return str(obj.amounts(obj.contract.currency)[2])


class ContractReceiptSerializer(serializers.ModelSerializer):
    class Meta:
        model = PaymentReceipt
        fields = ["id", "instalment", "received_on", "amount", "method", "reference", "recorded_by", "created_at"]
        read_only_fields = fields


class ContractInstalmentSerializer(serializers.ModelSerializer):
    receipts = ContractReceiptSerializer(many=True, read_only=True)

    class Meta:
        model = PaymentInstalment
        fields = ["id", "due_date", "amount", "paid_amount", "note", "receipts"]
        read_only_fields = ["id", "paid_amount", "receipts"]


class ContractApprovalSerializer(serializers.ModelSerializer):
    actor = serializers.StringRelatedField()

    class Meta:
        model = ContractApproval
        fields = ["review_round", "action", "level", "actor", "comment", "created_at"]
        read_only_fields = fields


class ContractSerializer(serializers.ModelSerializer):
    lines = ContractLineSerializer(many=True, read_only=True)
    instalments = ContractInstalmentSerializer(many=True, read_only=True)
    approvals = ContractApprovalSerializer(many=True, read_only=True)
    allowed_actions = serializers.SerializerMethodField()

    class Meta:
        model = Contract
        fields = [
            "id", "number", "title", "customer", "contact", "owner", "status", "currency", "subtotal",
            "tax_amount", "total_amount", "start_date", "end_date", "payment_terms", "terms",
            "needs_admin_approval", "signed_on", "our_signatory", "customer_signatory", "activated_on",
            "completed_on", "terminated_on", "termination_reason", "lines", "instalments", "approvals",
            "allowed_actions", "version", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_allowed_actions(self, obj) -> list[str]:
        request = self.context.get("request")
        if request is None:
            return []
        if "team_rows" not in self.context:
            self.context["team_rows"] = rules.team_rows()  # once per response, not per contract
        return rules.available_actions(obj, request.user, team_rows=self.context["team_rows"])


class ContractLineInputSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="PATCH: the line kept (omit for a new line).")
    name = serializers.CharField(max_length=200)
    quantity = serializers.DecimalField(max_digits=12, decimal_places=2)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2)
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2, default=0)
    tax_rate = serializers.DecimalField(max_digits=5, decimal_places=2, default=13)


class ContractInstalmentInputSerializer(serializers.Serializer):
    id = serializers.IntegerField(required=False, help_text="PATCH: the instalment kept (omit for a new one).")
    due_date = serializers.DateField()
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ContractCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    title = serializers.CharField(max_length=200)
    currency = serializers.ChoiceField(choices=Currency.choices, default=Currency.CNY)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    payment_terms = serializers.CharField(required=False, allow_blank=True, default="")
    terms = serializers.CharField(required=False, allow_blank=True, default="")
    lines = ContractLineInputSerializer(many=True)
    instalments = ContractInstalmentInputSerializer(many=True, required=False, default=list)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["customer"].queryset = Customer.objects.visible_to(request.user)


class ContractUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """PATCH a draft: any of its fields; `lines` / `instalments` replace the lists (rows with an `id`
    are kept and updated, the others created, the missing deleted); the plan must still add up."""

    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    title = serializers.CharField(max_length=200, required=False)
    currency = serializers.ChoiceField(choices=Currency.choices, required=False)
    start_date = serializers.DateField(required=False, allow_null=True)
    end_date = serializers.DateField(required=False, allow_null=True)
    payment_terms = serializers.CharField(required=False, allow_blank=True)
    terms = serializers.CharField(required=False, allow_blank=True)
    lines = ContractLineInputSerializer(many=True, required=False)
    instalments = ContractInstalmentInputSerializer(many=True, required=False)


class ContractCommentSerializer(StrictFieldsMixin, serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class ContractTerminateSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField()


class ContractReceiptInputSerializer(StrictFieldsMixin, serializers.Serializer):
    instalment = serializers.IntegerField()
    received_on = serializers.DateField(default=timezone.localdate)
    amount = serializers.DecimalField(max_digits=16, decimal_places=2)
    method = serializers.ChoiceField(choices=PaymentMethod.choices, default=PaymentMethod.BANK_TRANSFER)
    reference = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


MOVES = {
    "submit": services.contract_submit,
    "approve": services.contract_approve,
    "reject": services.contract_reject,
    "activate": services.contract_activate,
    "complete": services.contract_complete,
    "terminate": services.contract_terminate,
}


class ContractTransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    action = serializers.ChoiceField(choices=list(MOVES))
    comment = serializers.CharField(required=False, allow_blank=True, default="",
                                    help_text="approve, reject (required to reject).")
    reason = serializers.CharField(required=False, allow_blank=True, default="", help_text="terminate (required).")


def _call(fn, *, refusal_is_conflict: bool = False, **kwargs):
    """Run a service. Field errors are 400; in a move (`refusal_is_conflict`) any other refusal of the
    rules is a 409 naming each reason in `unmet`; outside a move only a wrong status is."""
    try:
        return fn(**kwargs)
    except PermissionDenied as exc:
        raise exceptions.NotFound() from exc
    except DjangoValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise
        if refusal_is_conflict or exc.code in {"not_draft", "transition_not_allowed"}:
            unmet = [unmet_entry(error.code or "not_allowed", " ".join(error.messages)) for error in exc.error_list]
            raise TransitionNotAllowed(detail=" ".join(exc.messages), unmet=unmet) from exc
        raise


class ContractFilter(filters.FilterSet):
    """The list page's filters: status, owner, customer, the date range (signing date of signed
    contracts, creation date of the others) and `overdue` (payments overdue only)."""

    date_from = filters.DateFilter(method="filter_dates", label="from")
    date_to = filters.DateFilter(method="filter_dates", label="to")
    overdue = filters.BooleanFilter(method="filter_overdue")

    class Meta:
        model = Contract
        fields = ["status", "owner", "customer", "date_from", "date_to", "overdue"]

    def _matching(self, **kwargs):
        return selectors.contract_list(user=self.request.user, today=timezone.localdate(), **kwargs).values("pk")

    def filter_dates(self, queryset, name, value):
        return queryset.filter(pk__in=self._matching(**{name: value}))

    def filter_overdue(self, queryset, name, value):
        matching = self._matching(overdue_only=True)
        return queryset.filter(pk__in=matching) if value else queryset.exclude(pk__in=matching)


class ContractViewSet(ScopedModelViewSet):
    """Contracts you may see. Writes: POST to create a draft, PATCH / DELETE it while it is a draft,
    then the moves (`transition`, or one endpoint per move) and receipts."""

    serializer_class = ContractSerializer
    queryset = Contract.objects.select_related("customer", "owner").prefetch_related(
        "lines__contract", "instalments__receipts", "approvals__actor"
    )
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    conflict_actions = (
        "partial_update", "destroy", "transition", "submit", "approve", "reject", "activate", "complete",
        "terminate", "receipts",
    )
    filterset_class = ContractFilter
    search_fields = ["number", "title", "customer__name"]
    ordering_fields = ["created_at", "total_amount", "signed_on"]

    @extend_schema(request=ContractCreateSerializer, responses={201: ContractSerializer})
    def create(self, request, *args, **kwargs):
        """Draft a contract with its lines and payment plan (Idempotency-Key honoured)."""
        key = request.META.get(IDEMPOTENCY_HEADER)
        if not key:
            return self._create(request)
        return idempotent(request, key, lambda: self._create(request))

    def _create(self, request):
        data = ContractCreateSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        contract = _call(services.contract_create, user=request.user, **fields)
        return Response(ContractSerializer(self.get_queryset().get(pk=contract.pk),
                                           context={"request": request}).data, status=201)

    def get_serializer_class(self):
        return ContractSerializer

    @extend_schema(request=ContractUpdateSerializer, responses=ContractSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Edit a draft (409 `transition_not_allowed` once it has been submitted)."""
        contract = self.get_object()
        body = ContractUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        lines, instalments = data.pop("lines", None), data.pop("instalments", None)
        _call(services.contract_update, contract=contract, user=request.user, fields=data, lines=lines,
              instalments=instalments)
        return self._respond(request, contract)

    def perform_destroy(self, instance):
        try:
            services.contract_delete(contract=instance, user=self.request.user)
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        except DjangoValidationError as exc:
            raise DeleteRefused(detail=" ".join(exc.messages), code=exc.code) from exc

    def _respond(self, request, contract):
        fresh = self.get_queryset().get(pk=contract.pk)
        return Response(ContractSerializer(fresh, context={"request": request}).data)

    def _move(self, request, service, body_serializer=None, **extra):
        contract = self.get_object()
        kwargs = dict(extra)
        if body_serializer is not None:
            body = body_serializer(data=request.data)
            body.is_valid(raise_exception=True)
            kwargs.update(body.validated_data)
        _call(service, refusal_is_conflict=True, contract=contract, user=request.user, **kwargs)
        return self._respond(request, contract)

    @extend_schema(request=ContractTransitionSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        """One move of the lifecycle, chosen by `action` (as the endpoint of the same name)."""
        body = ContractTransitionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        move = body.validated_data["action"]
        service = MOVES[move]
        extra = {}
        if move in ("approve", "reject"):
            extra["comment"] = body.validated_data["comment"]
        elif move == "terminate":
            extra["reason"] = body.validated_data["reason"]
        return self._move(request, service, **extra)

    @extend_schema(request=None, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._move(request, services.contract_submit)

    @extend_schema(request=ContractCommentSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._move(request, services.contract_approve, ContractCommentSerializer)

    @extend_schema(request=ContractCommentSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._move(request, services.contract_reject, ContractCommentSerializer)

    @extend_schema(request=None, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self._move(request, services.contract_activate)

    @extend_schema(request=None, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        return self._move(request, services.contract_complete)

    @extend_schema(request=ContractTerminateSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def terminate(self, request, pk=None):
        return self._move(request, services.contract_terminate, ContractTerminateSerializer)

    @extend_schema(request=ContractReceiptInputSerializer, responses=ContractSerializer)
    @action(detail=True, methods=["post"])
    def receipts(self, request, pk=None):
        return self._move(request, services.payment_receipt_record, ContractReceiptInputSerializer)

    @extend_schema(
        request=None,
        responses=inline_serializer("ContractReviewQueue", {"results": ContractSerializer(many=True)}),
    )
    @action(detail=False, methods=["get"], url_path="review-queue")
    def review_queue(self, request):
        contracts = selectors.review_queue(user=request.user)
        return Response({"results": ContractSerializer(contracts, many=True, context={"request": request}).data})


routes = [("contracts", ContractViewSet, "contract")]
