"""Forms of the pipeline pages. They parse input only; the rules live in the services."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from leads.models import Contact, Customer

from .models import EXIT_FIELDS, Opportunity, StageKind
from .selectors import SORTS, OpportunityFilters, board_owner_choices, loss_reasons

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
# At most this many customers in the create form's list (the rest: start from the customer's page).
CUSTOMER_CHOICES_LIMIT = 500


class OpportunityForm(forms.ModelForm):
    """Create and edit. The stage is not here: it moves through the transitions only."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = Opportunity
        fields = (
            "customer", "title", "amount", "currency", "expected_close_date", "probability", "owner", "contact",
            "source", "competitors", "next_step", "next_step_date", "budget", "decision_maker", "pain_points",
        )
        widgets = {
            "expected_close_date": DATE_INPUT,
            "next_step_date": DATE_INPUT,
            "pain_points": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, user, customer: Customer | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        editing = self.instance.pk is not None
        if editing:
            del self.fields["customer"]
            customer = self.instance.customer
            self.fields["version"].initial = self.instance.version
        else:
            del self.fields["version"]
            visible = Customer.objects.visible_to(user)
            self.fields["customer"].queryset = visible
            if customer is not None:
                self.fields["customer"].initial = customer.pk
                self.fields["customer"].widget = forms.HiddenInput()
            else:
                recent = list(visible.order_by("-updated_at", "-id").values_list("pk", "name")[:CUSTOMER_CHOICES_LIMIT])
                self.fields["customer"].widget.choices = [("", "---------"), *recent]
            self.fields["probability"].required = False
            self.fields["probability"].help_text = _("Empty: the stage's default.")
        self.fields["owner"].queryset = self.fields["owner"].queryset.filter(
            pk__in=[u.pk for u in board_owner_choices(user)]
        )
        self.fields["owner"].required = False
        self.fields["contact"].queryset = (
            Contact.objects.filter(customer=customer) if customer is not None else Contact.objects.none()
        )
        if not editing and customer is None:
            self.fields["contact"].widget = forms.HiddenInput()

    def service_kwargs(self) -> dict:
        data = {name: self.cleaned_data.get(name) for name in self.Meta.fields if name in self.cleaned_data}
        data.pop("customer", None)
        if not data.get("owner"):
            data.pop("owner", None)
        return data


class CriteriaForm(forms.Form):
    """The missing exit criteria of a blocked move, filled in place (board and detail page)."""

    def __init__(self, *args, opportunity: Opportunity, **kwargs):
        super().__init__(*args, **kwargs)
        self.opportunity = opportunity
        model_form = forms.models.modelform_factory(
            Opportunity, fields=[name for name in EXIT_FIELDS], widgets=OpportunityForm.Meta.widgets
        )(instance=opportunity)
        for unmet in opportunity.exit_criteria_unmet():
            if unmet.field:
                field = model_form.fields[unmet.field]
                if unmet.field == "contact":
                    field.queryset = Contact.objects.filter(customer_id=opportunity.customer_id)
                    if not field.queryset.exists():
                        # an empty required list would leave the rep stuck without saying why
                        field.help_text = _("%(customer)s has no contact yet: add one on the customer's page first.") % {
                            "customer": opportunity.customer}
                field.required = True
                self.fields[unmet.field] = field
        self.items = [item for item in opportunity.checklist_items() if not item.ticked]
        for item in self.items:
            self.fields[f"item_{item.pk}"] = forms.BooleanField(label=item.text, required=False)

    def field_changes(self) -> dict:
        return {name: value for name, value in self.cleaned_data.items() if not name.startswith("item_")}

    def ticked_items(self) -> list:
        return [item for item in self.items if self.cleaned_data.get(f"item_{item.pk}")]


class MoveBackForm(forms.Form):
    to_stage = forms.TypedChoiceField(label=_("Back to"), coerce=int)
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 2}), max_length=1000)

    def __init__(self, *args, opportunity: Opportunity, **kwargs):
        super().__init__(*args, **kwargs)
        earlier = opportunity.earlier_open_stages()
        self.stages = {stage.pk: stage for stage in earlier}
        self.fields["to_stage"].choices = [(stage.pk, stage.name) for stage in reversed(earlier)]


class LoseForm(forms.Form):
    loss_reason = forms.ModelChoiceField(label=_("Loss reason"), queryset=None)
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["loss_reason"].queryset = loss_reasons()


class NoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000)


class FilterForm(forms.Form):
    """The list's filters (GET)."""

    q = forms.CharField(label=_("Search"), required=False)
    status = forms.ChoiceField(
        label=_("Status"), required=False,
        choices=[(StageKind.OPEN, _("Open")), ("all", _("All")), (StageKind.WON, _("Won")), (StageKind.LOST, _("Lost"))],
    )
    stage = forms.TypedChoiceField(label=_("Stage"), required=False, coerce=int, empty_value=None)
    owner = forms.TypedChoiceField(label=_("Owner"), required=False, coerce=int, empty_value=None)
    stalled = forms.ChoiceField(
        label=_("Stalled"), required=False, choices=[("", _("All")), ("yes", _("Stalled")), ("no", _("On track"))]
    )
    close_from = forms.DateField(label=_("Close from"), required=False, widget=DATE_INPUT)
    close_to = forms.DateField(label=_("Close to"), required=False, widget=DATE_INPUT)
    amount_min = forms.DecimalField(label=_("Amount from"), required=False, min_value=0)
    amount_max = forms.DecimalField(label=_("Amount to"), required=False, min_value=0)
    priority_min = forms.IntegerField(label=_("Priority at least"), required=False, min_value=0, max_value=100)
    sort = forms.ChoiceField(
        label=_("Sort"), required=False,
        choices=[
            ("priority", _("Priority, highest first")), ("-priority", _("Priority, lowest first")),
            ("-amount", _("Amount, largest first")), ("amount", _("Amount, smallest first")),
            ("close", _("Close date, soonest first")), ("-close", _("Close date, latest first")),
            ("-created", _("Newest first")), ("created", _("Oldest first")), ("stage", _("Stage")),
            ("title", _("Title")),
        ],
    )

    def __init__(self, *args, user, stages, **kwargs):
        super().__init__(*args, **kwargs)
        self.stages = {stage.pk: stage for stage in stages}
        self.fields["stage"].choices = [("", _("All"))] + [(s.pk, s.name) for s in stages]
        owners = board_owner_choices(user)
        self.fields["owner"].choices = [("", _("All"))] + [(u.pk, u.display_name) for u in owners]
        if len(owners) <= 1:
            del self.fields["owner"]

    def filters(self, pipeline) -> tuple[OpportunityFilters, str]:
        data = self.cleaned_data if self.is_valid() else {}
        stalled = {"yes": True, "no": False}.get(data.get("stalled") or "")
        sort = data.get("sort") or "priority"
        return OpportunityFilters(
            pipeline=pipeline,
            stage=self.stages.get(data.get("stage")),
            owner_id=data.get("owner"),
            stalled=stalled,
            status=data.get("status") or StageKind.OPEN,  # open deals unless asked otherwise
            close_from=data.get("close_from"),
            close_to=data.get("close_to"),
            amount_min=data.get("amount_min"),
            amount_max=data.get("amount_max"),
            priority_min=data.get("priority_min"),
            search=(data.get("q") or "").strip(),
        ), (sort if sort in SORTS else "priority")
