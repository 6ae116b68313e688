"""A test-only URLconf: a page and an API resource fetched through the scope rule, and a 403 page."""

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.urls import include, path
from rest_framework import serializers
from rest_framework.routers import SimpleRouter

from accounts.scope import get_visible_or_404
from crm.api import ScopedModelViewSet
from leads.models import Customer


def customer_page(request, pk):
    customer = get_visible_or_404(Customer.objects, request.user, pk=pk)
    return HttpResponse(customer.name)


def forbidden_page(request):
    raise PermissionDenied


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "name"]


class CustomerViewSet(ScopedModelViewSet):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer


router = SimpleRouter()
router.register("customers", CustomerViewSet, basename="customer")

urlpatterns = [
    path("c/<int:pk>/", customer_page),
    path("forbidden/", forbidden_page),
    path("api/", include(router.urls)),
    path("", include("crm.urls")),
]
