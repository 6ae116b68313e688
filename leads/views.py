from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render

from .selectors import customer_get_for_user, customer_list


@login_required
def customer_list_view(request):
    page = Paginator(customer_list(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "leads/customer_list.html", {"page": page})


@login_required
def customer_detail_view(request, pk: int):
    customer = customer_get_for_user(user=request.user, pk=pk)
    return render(request, "leads/customer_detail.html", {"customer": customer})
