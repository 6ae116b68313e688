from django.contrib import admin

from .models import Customer


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "team", "updated_at")
    list_select_related = ("owner", "team")
    search_fields = ("name",)
    raw_id_fields = ("owner",)

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)
