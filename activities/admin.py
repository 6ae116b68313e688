from django.contrib import admin

from crm.admin import EstimatedCountPaginator

from .models import Activity, ActivityKind, ActivityPlan, CalendarFeed, PlanTemplate, PlanTemplateStep


@admin.register(ActivityKind)
class ActivityKindAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "name_en", "icon", "counts_as_contact", "is_active", "position"]
    list_editable = ["is_active", "position"]


class PlanTemplateStepInline(admin.TabularInline):
    model = PlanTemplateStep
    extra = 1


@admin.register(PlanTemplate)
class PlanTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "name_en", "is_active"]
    inlines = [PlanTemplateStepInline]


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    """Read-mostly: activities change through the pages (services), so the admin cannot bypass the rules."""

    list_display = ["subject", "kind", "customer", "owner", "status", "planned_at", "done_at", "outcome"]
    # created_at as a list filter (today / 7 days / this month / this year: index ranges), not a
    # date_hierarchy, whose year and month links need SELECT DISTINCT over every activity (436 ms at
    # the issue-8 size of 3M activities)
    list_filter = ["status", "kind", "outcome", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["kind", "customer", "owner"]
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    search_fields = ["subject", "customer__name", "owner__username"]
    readonly_fields = [f.name for f in Activity._meta.fields]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)


@admin.register(ActivityPlan)
class ActivityPlanAdmin(admin.ModelAdmin):
    list_display = ["title", "customer", "owner", "template", "interval_days", "occurrences", "status", "created_at"]
    list_filter = ["status", "template"]
    list_select_related = ["customer", "owner", "template"]
    readonly_fields = [f.name for f in ActivityPlan._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    """Admins can revoke a feed (delete it); the token itself is never shown."""

    list_display = ["user", "created_at", "last_used_at"]
    list_select_related = ["user"]
    fields = ["user", "created_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False
