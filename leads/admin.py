from django import forms
from django.contrib import admin, messages
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from crm.admin import EstimatedCountPaginator

from . import services
from .models import (
    Contact,
    Customer,
    CustomerImport,
    CustomerMerge,
    FollowUpCadence,
    LeadSettings,
    OwnershipChange,
    SourceChannel,
    Tag,
    TierRule,
)
from .tiering import metric_choices, registered_metrics


def _next_version(model, pk: int) -> int:
    """The version after the current one, read under the row lock (admin saves run in a transaction):
    a change made here moves the API's ETag on, as every save through leads.services does."""
    return model.objects.select_for_update().values_list("version", flat=True).get(pk=pk) + 1


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = ("name", "title", "phone", "email", "wechat", "is_decision_maker")


@admin.register(Customer)
class CustomerAdmin(SimpleHistoryAdmin):
    list_display = ("name", "tier", "status", "owner", "team", "source", "next_follow_up_at", "updated_at")
    list_filter = ("tier", "status", "source", "tier_source", "customer_type", "industry")
    list_select_related = ("owner", "team", "source")
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    search_fields = ("name", "phone", "email", "external_id")
    raw_id_fields = ("owner",)
    filter_horizontal = ("tags",)
    readonly_fields = ("version", "tier_explanation", "tier_computed_at", "created_at", "updated_at", "created_by")
    inlines = [ContactInline]
    actions = ["recompute_tiers"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def save_model(self, request, obj, form, change):
        if change:
            obj.version = _next_version(Customer, obj.pk)
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change):
        for contact_form in formset.forms:
            contact = contact_form.instance
            if contact.pk and contact_form.has_changed() and contact_form not in formset.deleted_forms:
                contact.version = _next_version(Contact, contact.pk)
        super().save_formset(request, form, formset, change)

    @admin.action(description=_("Recompute the tier of the selected customers"))
    def recompute_tiers(self, request, queryset):
        for customer in queryset:
            services.tier_recompute(customer=customer, by=request.user)
        self.message_user(request, _("Tiers recomputed."), messages.SUCCESS)


@admin.register(Contact)
class ContactAdmin(SimpleHistoryAdmin):
    list_display = ("name", "customer", "title", "phone", "email", "is_decision_maker")
    list_select_related = ("customer",)
    search_fields = ("name", "phone", "email", "customer__name")
    raw_id_fields = ("customer",)

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__in=Customer.objects.visible_to(request.user))

    def save_model(self, request, obj, form, change):
        if change:
            obj.version = _next_version(Contact, obj.pk)
        super().save_model(request, obj, form, change)


@admin.register(SourceChannel)
class SourceChannelAdmin(admin.ModelAdmin):
    list_display = ("__str__", "code", "is_active", "order", "web_enabled", "web_team", "web_assignment", "web_address")
    list_editable = ("is_active", "order")
    readonly_fields = ("web_address",)

    @admin.display(description=_("web-to-lead address"))
    def web_address(self, obj):
        return obj.get_web_url() if obj.pk else ""


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ("name",)


class TierRuleForm(forms.ModelForm):
    class Meta:
        model = TierRule
        fields = ["tier", "metric", "threshold", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["metric"] = forms.ChoiceField(label=_("metric"), choices=metric_choices())


@admin.register(TierRule)
class TierRuleAdmin(admin.ModelAdmin):
    form = TierRuleForm
    list_display = ("__str__", "tier", "metric", "threshold", "is_active", "metric_available")
    list_editable = ("threshold", "is_active")
    actions = ["recompute_all"]

    @admin.display(boolean=True, description=_("metric available"))
    def metric_available(self, obj):
        return obj.metric in registered_metrics()

    @admin.action(description=_("Recompute every customer's tier now"))
    def recompute_all(self, request, queryset):
        from .tasks import tier_recompute_all

        tier_recompute_all.delay()
        self.message_user(request, _("The tiers are being recomputed in the background."), messages.SUCCESS)


@admin.register(FollowUpCadence)
class FollowUpCadenceAdmin(admin.ModelAdmin):
    list_display = ("tier", "days")
    list_editable = ("days",)


@admin.register(LeadSettings)
class LeadSettingsAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return not LeadSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(OwnershipChange)
class OwnershipChangeAdmin(ReadOnlyAdmin):
    list_display = ("customer", "kind", "from_owner", "to_owner", "by", "at")
    list_filter = ("kind",)
    list_select_related = ("customer", "from_owner", "to_owner", "by")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(customer__in=Customer.objects.visible_to(request.user))


@admin.register(CustomerMerge)
class CustomerMergeAdmin(ReadOnlyAdmin):
    list_display = ("merged_name", "merged_id", "survivor", "merged_by", "merged_at")
    list_select_related = ("survivor", "merged_by")

    def get_queryset(self, request):
        return super().get_queryset(request).filter(survivor__in=Customer.objects.visible_to(request.user))


@admin.register(CustomerImport)
class CustomerImportAdmin(ReadOnlyAdmin):
    list_display = ("file_name", "status", "total_rows", "processed_rows", "created_count", "updated_count",
                    "skipped_count", "created_by", "created_at")
    list_filter = ("status",)
    exclude = ("rows",)

    def get_queryset(self, request):
        from accounts.scope import managed_user_ids

        qs = super().get_queryset(request)
        ids = managed_user_ids(request.user)
        return qs if ids is None else qs.filter(created_by_id__in=ids)
