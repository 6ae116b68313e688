from django import forms
from django.utils.translation import gettext_lazy as _

from .models import User


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "phone", "language"]
        labels = {"language": _("Language")}


class AuditFilterForm(forms.Form):
    """Filters of the audit page; every field optional (GET parameters)."""

    user = forms.ModelChoiceField(
        label=_("Changed by"), queryset=User.objects.order_by("username"), required=False
    )
    model = forms.ChoiceField(label=_("Object type"), required=False)
    object_id = forms.CharField(label=_("Object id"), required=False, max_length=64)
    kind = forms.ChoiceField(label=_("Kind of change"), required=False)
    date_from = forms.DateField(label=_("From date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, audited_models=(), **kwargs):
        super().__init__(*args, **kwargs)
        from .audit import HISTORY_TYPES

        self.fields["model"].choices = [("", _("All")), *((a.key, a.label) for a in audited_models)]
        self.fields["kind"].choices = [("", _("All")), *HISTORY_TYPES.items()]

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("The start date is after the end date."))
        return data
