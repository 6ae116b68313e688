from django.core.paginator import Paginator
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination as DrfPageNumberPagination

# query parameters that change neither which rows a list holds nor how many
NOT_FILTERS = frozenset({"page", "page_size", "ordering", "format"})


class KnownCountPaginator(Paginator):
    """A Paginator told its row count (from a summary table) instead of running COUNT(*)."""

    def __init__(self, *args, known_count: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.known_count = known_count

    @cached_property
    def count(self) -> int:
        return self.known_count


class PageNumberPagination(DrfPageNumberPagination):
    """`{"count", "next", "previous", "results"}`; `?page=` and `?page_size=` (at most 200).

    A view with a `scope_count(request)` method gives the count of its unfiltered list itself (exact,
    from a summary table, or None to count as usual); any filter, search or other parameter counts
    the rows as usual."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        known = None
        if view is not None and hasattr(view, "scope_count") and set(request.query_params) <= NOT_FILTERS:
            known = view.scope_count(request)
        if known is None:
            self.django_paginator_class = Paginator
        else:
            self.django_paginator_class = lambda object_list, per_page: KnownCountPaginator(
                object_list, per_page, known_count=known
            )
        return super().paginate_queryset(queryset, request, view)
