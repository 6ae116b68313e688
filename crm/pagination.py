from functools import partial

from django.core.paginator import Paginator
from django.utils.functional import cached_property
from rest_framework.pagination import PageNumberPagination as DrfPageNumberPagination

# query parameters that change neither which rows a list holds nor how many
NOT_FILTERS = frozenset({"page", "page_size", "ordering", "format"})


class KnownCountPaginator(Paginator):
    """A Paginator that may be told its row count (from a summary table) instead of running COUNT(*);
    `known_count` None counts as usual."""

    def __init__(self, *args, known_count: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.known_count = known_count

    @cached_property
    def count(self) -> int:
        return super().count if self.known_count is None else self.known_count


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
        self.django_paginator_class = partial(KnownCountPaginator, known_count=known)
        return super().paginate_queryset(queryset, request, view)
