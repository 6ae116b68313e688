from django.contrib import admin


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows a record's child rows (history, lines) without letting the admin edit them:
    those rows are written only by the app's services."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False
