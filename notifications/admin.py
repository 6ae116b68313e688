from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import selectors, services
from .models import (
    Delivery,
    FailedDelivery,
    Notification,
    NotificationPreference,
    Reminder,
    SourceCursor,
    TeamWebhook,
)


class TeamWebhookForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")

    class Meta:
        model = TeamWebhook
        fields = ["team", "url", "format", "secret", "enabled"]


@admin.register(TeamWebhook)
class TeamWebhookAdmin(admin.ModelAdmin):
    form = TeamWebhookForm
    list_display = ["__str__", "team", "format", "enabled", "updated_at"]
    list_filter = ["format", "enabled"]
    list_select_related = ["team"]


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ["user", "in_app", "email", "webhook", "lead_minutes"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    raw_id_fields = ["user"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["title", "user", "verb", "late", "created_at", "read_at"]
    list_filter = ["verb", "late", ("read_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["title", "user__username"]
    readonly_fields = ["delivery", "created_at"]
    raw_id_fields = ["user"]


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["channel", "due_at", "status", "attempts", "next_attempt_at", "sent_at", "late", "last_error"]
    readonly_fields = fields


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = ["source", "key", "recipient", "due_at", "status", "late", "dispatched_at"]
    list_filter = ["status", "source", "late"]
    list_select_related = ["recipient"]
    search_fields = ["key", "recipient__username", "title"]
    date_hierarchy = "due_at"
    raw_id_fields = ["recipient"]
    readonly_fields = ["content_type", "object_id", "event_at", "dispatched_at", "created_at", "updated_at"]
    inlines = [DeliveryInline]


@admin.action(description=_("Retry the selected deliveries now"))
def retry_deliveries(modeladmin, request, queryset):
    count = sum(services.delivery_retry(delivery=delivery) for delivery in queryset)
    modeladmin.message_user(
        request,
        ngettext("%(count)d delivery will be retried.", "%(count)d deliveries will be retried.", count)
        % {"count": count},
        messages.SUCCESS,
    )


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["reminder", "channel", "status", "attempts", "next_attempt_at", "sent_at", "late"]
    list_filter = ["status", "channel", "late"]
    list_select_related = ["reminder__recipient"]
    search_fields = ["reminder__key", "reminder__recipient__username", "last_error"]
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = [retry_deliveries]

    def has_add_permission(self, request):
        return False


@admin.register(FailedDelivery)
class FailedDeliveryAdmin(DeliveryAdmin):
    """Failures made visible: deliveries that gave up, and those still retrying after an error."""

    list_display = ["reminder", "channel", "status", "attempts", "next_attempt_at", "last_error", "updated_at"]
    list_filter = ["channel", "status"]

    def get_queryset(self, request):
        return FailedDelivery.objects.filter(selectors.failing_q()).select_related("reminder__recipient")


@admin.register(SourceCursor)
class SourceCursorAdmin(admin.ModelAdmin):
    list_display = ["source", "scanned_until"]
    readonly_fields = ["source", "scanned_until"]

    def has_add_permission(self, request):
        return False

