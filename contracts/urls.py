from django.urls import path

from . import views

app_name = "contracts"

urlpatterns = [
    path("", views.contract_list, name="list"),
    path("new/", views.contract_create, name="create"),
    path("review/", views.review_queue, name="review_queue"),
    path("<int:pk>/", views.contract_detail, name="detail"),
    path("<int:pk>/edit/", views.contract_edit, name="edit"),
    path("<int:pk>/sign/", views.contract_sign, name="sign"),
    path("<int:pk>/print/", views.contract_print, name="print"),
    path("<int:pk>/receipts/", views.receipt_create, name="receipt_create"),
    path("<int:pk>/attachments/", views.attachment_upload, name="attachment_upload"),
    path("<int:pk>/attachments/<int:attachment_pk>/", views.attachment_download, name="attachment"),
    path("<int:pk>/attachments/<int:attachment_pk>/delete/", views.attachment_delete, name="attachment_delete"),
    path("<int:pk>/<slug:action>/", views.contract_action, name="action"),
    # HTMX panels included by the customer and opportunity pages
    path("for-customer/<int:customer_pk>/", views.contracts_for_customer, name="for_customer"),
    path("for-opportunity/<int:opportunity_pk>/", views.contracts_for_opportunity, name="for_opportunity"),
]
