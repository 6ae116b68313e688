from django.urls import path

from . import views

app_name = "switching"

# the import wizard (switching/views.py)
urlpatterns: list = [
    path("import/", views.import_upload, name="import_upload"),
    path("import/template/<str:kind>.<str:fmt>", views.import_template, name="import_template"),
    path("import/<int:pk>/", views.import_detail, name="import_detail"),
    path("import/<int:pk>/mapping/", views.import_mapping, name="import_mapping"),
    path("import/<int:pk>/confirm/", views.import_confirm, name="import_confirm"),
    path("import/<int:pk>/progress/", views.import_progress, name="import_progress"),
    path("import/<int:pk>/errors.csv", views.import_errors, name="import_errors"),
]

# export everything (switching/export_views.py)
from .export_urls import urlpatterns as export_urlpatterns  # noqa: E402

urlpatterns += export_urlpatterns
