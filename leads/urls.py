from django.urls import path

from . import views

app_name = "leads"

urlpatterns = [
    path("", views.customer_list_view, name="customer_list"),
    path("<int:pk>/", views.customer_detail_view, name="customer_detail"),
]
