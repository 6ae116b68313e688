from __future__ import annotations

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Field, Fieldset, Layout, Row
from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Team, User
from accounts.scope import is_manager_or_admin, user_team_ids

from .models import (
    Contact,
    Customer,
    CustomerStatus,
    DuplicatePolicy,
    SourceChannel,
    Tag,
    Tier,
)
from .selectors import SORT_LABELS, CustomerFilters, assignee_choices, owner_choices

POOL = "pool"


def _split_tags(text: str) -> list[str]:
    for sep in ("，", "、", ";", "；"):
        text = text.replace(sep, ",")
    return sorted({t.strip()[:50] for t in text.split(",") if t.strip()})


class UserChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.display_name}" + (f" · {obj.team}" if obj.team_id else "")


class CustomerForm(forms.ModelForm):
    """The profile form. On create it also picks the owner (yourself, a user in your teams, or a team's
    pool); on edit it carries the version the form was opened at, for the conflict check."""

    tags_text = forms.CharField(
        label=_("Tags"), required=False, help_text=_("Separate tags with commas."), max_length=500
    )
    website = forms.URLField(label=_("Website"), required=False, assume_scheme="https", max_length=200)
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    confirm_duplicates = forms.BooleanField(
        label=_("Save anyway: this is not one of the customers above"), required=False
    )

    class Meta:
        model = Customer
        fields = [
            "name", "customer_type", "status", "industry", "size", "region", "address", "website",
            "phone", "email", "source", "needs", "requirements", "next_follow_up_at",
        ]
        widgets = {
            "needs": forms.Textarea(attrs={"rows": 3}),
            "requirements": forms.Textarea(attrs={"rows": 3}),
            "next_follow_up_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        }

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["source"].queryset = SourceChannel.objects.filter(is_active=True) | (
            SourceChannel.objects.filter(pk=self.instance.source_id) if self.instance.source_id else SourceChannel.objects.none()
        )
        self.fields["next_follow_up_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"]
        creating = self.instance.pk is None
        owner_fields = []
        if creating:
            choices = [("me", _("Me"))]
            if is_manager_or_admin(user):
                choices += [(str(u.pk), f"{u.display_name}" + (f" · {u.team}" if u.team_id else ""))
                            for u in owner_choices(user=user).exclude(pk=user.pk)]
            teams = user_team_ids(user)
            pool_teams = Team.objects.all() if teams is None else Team.objects.filter(pk__in=teams)
            choices += [(f"{POOL}:{t.pk}", _("Lead pool of %(team)s") % {"team": t.name}) for t in pool_teams.order_by("name")]
            self.fields["assign_to"] = forms.ChoiceField(label=_("Owner"), choices=choices, initial="me")
            owner_fields = ["assign_to"]
            del self.fields["version"]
        else:
            self.fields["version"].initial = self.instance.version
            self.fields["tags_text"].initial = ", ".join(t.name for t in self.instance.tags.all())
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(
                _("Profile"),
                Row(Column("name", css_class="col-md-6"), Column("customer_type", css_class="col-md-3"),
                    Column("status", css_class="col-md-3")),
                Row(Column("industry", css_class="col-md-4"), Column("size", css_class="col-md-4"),
                    Column("source", css_class="col-md-4")),
                Row(Column("phone", css_class="col-md-4"), Column("email", css_class="col-md-4"),
                    Column("website", css_class="col-md-4")),
                Row(Column("region", css_class="col-md-4"), Column("address", css_class="col-md-8")),
            ),
            Fieldset(_("Needs"), "needs", "requirements", Field("tags_text")),
            Fieldset(_("Follow-up"), Row(Column("next_follow_up_at", css_class="col-md-4"),
                                         *[Column(f, css_class="col-md-4") for f in owner_fields])),
            *(["version"] if not creating else []),
        )

    def clean_tags_text(self) -> list[str]:
        return _split_tags(self.cleaned_data.get("tags_text") or "")

    def owner_and_team(self) -> tuple[User | None, Team | None]:
        choice = self.cleaned_data.get("assign_to") or "me"
        if choice == "me":
            return self.user, self.user.team
        if choice.startswith(f"{POOL}:"):
            return None, Team.objects.get(pk=int(choice.split(":", 1)[1]))
        owner = User.objects.get(pk=int(choice))
        return owner, owner.team

    def profile_data(self) -> dict:
        data = {f: self.cleaned_data[f] for f in self.Meta.fields}
        data["tags"] = self.cleaned_data["tags_text"]
        return data


class ContactForm(forms.ModelForm):
    class Meta:
        model = Contact
        fields = ["name", "title", "phone", "email", "wechat", "is_decision_maker", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False


class AssignForm(forms.Form):
    to = UserChoiceField(label=_("Assign to"), queryset=User.objects.none())
    reason = forms.CharField(label=_("Note"), required=False, max_length=500)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = assignee_choices(user=user)


class TierOverrideForm(forms.Form):
    tier = forms.ChoiceField(label=_("Tier"), choices=Tier.choices)
    reason = forms.CharField(label=_("Reason"), max_length=500)


class ReleaseForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)


class BulkForm(forms.Form):
    ACTIONS = [("assign", _("Assign to")), ("tag", _("Add tag"))]

    action = forms.ChoiceField(choices=ACTIONS)
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=[])
    to = UserChoiceField(queryset=User.objects.none(), required=False)
    tag = forms.CharField(max_length=50, required=False)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to"].queryset = assignee_choices(user=user)

    def clean_ids(self):
        return self.cleaned_data["ids"]

    def clean(self):
        data = super().clean()
        if data.get("action") == "assign" and not data.get("to"):
            self.add_error("to", _("Choose whom to assign them to."))
        if data.get("action") == "tag" and not (data.get("tag") or "").strip():
            self.add_error("tag", _("Give the tag a name."))
        return data

    def full_clean(self):
        # any integer id is acceptable here: the service keeps only the customers in the user's scope
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else self.data.get("ids", [])
        self.fields["ids"].choices = [(v, v) for v in raw if str(v).isdigit()]
        super().full_clean()


class FilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=100)
    tier = forms.MultipleChoiceField(label=_("Tier"), choices=Tier.choices, required=False)
    status = forms.MultipleChoiceField(label=_("Status"), choices=CustomerStatus.choices, required=False)
    source = forms.TypedMultipleChoiceField(label=_("Source"), coerce=int, required=False)
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    tag = forms.MultipleChoiceField(label=_("Tags"), required=False)
    overdue = forms.BooleanField(label=_("Follow-up overdue"), required=False)
    needs_update = forms.BooleanField(label=_("Needs update"), required=False)
    sort = forms.ChoiceField(label=_("Sort"), required=False)

    def __init__(self, data=None, *args, user: User, **kwargs):
        if data is not None and hasattr(data, "lists"):
            # "All" in a select sends an empty value: drop it instead of failing the multiple choice
            cleaned = data.copy()
            for key, values in data.lists():
                cleaned.setlist(key, [v for v in values if v != ""])
            data = cleaned
        super().__init__(data, *args, **kwargs)
        self.fields["source"].choices = [(s.pk, str(s)) for s in SourceChannel.objects.all()]
        owners = [("", _("Anyone")), ("me", _("Me")), ("pool", _("Lead pool"))]
        if is_manager_or_admin(user):
            owners += [(str(u.pk), u.display_name) for u in owner_choices(user=user)]
        self.fields["owner"].choices = owners
        self.fields["tag"].choices = [(t, t) for t in Tag.objects.values_list("name", flat=True)[:500]]
        self.fields["sort"].choices = list(SORT_LABELS.items())

    def filters(self) -> CustomerFilters:
        if not self.is_valid():
            return CustomerFilters()
        d = self.cleaned_data
        return CustomerFilters(
            q=d.get("q") or "", tier=d.get("tier") or [], status=d.get("status") or [], source=d.get("source") or [],
            owner=d.get("owner") or "", tag=d.get("tag") or [], overdue=bool(d.get("overdue")),
            needs_update=bool(d.get("needs_update")), sort=d.get("sort") or "updated",
        )


class MergeForm(forms.Form):
    other = forms.IntegerField(widget=forms.HiddenInput)
    keep = forms.ChoiceField(label=_("Keep"), choices=[("this", _("this customer")), ("other", _("the other customer"))])


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("CSV or XLSX file"), help_text=_("UTF-8 or GBK/GB18030 CSV, or an Excel .xlsx workbook; at most 5 MB."))
    assign_to = forms.ChoiceField(label=_("New customers go to"))
    duplicate_policy = forms.ChoiceField(label=_("Likely duplicates"), choices=DuplicatePolicy.choices,
                                         initial=DuplicatePolicy.SKIP)

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        choices = [("me", _("Me"))]
        teams = user_team_ids(user)
        pool_teams = Team.objects.all() if teams is None else Team.objects.filter(pk__in=teams)
        choices += [(f"{POOL}:{t.pk}", _("Lead pool of %(team)s") % {"team": t.name}) for t in pool_teams.order_by("name")]
        self.fields["assign_to"].choices = choices
        self.helper = FormHelper()
        self.helper.form_tag = False

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".xlsx")):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        return upload

    def owner_and_team(self) -> tuple[User | None, Team | None]:
        choice = self.cleaned_data.get("assign_to") or "me"
        if choice == "me":
            return self.user, self.user.team
        return None, Team.objects.get(pk=int(choice.split(":", 1)[1]))


class WebLeadForm(forms.Form):
    """The public web-to-lead form. `homepage` is a honeypot: hidden from people, filled by bots."""

    company = forms.CharField(label=_("Company"), max_length=200, required=False)
    contact_name = forms.CharField(label=_("Your name"), max_length=100)
    title = forms.CharField(label=_("Job title"), max_length=100, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=32, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    message = forms.CharField(label=_("What do you need?"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 4}))
    homepage = forms.CharField(label=_("Leave this field empty"), required=False, max_length=200)

    def clean_phone(self):
        from .normalise import normalise_phone

        phone = (self.cleaned_data.get("phone") or "").strip()
        if phone and not normalise_phone(phone).startswith("+"):
            raise forms.ValidationError(_("Enter a valid phone number."), code="invalid_phone")
        return phone

    def clean(self):
        data = super().clean()
        if not data.get("phone") and not data.get("email") and not self.errors.get("phone") and not self.errors.get("email"):
            raise forms.ValidationError(_("Give a phone number or an email address, so that we can reach you."), code="contact_required")
        return data

    @property
    def is_bot(self) -> bool:
        return bool((self.data.get("homepage") or "").strip())
