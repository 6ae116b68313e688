"""REST API of the in-app notifications: the caller's own only (anyone else's is a 404), marked read
through notifications.services (PATCH `{"read": true}`, `POST .../read/` or `POST .../read-all/`) and
deleted by their recipient (DELETE)."""

from __future__ import annotations

from django.utils.translation import gettext as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api import StrictFieldsMixin, VersionedMixin

from . import selectors, services
from .models import Notification


class NotificationSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """A notification; the only change a client can make is `{"read": true}`."""

    read = serializers.BooleanField(source="is_read", required=False)

    class Meta:
        model = Notification
        fields = ["id", "verb", "title", "body", "link", "late", "read", "read_at", "version", "created_at"]
        read_only_fields = ["id", "verb", "title", "body", "link", "late", "read_at", "version", "created_at"]

    def validate_read(self, value: bool) -> bool:
        if not value:
            raise serializers.ValidationError(_("A notification cannot be marked unread."))
        return value


class NotificationFilter(filters.FilterSet):
    unread = filters.BooleanFilter(field_name="read_at", lookup_expr="isnull")

    class Meta:
        model = Notification
        fields = ["unread", "verb", "late"]


class NotificationViewSet(VersionedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                          mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Your notifications, newest first. DELETE removes one of yours."""

    serializer_class = NotificationSerializer
    queryset = Notification.objects.all()
    filterset_class = NotificationFilter
    search_fields = ["title", "body"]
    ordering_fields = ["created_at", "read_at"]
    ordering = ["-created_at", "-id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.notification_list(user=self.request.user)

    def perform_update(self, serializer):
        if serializer.validated_data.get("is_read"):
            serializer.instance = services.notification_mark_read(notification=serializer.instance)

    def perform_destroy(self, instance):
        services.notification_delete(notification=instance, user=self.request.user)

    @extend_schema(request=None, responses=NotificationSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request, pk=None):
        """Mark one notification read (idempotent)."""
        notification = services.notification_mark_read(notification=self.get_object())
        return Response(self.get_serializer(notification).data)

    @extend_schema(request=None, responses=inline_serializer("NotificationReadAll", {"marked": serializers.IntegerField()}))
    @action(detail=False, methods=["post"], url_path="read-all")
    def read_all(self, request):
        """Mark all your unread notifications read; returns how many were."""
        return Response({"marked": services.notifications_mark_all_read(user=request.user)})


routes = [("notifications", NotificationViewSet, "notification")]
