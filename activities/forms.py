from __future__ import annotations

import uuid
from datetime import timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from leads.models import Contact, Customer
from opportunities.models import Opportunity

from . import selectors
from .models import Activity, ActivityKind, Outcome, PlanTemplate

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=DATETIME_FORMAT)


def _datetime_field(label, required=False, help_text=""):
    return forms.DateTimeField(
        label=label, required=required, widget=DateTimeLocalInput(), help_text=help_text,
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
    )


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class CustomerChoiceMixin:
    """A customer field validated against the user's scope, listing only the user's own customers (a
    manager's scope can hold thousands); a preselected customer is always listed."""

    def _setup_customer(self, user, customer: Customer | None) -> None:
        field = self.fields["customer"]
        field.queryset = Customer.objects.visible_to(user)
        own = list(Customer.objects.filter(owner=user).order_by("name").values_list("pk", "name")[:500])
        if customer is not None and customer.pk not in {pk for pk, _n in own}:
            own.insert(0, (customer.pk, customer.name))
        field.choices = [("", "---------"), *own]


class QuickLogForm(forms.Form):
    """Log a done activity from the customer or deal page. The hidden key makes a resubmit a no-op."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    kind = forms.ModelChoiceField(label=_("Kind"), queryset=ActivityKind.objects.none(), empty_label=None)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    contact = forms.ModelChoiceField(label=_("Contact"), queryset=Contact.objects.none(), required=False)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    outcome = forms.ChoiceField(label=_("Outcome"), choices=[("", "---------"), *Outcome.choices], required=False)
    next_step = forms.CharField(label=_("Next step"), max_length=255, required=False)
    follow_up_at = _datetime_field(_("Plan the next step at"))
    duration_minutes = forms.IntegerField(label=_("Duration (minutes)"), min_value=1, max_value=1440, required=False)
    done_at = _datetime_field(_("Done at"), help_text=_("Empty: now."))

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].queryset = selectors.kinds()
        self.fields["contact"].queryset = customer.contacts.all()
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", new_idempotency_key())

    def clean_done_at(self):
        value = self.cleaned_data.get("done_at")
        if value and value > timezone.now() + timedelta(minutes=5):
            raise forms.ValidationError(_("A done activity cannot be in the future."))
        return value


class ActivityForm(CustomerChoiceMixin, forms.ModelForm):
    """Plan an activity."""

    customer = forms.ModelChoiceField(label=_("Customer"), queryset=Customer.objects.none())
    planned_at = _datetime_field(_("Planned at"), required=True)
    due_at = _datetime_field(_("Due at"))
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    class Meta:
        model = Activity
        fields = ["customer", "kind", "subject", "planned_at", "due_at", "duration_minutes", "contact",
                  "opportunity", "owner", "notes"]

    def __init__(self, *args, user, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_customer(user, customer)
        self.fields["kind"].queryset = selectors.kinds()
        self.fields["owner"].queryset = selectors.owner_choices(user=user)
        self.fields["owner"].initial = user.pk
        self.fields["contact"].queryset = Contact.objects.filter(customer=customer) if customer else Contact.objects.none()
        self.fields["opportunity"].queryset = (
            Opportunity.objects.visible_to(user).filter(customer=customer) if customer else Opportunity.objects.none()
        )
        if customer is not None:
            self.fields["customer"].initial = customer.pk
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", new_idempotency_key())


class ActivityEditForm(forms.ModelForm):
    class Meta:
        model = Activity
        fields = ["kind", "subject", "contact", "duration_minutes", "outcome", "next_step", "notes"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].queryset = selectors.kinds()
        self.fields["contact"].queryset = Contact.objects.filter(customer_id=self.instance.customer_id)


class CompleteForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=[("", "---------"), *Outcome.choices], required=False)
    next_step = forms.CharField(label=_("Next step"), max_length=255, required=False)
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    duration_minutes = forms.IntegerField(label=_("Duration (minutes)"), min_value=1, max_value=1440, required=False)
    done_at = _datetime_field(_("Done at"), help_text=_("Empty: now."))
    follow_up_at = _datetime_field(_("Plan the next step at"))


class RescheduleForm(forms.Form):
    planned_at = _datetime_field(_("Planned at"), required=True)
    due_at = _datetime_field(_("Due at"))


class SeriesPlanForm(CustomerChoiceMixin, forms.Form):
    customer = forms.ModelChoiceField(label=_("Customer"), queryset=Customer.objects.none())
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none())
    kind = forms.ModelChoiceField(label=_("Kind"), queryset=ActivityKind.objects.none(), empty_label=None)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    first_at = _datetime_field(_("First at"), required=True)
    interval_days = forms.IntegerField(label=_("Every (days)"), min_value=1, max_value=365, initial=7)
    occurrences = forms.IntegerField(label=_("Occurrences"), min_value=1, max_value=52, initial=4)

    def __init__(self, *args, user, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_customer(user, customer)
        self.fields["owner"].queryset = selectors.owner_choices(user=user)
        self.fields["owner"].initial = user.pk
        self.fields["kind"].queryset = selectors.kinds()
        if customer is not None:
            self.fields["customer"].initial = customer.pk


class TemplatePlanForm(CustomerChoiceMixin, forms.Form):
    customer = forms.ModelChoiceField(label=_("Customer"), queryset=Customer.objects.none())
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none())
    template = forms.ModelChoiceField(label=_("Template"), queryset=PlanTemplate.objects.filter(is_active=True))
    start = forms.DateField(label=_("Start"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, user, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._setup_customer(user, customer)
        self.fields["owner"].queryset = selectors.owner_choices(user=user)
        self.fields["owner"].initial = user.pk
        self.fields["start"].initial = timezone.localdate()
        if customer is not None:
            self.fields["customer"].initial = customer.pk
