from django.urls import path

from . import views

app_name = "dashboards"

urlpatterns = [
    path("", views.team, name="team"),
    path("me/", views.mine, name="mine"),
    path("targets/", views.targets, name="targets"),
    path("review/", views.review, name="review"),
    path("export/<slug:section>.csv", views.export, name="export"),
]
