from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from activities import views as activities_views

from . import views

admin.site.site_header = _("Sales CRM administration")
admin.site.site_title = _("Sales CRM")
admin.site.index_title = _("Administration")

urlpatterns = [
    path("", activities_views.home, name="home"),  # the rep's day (activities app)
    path("healthz/", views.healthz, name="healthz"),
    # pages without our base layout (Django admin) make the browser ask for /favicon.ico
    path("favicon.ico", views.favicon),
    path("accounts/", include("accounts.urls")),
    path("customers/", include("leads.urls")),
    path("opportunities/", include("opportunities.urls")),
    path("activities/", include("activities.urls")),
    path("notifications/", include("notifications.urls")),
    path("contracts/", include("contracts.urls")),
    path("service/", include("aftersales.urls")),
    path("dashboards/", include("dashboards.urls")),
    path("switching/", include("switching.urls")),
    path("api/", include("crm.api_urls")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
