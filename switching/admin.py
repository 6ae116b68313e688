"""Django admin: imports are read-only here (the wizard and the crm_import command run them)."""

from django.contrib import admin

from .models import Export, ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("file_name", "kind", "status", "total_rows", "created_rows", "updated_rows", "error_count",
                    "created_by", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("file_name", "created_by__username")
    list_select_related = ("created_by",)
    date_hierarchy = "created_at"
    exclude = ("file",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    """Exports are read-only here: requested and downloaded on /switching/exports/ (admins only)."""

    list_display = ("pk", "status", "requested_by", "created_at", "finished_at", "size", "expires_at")
    list_filter = ("status",)
    list_select_related = ("requested_by",)
    date_hierarchy = "created_at"
    exclude = ("file",)
    readonly_fields = ("status", "requested_by", "size", "row_counts", "failure", "created_at", "started_at",
                       "finished_at", "expires_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
