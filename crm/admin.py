from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.utils.functional import cached_property


class ReadOnlyInline(admin.TabularInline):
    """An inline that shows a record's child rows (history, lines) without letting the admin edit them:
    those rows are written only by the app's services."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class EstimatedCountPaginator(Paginator):
    """The admin changelist's paginator over tables of millions of rows: an unfiltered list takes its
    row count from PostgreSQL's statistics (pg_class.reltuples, kept by ANALYZE/autovacuum) instead of a
    COUNT(*) that reads the whole table; a filtered or searched list counts exactly. Use it with
    `show_full_result_count = False` (no second, unfiltered count)."""

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is not None and not query.where and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                               [query.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] >= 10000:  # small tables: the exact count is cheap
                return int(row[0])
        return super().count
