"""Forms of the contract pages. They parse input only; the rules live in contracts.services."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.forms import formset_factory
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.scope import managed_user_ids
from leads.models import Contact, Customer

from .models import AttachmentKind, Contract, ContractStatus, PaymentInstalment, PaymentMethod

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class BootstrapMixin:
    """Bootstrap 5 classes on every widget (small controls)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.HiddenInput):
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


class ContractForm(BootstrapMixin, forms.ModelForm):
    """The contract's own fields; the customer is chosen when drafting only."""

    customer = forms.ModelChoiceField(label=_("Customer"), queryset=Customer.objects.none())

    class Meta:
        model = Contract
        fields = ["title", "customer", "contact", "currency", "start_date", "end_date", "payment_terms", "terms"]
        widgets = {
            "start_date": DATE,
            "end_date": DATE,
            "payment_terms": forms.Textarea(attrs={"rows": 2}),
            "terms": forms.Textarea(attrs={"rows": 6}),
        }

    def __init__(self, *args, user: User, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = Customer.objects.visible_to(user).order_by("name")
        if self.instance.pk:
            # the customer of a contract never changes
            del self.fields["customer"]
            customer = self.instance.customer
        elif customer is not None:
            self.fields["customer"].initial = customer.pk
            self.fields["customer"].disabled = True
            self.fields["customer"].queryset = Customer.objects.filter(pk=customer.pk)
        contacts = Contact.objects.none()
        if customer is not None:
            contacts = Contact.objects.filter(customer=customer)
        elif self.data.get(self.add_prefix("customer")):
            try:
                contacts = Contact.objects.filter(customer_id=int(self.data[self.add_prefix("customer")]))
            except (TypeError, ValueError):
                contacts = Contact.objects.none()
        self.fields["contact"].queryset = contacts
        self.fields["contact"].required = False

    def clean(self):
        cleaned = super().clean()
        contact, customer = cleaned.get("contact"), cleaned.get("customer") or getattr(self.instance, "customer", None)
        if contact and customer and contact.customer_id != customer.pk:
            self.add_error("contact", _("The contact does not belong to this customer."))
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The end date cannot be before the start date."))
        return cleaned

    def _post_clean(self):
        # The model instance is filled by the service (the status field is protected): skip
        # ModelForm's construct-and-validate step.
        pass


class LineForm(BootstrapMixin, forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(label=_("Product or service"), max_length=200)
    quantity = forms.DecimalField(label=_("Quantity"), max_digits=12, decimal_places=2, min_value=Decimal("0.01"),
                                  initial=Decimal("1"))
    unit_price = forms.DecimalField(label=_("Unit price"), max_digits=14, decimal_places=2, min_value=0)
    discount_percent = forms.DecimalField(label=_("Discount %"), max_digits=5, decimal_places=2, min_value=0,
                                          max_value=100, initial=Decimal("0"))
    tax_rate = forms.DecimalField(label=_("Tax rate %"), max_digits=5, decimal_places=2, min_value=0,
                                  max_value=100, initial=Decimal("13"))


class InstalmentForm(BootstrapMixin, forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    due_date = forms.DateField(label=_("Due date"), widget=DATE)
    amount = forms.DecimalField(label=_("Amount"), max_digits=16, decimal_places=2, min_value=Decimal("0.01"))
    note = forms.CharField(label=_("Note"), max_length=200, required=False)


LineFormSet = formset_factory(LineForm, extra=1, can_delete=True)
InstalmentFormSet = formset_factory(InstalmentForm, extra=1, can_delete=True)


def formset_rows(formset) -> list[dict]:
    """The filled, not deleted rows of a valid formset, as dicts for the services."""
    rows = []
    for form in formset.forms:
        if not form.has_changed() and not form.cleaned_data.get("id"):
            continue
        if form.cleaned_data.get("DELETE"):
            continue
        row = {k: v for k, v in form.cleaned_data.items() if k != "DELETE"}
        if not row.get("id"):
            row.pop("id", None)
        rows.append(row)
    return rows


class ContractFilterForm(BootstrapMixin, forms.Form):
    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("All statuses")), *ContractStatus.choices])
    owner = forms.ModelChoiceField(label=_("Owner"), required=False, queryset=User.objects.none(),
                                   empty_label=_("All owners"))
    date_from = forms.DateField(label=_("From"), required=False, widget=DATE)
    date_to = forms.DateField(label=_("To"), required=False, widget=DATE)
    overdue = forms.BooleanField(label=_("Overdue payments only"), required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        ids = managed_user_ids(user)
        owners = User.objects.filter(is_active=True).order_by("username")
        if ids is not None:
            owners = owners.filter(pk__in=ids)
        self.fields["owner"].queryset = owners


class CommentForm(BootstrapMixin, forms.Form):
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RejectForm(BootstrapMixin, forms.Form):
    comment = forms.CharField(label=_("What must change?"), widget=forms.Textarea(attrs={"rows": 3}))


class TerminateForm(BootstrapMixin, forms.Form):
    reason = forms.CharField(label=_("Reason for termination"), widget=forms.Textarea(attrs={"rows": 3}))


class SignForm(BootstrapMixin, forms.Form):
    signed_on = forms.DateField(label=_("Signed on"), widget=DATE, initial=timezone.localdate)
    our_signatory = forms.CharField(label=_("Our signatory"), max_length=100)
    customer_signatory = forms.CharField(label=_("Customer's signatory"), max_length=100)
    scan = forms.FileField(label=_("Signed scan (PDF, PNG or JPEG)"))


class ReceiptForm(BootstrapMixin, forms.Form):
    instalment = forms.ModelChoiceField(label=_("Instalment"), queryset=PaymentInstalment.objects.none())
    received_on = forms.DateField(label=_("Received on"), widget=DATE, initial=timezone.localdate)
    amount = forms.DecimalField(label=_("Amount"), max_digits=16, decimal_places=2, min_value=Decimal("0.01"))
    method = forms.ChoiceField(label=_("Method"), choices=PaymentMethod.choices)
    reference = forms.CharField(label=_("Reference"), max_length=100, required=False)

    def __init__(self, *args, contract: Contract, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["instalment"]
        field.queryset = PaymentInstalment.objects.filter(contract=contract)
        field.label_from_instance = lambda i: f"{i.due_date:%Y-%m-%d} · {i.amount} ({_('due')} {i.outstanding})"


class AttachmentForm(BootstrapMixin, forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=[(AttachmentKind.DRAFT, AttachmentKind.DRAFT.label),
                                                       (AttachmentKind.OTHER, AttachmentKind.OTHER.label)])
    file = forms.FileField(label=_("File (PDF, PNG or JPEG)"))

