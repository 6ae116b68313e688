from django.urls import path

from . import views

app_name = "aftersales"

urlpatterns = [
    path("", views.ticket_list, name="ticket_list"),
    path("tickets/new/", views.ticket_create, name="ticket_create"),
    path("tickets/<int:pk>/", views.ticket_detail, name="ticket_detail"),
    path("tickets/<int:pk>/edit/", views.ticket_edit, name="ticket_edit"),
    path("tickets/<int:pk>/move/", views.ticket_transition, name="ticket_transition"),
    path("tickets/<int:pk>/assign/", views.ticket_assign, name="ticket_assign"),
    path("tickets/<int:pk>/comments/", views.ticket_comment, name="ticket_comment"),
    path("tickets/<int:pk>/attachments/", views.ticket_attachment_upload, name="ticket_attachment_upload"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment_download"),
    path("customers/<int:customer_pk>/panel/", views.for_customer, name="for_customer"),
    path("customers/<int:customer_pk>/portal/", views.customer_portal, name="customer_portal"),
    path("customers/<int:customer_pk>/plan/", views.customer_plan, name="customer_plan"),
    path("plan/", views.plan_item_list, name="plan_item_list"),
    path("plan/<int:pk>/edit/", views.plan_item_edit, name="plan_item_edit"),
    path("plan/<int:pk>/status/", views.plan_item_status, name="plan_item_status"),
    path("plan/<int:pk>/ticket/", views.plan_item_ticket, name="plan_item_ticket"),
    # public pages (no login): the token is the key
    path("public/form/<str:token>/", views.public_ticket_new, name="public_ticket_new"),
    path("public/ticket/<str:token>/", views.public_ticket, name="public_ticket"),
    path("survey/<str:token>/", views.survey, name="survey"),
]
