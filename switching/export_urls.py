"""The export's pages (included by switching/urls.py)."""

from django.urls import path

from . import export_views

urlpatterns = [
    path("exports/", export_views.export_list, name="export_list"),
    path("exports/rows/", export_views.export_rows, name="export_rows"),
    path("exports/new/", export_views.export_request, name="export_request"),
    path("exports/<int:pk>/download/", export_views.export_download, name="export_download"),
]
