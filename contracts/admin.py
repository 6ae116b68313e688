"""Admin: the editable rules (contract settings: number pattern, second-approval threshold, attachment
size) and read-only views of contracts, the approval trail and payments. Contracts change through the
pages, which run the services' rules."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from crm.admin import EstimatedCountPaginator, ReadOnlyInline

from .models import (
    Contract,
    ContractApproval,
    ContractAttachment,
    ContractLine,
    ContractNumberCounter,
    ContractSettings,
    PaymentInstalment,
    PaymentReceipt,
)


@admin.register(ContractSettings)
class ContractSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "number_pattern", "second_approval_threshold", "max_attachment_mb")

    def has_add_permission(self, request):
        return super().has_add_permission(request) and not ContractSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ContractNumberCounter)
class ContractNumberCounterAdmin(admin.ModelAdmin):
    list_display = ("year", "last_seq")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LineInline(ReadOnlyInline):
    model = ContractLine
    fields = ("position", "name", "quantity", "unit_price", "discount_percent", "tax_rate")
    readonly_fields = fields


class InstalmentInline(ReadOnlyInline):
    model = PaymentInstalment
    fields = ("due_date", "amount", "paid_amount", "note")
    readonly_fields = fields


class ApprovalInline(ReadOnlyInline):
    model = ContractApproval
    fields = ("review_round", "action", "level", "actor", "comment", "created_at")
    readonly_fields = fields


class AttachmentInline(ReadOnlyInline):
    model = ContractAttachment
    fields = ("kind", "original_name", "content_type", "size", "uploaded_by", "uploaded_at")
    readonly_fields = fields


@admin.register(Contract)
class ContractAdmin(SimpleHistoryAdmin):
    list_display = ("number", "title", "customer", "owner", "status", "total_amount", "currency", "signed_on")
    list_filter = ("status", "currency")
    search_fields = ("number", "title", "customer__name")
    list_select_related = ("customer", "owner")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    inlines = [LineInline, InstalmentInline, ApprovalInline, AttachmentInline]

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PaymentReceipt)
class PaymentReceiptAdmin(admin.ModelAdmin):
    list_display = ("contract", "received_on", "amount", "method", "reference", "recorded_by")
    list_select_related = ("contract", "recorded_by")
    list_filter = ("method",)
    search_fields = ("contract__number", "reference")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
