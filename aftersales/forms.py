from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from contracts.models import Contract
from leads.models import Contact, Customer

from .models import (
    CommentVisibility,
    PlanItemStatus,
    Priority,
    ServicePlanItem,
    SlaState,
    Ticket,
    TicketKind,
    TicketStatus,
)
from .services import assignable_owners


class OwnerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.display_name


class ContactChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.name} · {obj.customer.name}" if self.show_customer else obj.name

    show_customer = True


def _kinds():
    return TicketKind.objects.filter(is_active=True)


class TicketForm(forms.ModelForm):
    """Open a ticket (staff). The customer and contact lists hold only what the user may see."""

    customer = forms.ModelChoiceField(label=_("Customer"), queryset=Customer.objects.none())
    contact = ContactChoiceField(label=_("Contact"), queryset=Contact.objects.none(), required=False)
    contract = forms.ModelChoiceField(label=_("Contract"), queryset=Contract.objects.none(), required=False)
    owner = OwnerChoiceField(
        label=_("Owner"), queryset=None, required=False, empty_label=_("(team queue)")
    )
    attachment = forms.FileField(label=_("Attachment"), required=False)

    class Meta:
        model = Ticket
        fields = ["customer", "contact", "contract", "kind", "priority", "subject", "description", "owner"]
        widgets = {"description": forms.Textarea(attrs={"rows": 5})}

    def __init__(self, *args, user, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        visible = Customer.objects.visible_to(user).order_by("name")
        self.fields["customer"].queryset = visible
        contacts = Contact.objects.filter(customer__in=visible).select_related("customer")
        contracts = Contract.objects.visible_to(user).filter(customer__in=visible)
        if customer is not None:
            self.fields["customer"].initial = customer.pk
            contacts = contacts.filter(customer=customer)
            contracts = contracts.filter(customer=customer)
            self.fields["contact"].show_customer = False
        self.fields["contact"].queryset = contacts
        self.fields["contract"].queryset = contracts.order_by("-created_at")
        self.fields["kind"].queryset = _kinds()
        self.fields["owner"].queryset = assignable_owners(by=user).order_by("username")
        self.fields["owner"].initial = user.pk

    def clean(self):
        data = super().clean()
        contact, customer = data.get("contact"), data.get("customer")
        if contact and customer and contact.customer_id != customer.pk:
            self.add_error("contact", _("The contact does not belong to this customer."))
        contract = data.get("contract")
        if contract and customer and contract.customer_id != customer.pk:
            self.add_error("contract", _("The contract does not belong to this customer."))
        return data


class TicketEditForm(forms.ModelForm):
    contact = ContactChoiceField(label=_("Contact"), queryset=Contact.objects.none(), required=False)
    contract = forms.ModelChoiceField(label=_("Contract"), queryset=Contract.objects.none(), required=False)

    class Meta:
        model = Ticket
        fields = ["contact", "contract", "kind", "priority", "subject", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 5})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        contracts = Contract.objects.visible_to(user).filter(customer=self.instance.customer)
        if self.instance.contract_id:
            contracts = contracts | Contract.objects.filter(pk=self.instance.contract_id)
        self.fields["contract"].queryset = contracts.distinct()
        self.fields["contact"].queryset = Contact.objects.filter(customer=self.instance.customer)
        self.fields["contact"].show_customer = False
        kinds = _kinds()
        if self.instance.kind_id:
            kinds = kinds | TicketKind.objects.filter(pk=self.instance.kind_id)
        self.fields["kind"].queryset = kinds.distinct()


class CommentForm(forms.Form):
    body = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 3}), max_length=10000)
    visibility = forms.ChoiceField(
        label=_("Visibility"), choices=CommentVisibility.choices, initial=CommentVisibility.INTERNAL,
        widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
    )


class TransitionForm(forms.Form):
    transition = forms.CharField(max_length=32)
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)


class AssignForm(forms.Form):
    owner = OwnerChoiceField(
        label=_("Owner"), queryset=None, required=False, empty_label=_("(team queue)"),
        widget=forms.Select(attrs={"class": "form-select form-select-sm"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = assignable_owners(by=user).order_by("username")


class AttachmentForm(forms.Form):
    file = forms.FileField(label=_("File"))


class QueueFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False,
        choices=[("", _("All statuses")), ("open", _("Not done")), *TicketStatus.choices],
    )
    priority = forms.ChoiceField(label=_("Priority"), required=False, choices=[("", _("All priorities")), *Priority.choices])
    sla_state = forms.ChoiceField(label=_("SLA"), required=False, choices=[("", _("Any SLA state")), *SlaState.choices])


# --- public forms -------------------------------------------------------------------------------
class HoneypotMixin(forms.Form):
    """A field people never see (hidden by CSS) and bots fill in."""

    website = forms.CharField(label=_("Leave this empty"), required=False)

    def is_bot(self) -> bool:
        return bool(self.data.get("website"))


class PublicTicketForm(HoneypotMixin):
    name = forms.CharField(label=_("Your name"), max_length=100)
    email = forms.EmailField(label=_("E-mail"), required=False)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    kind = forms.ModelChoiceField(label=_("Type of request"), queryset=TicketKind.objects.none())
    subject = forms.CharField(label=_("Subject"), max_length=200)
    description = forms.CharField(label=_("Description"), widget=forms.Textarea(attrs={"rows": 6}), max_length=10000)
    attachment = forms.FileField(label=_("Attachment (optional)"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].queryset = _kinds()

    def clean(self):
        data = super().clean()
        if not data.get("email") and not data.get("phone"):
            raise forms.ValidationError(_("Give an e-mail address or a phone number so that we can reach you."))
        return data


class PublicReplyForm(HoneypotMixin):
    body = forms.CharField(label=_("Your message"), widget=forms.Textarea(attrs={"rows": 4}), max_length=10000)


class SurveyForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("Your rating"), coerce=int, widget=forms.RadioSelect(attrs={"class": "form-check-input"}),
        choices=[(5, _("5 · very satisfied")), (4, _("4 · satisfied")), (3, _("3 · neutral")),
                 (2, _("2 · dissatisfied")), (1, _("1 · very dissatisfied"))],
    )
    comment = forms.CharField(label=_("Comment (optional)"), widget=forms.Textarea(attrs={"rows": 4}), required=False,
                              max_length=5000)


# --- service plans ------------------------------------------------------------------------------
class PlanItemForm(forms.ModelForm):
    owner = OwnerChoiceField(label=_("Owner"), queryset=None, required=False, empty_label=_("(team queue)"))

    class Meta:
        model = ServicePlanItem
        fields = ["title", "kind", "due_date", "owner", "notes"]
        widgets = {"due_date": forms.DateInput(attrs={"type": "date"}), "notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        owners = assignable_owners(by=user)
        if self.instance.owner_id:
            owners = owners | type(user).objects.filter(pk=self.instance.owner_id)
        self.fields["owner"].queryset = owners.distinct().order_by("username")
        self.fields["kind"].queryset = _kinds()


class PlanItemStatusForm(forms.Form):
    status = forms.ChoiceField(choices=PlanItemStatus.choices)
