"""REST API of the after-sales app: tickets (scoped, written through the services) and the public
ticket endpoint a customer (or their system) calls with the per-customer token.

Tickets are never deleted (DELETE: 405): they are the service record of the customer; close them."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from contracts.models import Contract
from crm.api import (
    IDEMPOTENCY_HEADER,
    StrictFieldsMixin,
    TransitionNotAllowed,
    VersionedMixin,
    idempotent,
    unmet_entry,
)
from leads.models import Contact, Customer

from . import selectors, services
from .models import (
    CommentVisibility,
    Priority,
    SlaState,
    Ticket,
    TicketComment,
    TicketKind,
    TicketSource,
    TicketStatus,
)
from .views import client_ip


class TicketCommentSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    author = serializers.StringRelatedField()

    class Meta:
        model = TicketComment
        fields = ["id", "author", "by_customer", "visibility", "body", "created_at"]
        read_only_fields = ["id", "author", "by_customer", "created_at"]


class TicketSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    kind = serializers.SlugRelatedField(slug_field="code", read_only=True)
    owner = serializers.PrimaryKeyRelatedField(read_only=True)
    sla_state = serializers.CharField(read_only=True)
    allowed_transitions = serializers.SerializerMethodField()
    status_url = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = [
            "id", "reference", "customer", "contact", "contract", "kind", "priority", "subject", "description", "status",
            "owner", "team", "source", "requester_name", "requester_email", "requester_phone",
            "response_due_at", "resolution_due_at", "first_responded_at", "resolved_at", "reopen_until",
            "closed_at", "sla_state", "allowed_transitions", "status_url", "version", "created_at", "updated_at",
        ]
        read_only_fields = fields

    def get_allowed_transitions(self, obj) -> list[str]:
        return services.allowed_transitions(ticket=obj)

    def get_status_url(self, obj) -> str:
        request = self.context.get("request")
        url = reverse("aftersales:public_ticket", args=[obj.public_token])
        return request.build_absolute_uri(url) if request else url


class TicketCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.none(), required=False, allow_null=True)
    contract = serializers.PrimaryKeyRelatedField(queryset=Contract.objects.none(), required=False, allow_null=True)
    kind = serializers.SlugRelatedField(slug_field="code", queryset=TicketKind.objects.filter(is_active=True))
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.NORMAL)
    subject = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.none(), required=False, allow_null=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is None:  # schema generation
            return
        user = request.user
        visible = Customer.objects.visible_to(user)
        self.fields["customer"].queryset = visible
        self.fields["contact"].queryset = Contact.objects.filter(customer__in=visible)
        self.fields["contract"].queryset = Contract.objects.visible_to(user)
        self.fields["owner"].queryset = services.assignable_owners(by=user)


class TicketUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    contact = serializers.PrimaryKeyRelatedField(queryset=Contact.objects.all(), required=False, allow_null=True)
    contract = serializers.PrimaryKeyRelatedField(queryset=Contract.objects.none(), required=False, allow_null=True)
    kind = serializers.SlugRelatedField(slug_field="code", queryset=TicketKind.objects.filter(is_active=True),
                                        required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    subject = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["contract"].queryset = Contract.objects.visible_to(request.user)


class TransitionSerializer(StrictFieldsMixin, serializers.Serializer):
    """The move, as `action` (like the deals' and contracts' transition endpoints) or `transition`."""

    action = serializers.ChoiceField(choices=services.TRANSITIONS, required=False)
    transition = serializers.ChoiceField(choices=services.TRANSITIONS, required=False)
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

    def validate(self, attrs):
        move = attrs.pop("action", None) or attrs.get("transition")
        if not move:
            raise serializers.ValidationError({"action": [_("Choose the move.")]})
        attrs["transition"] = move
        return attrs


class TicketAssignSerializer(StrictFieldsMixin, serializers.Serializer):
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), allow_null=True)


class TicketFilter(filters.FilterSet):
    """The queue page's filters: `view` (mine, team, unassigned, all), `status` (a status, or `open` for
    every one not done), `priority`, `sla_state`; and `customer`, `owner`."""

    view = filters.ChoiceFilter(choices=[(v, v) for v in selectors.QUEUE_VIEWS], method="filter_view", label="view")
    status = filters.ChoiceFilter(choices=[("open", "open"), *TicketStatus.choices], method="filter_status")
    sla_state = filters.ChoiceFilter(choices=SlaState.choices, field_name="sla_state")

    class Meta:
        model = Ticket
        fields = ["view", "status", "priority", "sla_state", "customer", "owner"]

    def filter_view(self, queryset, name, value):
        return queryset.filter(pk__in=selectors.ticket_queue(user=self.request.user, view=value).values("pk"))

    def filter_status(self, queryset, name, value):
        return queryset.filter(pk__in=selectors.ticket_queue(user=self.request.user, view="all", status=value)
                               .values("pk"))


class TicketViewSet(VersionedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    viewsets.GenericViewSet):
    """Service tickets in the caller's scope (out of scope: 404). Moves go through `transition` (a
    refused one is 409 `transition_not_allowed` with the reason in `unmet`). No DELETE (405): tickets
    are the customer's service record; close them instead."""

    serializer_class = TicketSerializer
    filterset_class = TicketFilter
    search_fields = ["subject", "customer__name"]
    ordering_fields = ["created_at", "resolution_due_at", "priority"]
    supports_idempotency_key = True
    conflict_actions = ("transition",)

    def get_queryset(self):
        return selectors.ticket_queue(user=self.request.user, view="all")

    def get_object(self) -> Ticket:
        ticket = selectors.ticket_get_for_user(user=self.request.user, pk=self.kwargs["pk"])
        self.check_if_match(ticket)
        return ticket

    def _out(self, ticket: Ticket, code=status.HTTP_200_OK) -> Response:
        fresh = selectors.ticket_get_for_user(user=self.request.user, pk=ticket.pk)
        return Response(TicketSerializer(fresh, context=self.get_serializer_context()).data, status=code)

    @extend_schema(request=TicketCreateSerializer, responses={201: TicketSerializer})
    def create(self, request, *args, **kwargs):
        """Open a ticket (Idempotency-Key honoured)."""
        key = request.META.get(IDEMPOTENCY_HEADER)
        if not key:
            return self._create(request)
        return idempotent(request, key, lambda: self._create(request))

    def _create(self, request):
        data = TicketCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        ticket = services.ticket_create(created_by=request.user, source=TicketSource.API, **data.validated_data)
        return self._out(ticket, status.HTTP_201_CREATED)

    @extend_schema(request=TicketUpdateSerializer, responses={200: TicketSerializer})
    def partial_update(self, request, pk=None):
        ticket = self.get_object()
        data = TicketUpdateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        ticket = services.ticket_update(ticket=ticket, by=request.user, **data.validated_data)
        return self._out(ticket)

    @extend_schema(request=TransitionSerializer, responses={200: TicketSerializer})
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        ticket = self.get_object()
        data = TransitionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = services.ticket_transition(ticket=ticket, by=request.user, **data.validated_data)
        except services.TransitionError as exc:
            raise TransitionNotAllowed(
                detail=" ".join(exc.messages), unmet=[unmet_entry(exc.code or "not_allowed", " ".join(exc.messages))]
            ) from exc
        return self._out(ticket)

    @extend_schema(request=TicketAssignSerializer, responses={200: TicketSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        ticket = self.get_object()
        data = TicketAssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = services.ticket_assign(ticket=ticket, by=request.user, owner=data.validated_data["owner"])
        except PermissionDenied as exc:
            raise exceptions.PermissionDenied(str(exc)) from exc
        return self._out(ticket)

    @extend_schema(methods=["GET"], responses={200: TicketCommentSerializer(many=True)})
    @extend_schema(methods=["POST"], request=TicketCommentSerializer, responses={201: TicketCommentSerializer})
    @action(detail=True, methods=["get", "post"])
    def comments(self, request, pk=None):
        ticket = self.get_object()
        if request.method == "POST":
            data = TicketCommentSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            comment = services.ticket_comment_add(
                ticket=ticket, author=request.user, body=data.validated_data["body"],
                visibility=data.validated_data.get("visibility", CommentVisibility.INTERNAL),
            )
            return Response(TicketCommentSerializer(comment).data, status=status.HTTP_201_CREATED)
        comments = TicketComment.objects.filter(ticket=ticket).select_related("author")
        return Response(TicketCommentSerializer(comments, many=True).data)


class PublicTicketSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    kind = serializers.SlugRelatedField(slug_field="code", queryset=TicketKind.objects.filter(is_active=True))
    subject = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=10000)


class PublicTicketCreateApi(APIView):
    """POST with the customer's public form token: open a ticket (rate-limited per IP, like the form).
    The answer holds the reference and the tokenised status link."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []

    @extend_schema(
        request=PublicTicketSerializer,
        responses={201: inline_serializer("PublicTicketCreated", {
            "reference": serializers.CharField(), "status": serializers.CharField(),
            "status_url": serializers.URLField(),
        })},
        auth=[],
    )
    def post(self, request, token: str):
        portal = selectors.portal_for_token(token=token)
        if services.public_rate_limit_hit(ip=client_ip(request)):
            raise exceptions.Throttled(detail=_("Too many requests from your address. Try again later."))
        data = PublicTicketSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ticket = services.public_ticket_submit(portal=portal, source=TicketSource.API, **data.validated_data)
        except DjangoValidationError as exc:
            raise exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc
        url = request.build_absolute_uri(reverse("aftersales:public_ticket", args=[ticket.public_token]))
        return Response({"reference": ticket.reference, "status": ticket.status, "status_url": url},
                        status=status.HTTP_201_CREATED)


routes = [("tickets", TicketViewSet, "ticket")]
urlpatterns = [
    path("service/public/<str:token>/tickets/", PublicTicketCreateApi.as_view(), name="service-public-ticket"),
]
