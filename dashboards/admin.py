from django.contrib import admin

from .models import DashboardSettings, Target


@admin.register(Target)
class TargetAdmin(admin.ModelAdmin):
    list_display = ("user", "month", "signed_revenue", "collected", "new_customers", "won_deals", "calls", "visits")
    list_filter = ("month", "user__team")
    search_fields = ("user__username", "user__first_name", "user__last_name")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)
    readonly_fields = ("updated_by", "updated_at")
    date_hierarchy = "month"

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(DashboardSettings)
class DashboardSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", "commit_probability")

    def has_add_permission(self, request):
        return not DashboardSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
