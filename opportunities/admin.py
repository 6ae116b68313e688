"""Django admin: pipelines and their stages (add, rename, reorder, deactivate with reassignment), the
exit criteria and playbooks, loss reasons, priority weights, and a read-only view of opportunities.

Stage edits go through the same rules as everything else: deactivating a stage that holds deals
requires choosing where they go (`services.stage_deactivate` moves them and records each move); the
won and lost stages cannot be deleted, deactivated or re-kinded; a stage with deals or history cannot
be deleted (PROTECT), only deactivated. Opportunities are not edited here: their stage moves only
through the transitions (the pages and the API).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from crm.admin import EstimatedCountPaginator

from . import services
from .models import (
    EXIT_FIELDS,
    LossReason,
    Opportunity,
    Pipeline,
    PriorityWeights,
    Stage,
    StageChange,
    StageChecklistItem,
    StageKind,
)


class StageAdminForm(forms.ModelForm):
    """Exit fields chosen from the list; `move_opportunities_to` when deactivating a stage with deals."""

    exit_fields = forms.MultipleChoiceField(
        label=_("required fields to leave the stage"),
        choices=[(key, label) for key, label in EXIT_FIELDS.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    move_opportunities_to = forms.ModelChoiceField(
        label=_("move its opportunities to"),
        queryset=Stage.objects.none(),
        required=False,
        help_text=_("Required when you deactivate a stage that holds opportunities."),
    )

    class Meta:
        model = Stage
        fields = (
            "name_zh", "name_en", "code", "order", "default_probability", "stall_days", "is_active",
            "exit_fields", "playbook_zh", "playbook_en",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        instance = self.instance
        if instance.pk:
            self.fields["move_opportunities_to"].queryset = Stage.objects.filter(
                pipeline_id=instance.pipeline_id, kind=StageKind.OPEN, is_active=True
            ).exclude(pk=instance.pk)
            if not instance.is_open:
                # the won and lost stages: always active, nothing to move
                self.fields["is_active"].disabled = True
                self.fields["move_opportunities_to"].disabled = True
        self.fields["move_opportunities_to"].label_from_instance = lambda stage: f"{stage.order} · {stage.name}"

    def deactivating(self) -> bool:
        return bool(self.instance.pk) and "is_active" in self.changed_data and not self.cleaned_data.get("is_active")

    def clean(self):
        cleaned = super().clean()
        if self.deactivating():
            held = Opportunity.objects.filter(stage_id=self.instance.pk).count()
            if held and not cleaned.get("move_opportunities_to"):
                self.add_error(
                    "move_opportunities_to",
                    _("This stage holds %(count)s opportunities: choose the stage they move to.") % {"count": held},
                )
        return cleaned

    def save(self, commit=True):
        # Deactivation is the service's job (it moves the deals first): keep the row active here.
        self._deactivate = self.deactivating()
        if self._deactivate:
            self.instance.is_active = True
        return super().save(commit=commit)

    def finish(self, user) -> None:
        """After the row is saved: deactivate through the service (moving the deals)."""
        if getattr(self, "_deactivate", False):
            services.stage_deactivate(
                stage=self.instance, user=user, move_to=self.cleaned_data.get("move_opportunities_to")
            )
            self.instance.is_active = False


class StageInline(admin.TabularInline):
    model = Stage
    form = StageAdminForm
    fields = ("order", "name_zh", "name_en", "kind", "default_probability", "stall_days", "is_active",
              "move_opportunities_to")
    readonly_fields = ("kind",)
    extra = 0
    show_change_link = True
    ordering = ("order", "id")

    def has_delete_permission(self, request, obj=None):
        return False  # delete single open stages from the stage page (won/lost never)


@admin.register(Pipeline)
class PipelineAdmin(SimpleHistoryAdmin):
    list_display = ("name_zh", "name_en", "code", "is_default", "is_active", "order")
    list_editable = ("order",)
    inlines = [StageInline]
    prepopulated_fields = {"code": ("name_en",)}

    def save_related(self, request, form, formsets, change):
        with transaction.atomic():
            super().save_related(request, form, formsets, change)
            for formset in formsets:
                for stage_form in formset.forms:
                    if hasattr(stage_form, "finish") and stage_form.has_changed():
                        stage_form.finish(request.user)
            services.pipeline_ensure_closed_stages(pipeline=form.instance)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and (obj.is_default or obj.opportunities.exists()):
            return False
        return super().has_delete_permission(request, obj)


class ChecklistItemInline(admin.TabularInline):
    model = StageChecklistItem
    fields = ("order", "text_zh", "text_en")
    extra = 1


@admin.register(Stage)
class StageAdmin(SimpleHistoryAdmin):
    form = StageAdminForm
    list_display = ("name_zh", "name_en", "pipeline", "order", "kind", "default_probability", "stall_days", "is_active")
    list_filter = ("pipeline", "kind", "is_active")
    list_select_related = ("pipeline",)
    ordering = ("pipeline", "order", "id")
    inlines = [ChecklistItemInline]

    def get_fields(self, request, obj=None):
        fields = ["pipeline", *StageAdminForm.Meta.fields]
        if obj is not None:
            fields.insert(fields.index("is_active") + 1, "move_opportunities_to")
        return fields

    def get_readonly_fields(self, request, obj=None):
        return ("pipeline", "kind") if obj is not None else ()

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            form.finish(request.user)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not obj.is_open:
            return False  # the won and lost stages stay
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # one by one, so won/lost and PROTECT are checked per row
        return actions


@admin.register(LossReason)
class LossReasonAdmin(admin.ModelAdmin):
    list_display = ("name_zh", "name_en", "order", "is_active")
    list_editable = ("order", "is_active")

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.opportunities.exists():
            return False  # used by deals: deactivate it instead
        return super().has_delete_permission(request, obj)


@admin.register(PriorityWeights)
class PriorityWeightsAdmin(SimpleHistoryAdmin):
    fieldsets = (
        (_("Weights"), {"fields": ("weight_amount", "weight_tier", "weight_probability", "weight_recency")}),
        (_("Parts"), {"fields": ("amount_full_marks", "tier_a_marks", "tier_b_marks", "tier_c_marks", "recency_days")}),
    )

    def has_add_permission(self, request):
        return not PriorityWeights.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


class StageChangeInline(admin.TabularInline):
    model = StageChange
    fields = ("changed_at", "action", "from_stage", "to_stage", "changed_by", "note", "seconds_in_previous_stage", "imported")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("changed_at", "id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Opportunity)
class OpportunityAdmin(SimpleHistoryAdmin):
    """Read-only here: deals are edited and moved on their pages (the same services, the same rules)."""

    list_display = ("title", "customer", "stage", "amount", "currency", "probability", "priority_score", "owner",
                    "expected_close_date")
    list_filter = ("pipeline", "stage__kind", "currency", "source")
    list_select_related = ("customer", "stage", "owner")
    search_fields = ("title", "customer__name")
    show_full_result_count = False
    inlines = [StageChangeInline]
    paginator = EstimatedCountPaginator

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Opportunity._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # view only

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False
