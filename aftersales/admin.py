"""Admin: the editable rules (kinds, SLA policies, settings, service plan templates) and read-only
views of tickets, breaches and surveys (tickets change through the pages and the API, which run the
services' rules)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.admin import ReadOnlyInline

from .models import (
    CustomerPortal,
    SatisfactionSurvey,
    ServicePlan,
    ServicePlanItem,
    ServicePlanTemplate,
    ServicePlanTemplateItem,
    ServiceSettings,
    SlaBreach,
    SlaPolicy,
    Ticket,
    TicketComment,
    TicketKind,
    TicketStatusChange,
)


@admin.register(ServiceSettings)
class ServiceSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "reopen_window_days", "survey_valid_days", "business_day_start", "business_day_end",
                    "business_weekdays", "service_team")
    autocomplete_fields = ("service_team",)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not ServiceSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TicketKind)
class TicketKindAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_en", "is_active", "position")
    list_editable = ("name", "name_en", "is_active", "position")
    search_fields = ("code", "name", "name_en")


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    list_display = ("priority", "response_minutes", "resolution_minutes", "warning_minutes", "business_hours_only")
    list_editable = ("response_minutes", "resolution_minutes", "warning_minutes", "business_hours_only")


class StatusChangeInline(ReadOnlyInline):
    model = TicketStatusChange
    fields = ("at", "from_status", "to_status", "by", "by_customer", "note")
    readonly_fields = fields


class CommentInline(ReadOnlyInline):
    model = TicketComment
    fields = ("created_at", "author", "by_customer", "visibility", "body")
    readonly_fields = fields


class BreachInline(ReadOnlyInline):
    model = SlaBreach
    fields = ("kind", "due_at", "detected_at", "owner", "notified_at")
    readonly_fields = fields


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("reference", "subject", "customer", "kind", "priority", "status", "owner", "team",
                    "resolution_due_at", "created_at")
    list_filter = ("status", "priority", "kind", "source")
    list_select_related = ("customer", "kind", "owner", "team")
    search_fields = ("subject", "customer__name", "requester_name", "requester_email")
    date_hierarchy = "created_at"
    inlines = [StatusChangeInline, CommentInline, BreachInline]
    readonly_fields = (
        "customer", "contact", "kind", "priority", "status", "owner", "team", "source", "created_by",
        "requester_name", "requester_email", "requester_phone", "response_due_at", "resolution_due_at",
        "first_responded_at", "resolved_at", "reopen_until", "closed_at", "created_at",
    )
    fields = ("subject", "description", *readonly_fields)

    @admin.display(description=_("reference"), ordering="pk")
    def reference(self, obj):
        return obj.reference

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def save_model(self, request, obj, form, change):
        if change:  # the API's ETag moves on, as with every change through aftersales.services
            obj.version = Ticket.objects.select_for_update().values_list("version", flat=True).get(pk=obj.pk) + 1
        super().save_model(request, obj, form, change)


@admin.register(SlaBreach)
class SlaBreachAdmin(admin.ModelAdmin):
    list_display = ("ticket", "kind", "due_at", "detected_at", "owner", "notified_at")
    list_filter = ("kind",)
    list_select_related = ("ticket", "owner")
    readonly_fields = ("ticket", "kind", "due_at", "detected_at", "owner", "notified_at")

    def has_add_permission(self, request):
        return False


@admin.register(SatisfactionSurvey)
class SatisfactionSurveyAdmin(admin.ModelAdmin):
    list_display = ("ticket", "sent_to", "created_at", "expires_at", "answered_at", "score")
    list_filter = ("score",)
    list_select_related = ("ticket",)
    readonly_fields = ("ticket", "sent_to", "sent_at", "created_at", "expires_at", "answered_at", "score", "comment")

    def has_add_permission(self, request):
        return False


class TemplateItemInline(admin.TabularInline):
    model = ServicePlanTemplateItem
    extra = 1


@admin.register(ServicePlanTemplate)
class ServicePlanTemplateAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "owner_source", "service_team")
    list_editable = ("is_active",)
    autocomplete_fields = ("service_team",)
    inlines = [TemplateItemInline]


class PlanItemInline(admin.TabularInline):
    model = ServicePlanItem
    extra = 0
    fields = ("title", "kind", "due_date", "owner", "status")
    raw_id_fields = ("owner",)


@admin.register(ServicePlan)
class ServicePlanAdmin(admin.ModelAdmin):
    list_display = ("name", "customer", "template", "created_at")
    list_select_related = ("customer", "template")
    search_fields = ("name", "customer__name")
    raw_id_fields = ("customer",)
    inlines = [PlanItemInline]

    def save_formset(self, request, form, formset, change):
        for item in formset.save(commit=False):
            item.customer_id = form.instance.customer_id
            item.team_id = item.team_id or (item.owner.team_id if item.owner else form.instance.customer.team_id)
            item.save()
        for obj in formset.deleted_objects:
            obj.delete()


@admin.register(CustomerPortal)
class CustomerPortalAdmin(admin.ModelAdmin):
    list_display = ("customer", "is_active", "created_at")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    search_fields = ("customer__name",)
