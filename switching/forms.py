"""The import wizard's forms: the upload, and the mapping step (built from what the file holds)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.scope import managed_user_ids
from activities.models import ActivityKind
from opportunities.models import Stage

from .columns import COLUMNS, KIND_LABELS
from .models import ImportJob, UnknownOwnerPolicy

MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # larger files: the crm_import management command


class ImportUploadForm(forms.Form):
    kind = forms.ChoiceField(label=_("The file holds"), choices=list(KIND_LABELS.items()))
    file = forms.FileField(label=_("File (CSV or XLSX)"), help_text=_("UTF-8 or GBK/GB18030 CSV, or an Excel .xlsx workbook."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".txt", ".xlsx", ".xlsm")):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(size)s MB: import it with the crm_import command.")
                % {"size": MAX_UPLOAD_BYTES // (1024 * 1024)}
            )
        return upload


class _UserChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.display_name} ({obj.username})"


class _StageChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Stage) -> str:
        return f"{obj.pipeline.name} · {obj.name}"


def _users_in_scope(user: User):
    qs = User.objects.filter(is_active=True).order_by("username")
    allowed = managed_user_ids(user)
    return qs if allowed is None else qs.filter(pk__in=sorted(allowed))


class ImportMappingForm(forms.Form):
    """One select per header of the file (the column it fills, or ignored), one per old stage name and
    activity kind of the file, one per unknown owner, and the choice for unknown owners."""

    unknown_owner_policy = forms.ChoiceField(
        label=_("Unknown owners"), choices=UnknownOwnerPolicy.choices, widget=forms.RadioSelect, required=False,
    )
    default_owner = _UserChoice(label=_("Give their records to"), queryset=User.objects.none(), required=False)

    def __init__(self, *args, job: ImportJob, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        mapping = job.mapping or {}
        columns = mapping.get("columns") or {}
        choices = [("", _("— ignore this column —"))] + [(c.key, f"{c.en} / {c.zh}") for c in COLUMNS[job.kind]]
        self.header_fields = []
        for index, header in enumerate(job.header):
            name = f"col_{index}"
            self.fields[name] = forms.ChoiceField(label=header or f"#{index + 1}", choices=choices, required=False,
                                                  initial=columns.get(str(index), ""))
            self.header_fields.append(name)
        unknown = job.unknown or {}
        self.stage_fields = self._value_fields(
            "stage", unknown.get("stages") or [], mapping.get("stages") or {},
            Stage.objects.filter(pipeline__is_active=True).select_related("pipeline").order_by("-pipeline__is_default", "pipeline_id", "order"),
        )
        self.kind_fields = self._value_fields(
            "kind", unknown.get("kinds") or [], mapping.get("kinds") or {}, ActivityKind.objects.filter(is_active=True),
        )
        owners_map = {k.lower(): v for k, v in (mapping.get("owners") or {}).items()}
        scope = _users_in_scope(user)
        self.owner_fields = []
        for index, text in enumerate(unknown.get("owners") or []):
            name = f"owner_{index}"
            self.fields[name] = _UserChoice(label=text, queryset=scope, required=False,
                                            initial=owners_map.get(text.lower()),
                                            empty_label=_("— not this CRM's user —"))
            self.fields[name].source_value = text
            self.owner_fields.append(name)
        self.fields["default_owner"].queryset = scope
        self.fields["default_owner"].initial = job.default_owner_id
        self.fields["unknown_owner_policy"].initial = job.unknown_owner_policy

    def _value_fields(self, prefix: str, values: list, chosen: dict, queryset) -> list[str]:
        names = []
        field_class = _StageChoice if prefix == "stage" else forms.ModelChoiceField
        for index, (text, known) in enumerate(values):
            name = f"{prefix}_{index}"
            self.fields[name] = field_class(
                label=text, queryset=queryset, required=False, initial=chosen.get(text) or known,
                empty_label=_("— choose —"),
            )
            self.fields[name].source_value = text
            names.append(name)
        return names

    def clean(self):
        data = super().clean()
        for name in self.stage_fields + self.kind_fields:
            if not data.get(name):
                self.add_error(name, _("Choose what this value becomes."))
        if data.get("unknown_owner_policy") == UnknownOwnerPolicy.ASSIGN and not data.get("default_owner"):
            self.add_error("default_owner", _("Choose the user who gets the records of unknown owners."))
        return data

    def mapping(self) -> dict:
        data = self.cleaned_data
        return {
            "columns": {str(i): data.get(f"col_{i}") or None for i in range(len(self.job.header))},
            "stages": {self.fields[n].source_value: data[n].pk for n in self.stage_fields if data.get(n)},
            "kinds": {self.fields[n].source_value: data[n].pk for n in self.kind_fields if data.get(n)},
            "owners": {self.fields[n].source_value: data[n].pk for n in self.owner_fields if data.get(n)},
            "unknown_owner_policy": data.get("unknown_owner_policy") or UnknownOwnerPolicy.STOP,
            "default_owner": data.get("default_owner"),
        }

    # the bound fields of each section, for the template
    @property
    def header_rows(self) -> list:
        return [self[n] for n in self.header_fields]

    @property
    def stage_rows(self) -> list:
        return [self[n] for n in self.stage_fields]

    @property
    def kind_rows(self) -> list:
        return [self[n] for n in self.kind_fields]

    @property
    def owner_rows(self) -> list:
        return [self[n] for n in self.owner_fields]
