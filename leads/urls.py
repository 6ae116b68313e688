from django.urls import path

from . import views

app_name = "leads"

urlpatterns = [
    path("", views.customer_list_view, name="customer_list"),
    path("new/", views.customer_create_view, name="customer_create"),
    path("bulk/", views.customer_bulk_view, name="customer_bulk"),
    path("export/", views.customer_export_view, name="customer_export"),
    path("duplicates/", views.customer_duplicates_view, name="customer_duplicates"),
    path("pool/", views.pool_view, name="pool"),
    path("import/", views.import_upload_view, name="import_upload"),
    path("import/template.csv", views.import_template_view, name="import_template"),
    path("import/<int:pk>/", views.import_detail_view, name="import_detail"),
    path("import/<int:pk>/progress/", views.import_progress_view, name="import_progress"),
    path("web/<str:token>/", views.web_to_lead_view, name="web_to_lead"),
    path("<int:pk>/", views.customer_detail_view, name="customer_detail"),
    path("<int:pk>/edit/", views.customer_edit_view, name="customer_edit"),
    path("<int:pk>/reviewed/", views.customer_reviewed_view, name="customer_reviewed"),
    path("<int:pk>/claim/", views.customer_claim_view, name="customer_claim"),
    path("<int:pk>/assign/", views.customer_assign_view, name="customer_assign"),
    path("<int:pk>/release/", views.customer_release_view, name="customer_release"),
    path("<int:pk>/tier/", views.tier_override_view, name="tier_override"),
    path("<int:pk>/tier/reset/", views.tier_reset_view, name="tier_reset"),
    path("<int:pk>/merge/", views.customer_merge_view, name="customer_merge"),
    path("<int:pk>/contacts/new/", views.contact_edit_view, name="contact_create"),
    path("<int:pk>/contacts/<int:contact_pk>/", views.contact_edit_view, name="contact_edit"),
    path("<int:pk>/contacts/<int:contact_pk>/delete/", views.contact_delete_view, name="contact_delete"),
]
