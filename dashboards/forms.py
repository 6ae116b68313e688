from django import forms

from .models import Target
from .selectors import METRICS


class TargetRowForm(forms.ModelForm):
    """One rep's row of the targets grid (prefix: the rep's id)."""

    class Meta:
        model = Target
        fields = list(METRICS)
        widgets = {m: forms.NumberInput(attrs={"class": "form-control form-control-sm", "min": 0}) for m in METRICS}
