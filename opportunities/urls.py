from django.urls import path

from . import views

app_name = "opportunities"

urlpatterns = [
    path("", views.board_view, name="board"),
    path("pipeline/<int:pipeline_pk>/", views.board_view, name="board_pipeline"),
    path("column/<int:stage_pk>/", views.column_more, name="column_more"),
    path("list/", views.list_view, name="list"),
    path("list/export.csv", views.export_view, name="export"),
    path("new/", views.create_view, name="create"),
    path("<int:pk>/", views.detail_view, name="detail"),
    path("<int:pk>/edit/", views.edit_view, name="edit"),
    path("<int:pk>/move/", views.board_move, name="board_move"),
    path("<int:pk>/transition/<slug:action>/", views.transition_view, name="transition"),
    path("<int:pk>/criteria/", views.criteria_view, name="criteria"),
    path("<int:pk>/checklist/<int:item_pk>/", views.checklist_tick_view, name="checklist_tick"),
    # HTMX panel included by the customer page
    path("for-customer/<int:customer_pk>/", views.customer_panel, name="for_customer"),
]
