"""The REST API's routes. Each app keeps its viewsets in its own api.py and lists them there as
`routes = [(prefix, ViewSet, basename), ...]` (and optionally `urlpatterns` for non-router views);
they are registered here in INSTALLED_APPS order under /api/v1/."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

router = DefaultRouter()
extra_v1 = []
for config in apps.get_app_configs():
    module_name = f"{config.name}.api"
    if config.name == "crm" or find_spec(module_name) is None:
        continue
    module = import_module(module_name)
    for prefix, viewset, basename in getattr(module, "routes", []):
        router.register(prefix, viewset, basename=basename)
    extra_v1.extend(getattr(module, "urlpatterns", []))

urlpatterns = [
    path("v1/", include([*extra_v1, *router.urls])),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script from a URL: no inline script for the CSP.
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
