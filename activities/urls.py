from django.urls import path

from . import views

app_name = "activities"

urlpatterns = [
    path("", views.activity_list, name="list"),
    path("new/", views.activity_create, name="create"),
    path("quick-log/", views.quick_log, name="quick_log"),
    path("calendar/", views.calendar, name="calendar"),
    path("calendar/feed/", views.feed_settings, name="feed_settings"),
    path("calendar/<str:token>.ics", views.ical_feed, name="ical_feed"),
    path("team/", views.team, name="team"),
    path("plans/", views.plan_list, name="plan_list"),
    path("plans/new/", views.plan_create, name="plan_create"),
    path("plans/<int:pk>/", views.plan_detail, name="plan_detail"),
    path("plans/<int:pk>/cancel/", views.plan_cancel, name="plan_cancel"),
    path("for-customer/<int:customer_pk>/", views.for_customer, name="for_customer"),
    path("for-opportunity/<int:opportunity_pk>/", views.for_opportunity, name="for_opportunity"),
    path("<int:pk>/", views.activity_detail, name="detail"),
    path("<int:pk>/edit/", views.activity_edit, name="edit"),
    path("<int:pk>/complete/", views.activity_complete, name="complete"),
    path("<int:pk>/cancel/", views.activity_cancel, name="cancel"),
    path("<int:pk>/reopen/", views.activity_reopen, name="reopen"),
    path("<int:pk>/reschedule/", views.activity_reschedule, name="reschedule"),
]
