"""REST API of the customers app: customers (scoped; written through the services, with the version as
ETag for If-Match) with their contacts, and the pool moves (claim, assign, release) as actions."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.models import Team, User
from crm.api import EditConflict, ScopedModelViewSet, StrictFieldsMixin

from . import selectors, services
from .models import Contact, Customer, CustomerStatus, SourceChannel, Tier


class CustomerContactSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "title", "phone", "email", "wechat", "is_decision_maker", "notes", "version"]
        read_only_fields = ["id", "version"]


class TagListField(serializers.ListField):
    child = serializers.CharField(max_length=50)

    def get_attribute(self, instance):
        return sorted(t.name for t in instance.tags.all()) if instance.pk else []


class CustomerSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """Read: the profile, owner, tier with its explanation, contacts. Write: the profile fields (and on
    create `owner` / `team`: yourself, a user in your teams, or a team's pool)."""

    tags = TagListField(required=False)
    source = serializers.SlugRelatedField(slug_field="code", queryset=SourceChannel.objects.all(), required=False,
                                          allow_null=True)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False,
                                               allow_null=True)
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)
    contacts = CustomerContactSerializer(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id", "name", "customer_type", "status", "tier", "tier_source", "tier_reason", "tier_explanation",
            "industry", "region", "address", "size", "website", "phone", "email", "source", "tags", "needs",
            "requirements", "owner", "team", "last_contacted_at", "next_follow_up_at", "profile_reviewed_at",
            "external_id", "contacts", "version", "created_at", "updated_at",
        ]
        read_only_fields = [
            "id", "tier", "tier_source", "tier_reason", "tier_explanation", "last_contacted_at",
            "profile_reviewed_at", "contacts", "version", "created_at", "updated_at",
        ]


class CustomerFilter(filters.FilterSet):
    q = filters.CharFilter(method="search", label="search")
    tier = filters.MultipleChoiceFilter(choices=Tier.choices)
    status = filters.MultipleChoiceFilter(choices=CustomerStatus.choices)
    pool = filters.BooleanFilter(field_name="owner", lookup_expr="isnull")
    tag = filters.CharFilter(method="filter_tag", label="tag")
    overdue = filters.BooleanFilter(method="filter_overdue", label="overdue")
    needs_update = filters.BooleanFilter(method="filter_needs_update", label="needs update")

    class Meta:
        model = Customer
        fields = ["q", "tier", "status", "owner", "team", "source", "pool", "tag", "overdue", "needs_update"]

    def search(self, queryset, name, value):
        return queryset.filter(selectors.search_q(value)) if value.strip() else queryset

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__name=value.strip()) if value.strip() else queryset

    def filter_overdue(self, queryset, name, value):
        q = Q(next_follow_up_at__lt=timezone.now())
        return queryset.filter(q) if value else queryset.exclude(q)

    def filter_needs_update(self, queryset, name, value):
        q = Q(profile_reviewed_at__isnull=True) | Q(profile_reviewed_at__lt=selectors.freshness_cutoff())
        return queryset.filter(q) if value else queryset.exclude(q)


class CustomerAssignSerializer(StrictFieldsMixin, serializers.Serializer):
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class CustomerReleaseSerializer(StrictFieldsMixin, serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class CustomerViewSet(ScopedModelViewSet):
    """Customers in the caller's scope (their own, their teams' pools; out of scope: 404).

    No DELETE (405): a customer is never deleted through the API. Set `status` to `inactive` to retire
    one; duplicates are merged on the pages (the merge keeps the history of both)."""

    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    search_fields: list[str] = []
    ordering_fields = ["updated_at", "name", "next_follow_up_at", "created_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    conflict_actions = ("partial_update", "claim")

    def get_queryset(self):
        return super().get_queryset().select_related("owner", "team", "source").prefetch_related("tags", "contacts")

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        owner = data.pop("owner", self.request.user if "team" not in data else None)
        team = data.pop("team", None)
        tags = data.pop("tags", None)
        try:
            serializer.instance = services.customer_create(by=self.request.user, owner=owner, team=team, tags=tags, **data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else exc.messages) from exc

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        if "owner" in data or "team" in data:
            raise serializers.ValidationError({"owner": [_("Use the assign, claim or release actions to change the owner.")]})
        expected = getattr(self.request, "_expected_version", None)
        try:
            serializer.instance = services.customer_update(
                customer=serializer.instance, by=self.request.user, data=data, expected_version=expected,
            )
        except services.EditConflict as exc:
            raise EditConflict() from exc

    def get_object(self):
        instance = super().get_object()
        # If-Match was checked against the version read now; the service re-checks it under the row lock
        if self.request.headers.get("If-Match"):
            self.request._expected_version = instance.version
        return instance

    @action(detail=True, methods=["post"])
    def claim(self, request, pk=None):
        """Take the lead from your team's pool (409 if someone else claimed it first)."""
        customer = self.get_object()
        try:
            customer = services.customer_claim(customer_id=customer.pk, by=request.user)
        except services.ClaimLost as exc:
            raise EditConflict(detail=" ".join(exc.messages), code=exc.code or "conflict") from exc
        return Response(self.get_serializer(customer).data)

    @action(detail=True, methods=["post"], serializer_class=CustomerAssignSerializer)
    def assign(self, request, pk=None):
        """Managers: give the customer to a user in their teams."""
        customer = self.get_object()
        body = CustomerAssignSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        customer = services.customer_assign(customer=customer, to=body.validated_data["owner"], by=request.user,
                                            reason=body.validated_data["reason"])
        return Response(CustomerSerializer(customer, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"], serializer_class=CustomerReleaseSerializer)
    def release(self, request, pk=None):
        """The owner (or a manager) puts the customer back into its team's pool."""
        customer = self.get_object()
        body = CustomerReleaseSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        customer = services.customer_release(customer=customer, by=request.user, reason=body.validated_data["reason"])
        return Response(CustomerSerializer(customer, context=self.get_serializer_context()).data)


class ContactSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A contact person of a customer you see. `customer` is set on create and never changes."""

    customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())

    class Meta:
        model = Contact
        fields = [
            "id", "customer", "name", "title", "phone", "email", "wechat", "is_decision_maker", "notes", "version",
        ]
        read_only_fields = ["id", "version"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["customer"].queryset = Customer.objects.visible_to(request.user)
        if isinstance(self.instance, Contact):  # an edit: the contact stays with its customer
            self.fields["customer"].read_only = True


class ContactViewSet(ScopedModelViewSet):
    """Contacts of the customers in the caller's scope (out of scope: 404), written through
    leads.services.contact_save / contact_delete."""

    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_fields = ["customer", "is_decision_maker"]
    search_fields = ["name", "title", "phone", "email", "wechat"]
    ordering_fields = ["name", "id"]
    ordering = ["customer_id", "-is_decision_maker", "name", "id"]

    def get_queryset(self):
        visible = Customer.objects.visible_to(self.request.user).values("pk")
        return Contact.objects.filter(customer__in=visible)

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        customer = data.pop("customer")
        serializer.instance = services.contact_save(customer=customer, by=self.request.user, **data)

    def perform_update(self, serializer):
        contact = serializer.instance
        serializer.instance = services.contact_save(
            customer=contact.customer, by=self.request.user, contact=contact, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.contact_delete(contact=instance, by=self.request.user)


routes = [("customers", CustomerViewSet, "customer"), ("contacts", ContactViewSet, "contact")]
