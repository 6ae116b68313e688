"""Customer import: CSV (UTF-8 or GBK/GB18030, as Chinese Excel saves it) and XLSX.

upload → `import_preview` parses every row, validates it, finds likely duplicates and stores the
result on a CustomerImport → the person confirms → the Celery task `leads.customer_import_run` calls
`import_run`, which imports the rows in small transactions and records its progress.

Idempotent and resumable: every row has a key (its external id column, or a hash of its normalised
name, phone and email) stored as the customer's `external_id`. A row whose key already exists updates
that customer instead of creating another, so re-running the same file, or running again an import
that was killed half-way, never doubles a customer. Each chunk of rows commits together with the
import's progress counter, so a resumed run continues after the last committed chunk.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Team, User
from accounts.scope import managed_user_ids

from . import services
from .models import (
    CompanySize,
    Customer,
    CustomerImport,
    CustomerStatus,
    CustomerType,
    DuplicatePolicy,
    ImportStatus,
    Industry,
    SourceChannel,
    Tier,
)
from .normalise import name_key, normalise_email, normalise_phone

logger = logging.getLogger(__name__)

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 20000
CHUNK = 50

# column -> accepted headers (compared lower-cased, without spaces)
COLUMNS: dict[str, list[str]] = {
    "name": ["name", "customer", "company", "customername", "名称", "客户名称", "客户", "公司名称", "公司"],
    "customer_type": ["type", "customertype", "类型", "客户类型"],
    "status": ["status", "状态"],
    "tier": ["tier", "level", "等级", "客户等级", "级别"],
    "industry": ["industry", "行业"],
    "region": ["region", "area", "地区", "区域"],
    "address": ["address", "地址"],
    "size": ["size", "companysize", "规模", "公司规模"],
    "website": ["website", "web", "url", "网站", "网址"],
    "phone": ["phone", "tel", "telephone", "mobile", "电话", "手机", "联系电话"],
    "email": ["email", "e-mail", "mail", "邮箱", "电子邮件"],
    "source": ["source", "channel", "sourcechannel", "来源", "来源渠道", "渠道"],
    "tags": ["tags", "tag", "标签"],
    "needs": ["needs", "painpoints", "needsandpainpoints", "需求", "痛点", "需求与痛点", "需求和痛点"],
    "requirements": ["requirements", "personalisedrequirements", "个性化需求", "特殊要求"],
    "owner": ["owner", "负责人", "所有者", "销售"],
    "external_id": ["externalid", "id", "key", "外部编号", "编号"],
    "contact_name": ["contact", "contactname", "联系人", "联系人姓名"],
    "contact_title": ["contacttitle", "title", "jobtitle", "职位", "职务"],
    "contact_phone": ["contactphone", "联系人电话", "联系人手机"],
    "contact_email": ["contactemail", "联系人邮箱"],
    "contact_wechat": ["wechat", "contactwechat", "微信", "微信号"],
}
HEADER_LOOKUP = {alias: column for column, aliases in COLUMNS.items() for alias in aliases}


class ImportFileError(ValidationError):
    """The file as a whole cannot be read (format, encoding, size, no name column)."""


def _squash(text: str) -> str:
    return "".join(text.lower().split())


def _choice_map(choices) -> dict[str, str]:
    """Value or label (English or Chinese), case-insensitive -> value."""
    mapping = {}
    for language in ("en", "zh-hans"):
        with translation.override(language):
            for value, label in choices:
                mapping[_squash(str(value))] = value
                mapping[_squash(str(label))] = value
    return mapping


def decode_csv(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK and GB2312)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise ImportFileError(_("The file is neither UTF-8 nor GBK/GB18030 text."), code="encoding") from exc


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # phone numbers typed as numbers in Excel
    return str(value).strip()


def read_table(data: bytes, file_name: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a CSV or XLSX file, every cell as trimmed text."""
    if len(data) > MAX_BYTES:
        raise ImportFileError(_("The file is larger than 5 MB."), code="too_large")
    if file_name.lower().endswith((".xlsx", ".xlsm")) or data[:2] == b"PK":
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is the same error to the user
            raise ImportFileError(_("The file is not a readable XLSX workbook."), code="bad_xlsx") from exc
        sheet = workbook.worksheets[0]
        table = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
        workbook.close()
    else:
        text = decode_csv(data)
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        table = [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), dialect)]
    table = [row for row in table if any(row)]
    if not table:
        raise ImportFileError(_("The file is empty."), code="empty")
    header, rows = table[0], table[1:]
    if len(rows) > MAX_ROWS:
        raise ImportFileError(_("The file has more than %(max)s rows.") % {"max": MAX_ROWS}, code="too_many_rows")
    return header, rows


def map_header(header: list[str]) -> list[str | None]:
    """Each header cell's column name (None: an unknown column, ignored)."""
    columns = []
    for cell in header:
        key = "".join(cell.lower().split()).replace("_", "").replace("*", "")
        columns.append(HEADER_LOOKUP.get(key))
    if "name" not in columns:
        raise ImportFileError(
            _("No name column: the first row must hold the column names (e.g. 客户名称 or name)."), code="no_name_column"
        )
    return columns


class ImportRowForm(forms.Form):
    """One row of an import file; choices accept the stored value or the label in either language."""

    name = forms.CharField(max_length=200)
    customer_type = forms.CharField(required=False)
    status = forms.CharField(required=False)
    tier = forms.CharField(required=False)
    industry = forms.CharField(required=False)
    region = forms.CharField(max_length=100, required=False)
    address = forms.CharField(max_length=255, required=False)
    size = forms.CharField(required=False)
    website = forms.URLField(required=False, assume_scheme="https")
    phone = forms.CharField(max_length=32, required=False)
    email = forms.EmailField(required=False)
    source = forms.CharField(required=False)
    tags = forms.CharField(required=False)
    needs = forms.CharField(required=False)
    requirements = forms.CharField(required=False)
    owner = forms.CharField(required=False)
    external_id = forms.CharField(max_length=100, required=False)
    contact_name = forms.CharField(max_length=100, required=False)
    contact_title = forms.CharField(max_length=100, required=False)
    contact_phone = forms.CharField(max_length=32, required=False)
    contact_email = forms.EmailField(required=False)
    contact_wechat = forms.CharField(max_length=64, required=False)

    CHOICE_FIELDS = {
        "customer_type": (CustomerType.choices, CustomerType.COMPANY),
        "status": (CustomerStatus.choices, CustomerStatus.LEAD),
        "tier": (Tier.choices, None),
        "industry": (Industry.choices, ""),
        "size": (CompanySize.choices, ""),
    }

    def __init__(self, *args, uploader: User, sources: dict[str, SourceChannel], owners: dict[str, User], **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = sources
        self.owners = owners
        self.uploader = uploader

    def clean(self):
        data = super().clean()
        for field, (choices, default) in self.CHOICE_FIELDS.items():
            raw = _squash(data.get(field) or "")
            if not raw:
                data[field] = default
                continue
            value = _choice_map(choices).get(raw)
            if value is None:
                self.add_error(field, _("“%(value)s” is not one of the choices.") % {"value": data.get(field)})
            data[field] = value
        raw_source = (data.get("source") or "").strip().lower()
        if raw_source:
            if raw_source not in self.sources:
                self.add_error("source", _("Unknown source channel “%(value)s”.") % {"value": data.get("source")})
            data["source"] = self.sources.get(raw_source)
        else:
            data["source"] = None
        raw_owner = (data.get("owner") or "").strip().lower()
        if raw_owner:
            owner = self.owners.get(raw_owner)
            allowed = managed_user_ids(self.uploader)
            if owner is None or (allowed is not None and owner.pk not in allowed):
                self.add_error("owner", _("Unknown user “%(value)s”, or not in your teams.") % {"value": data.get("owner")})
            data["owner"] = owner
        else:
            data["owner"] = None
        phone = data.get("phone") or ""
        if phone and not normalise_phone(phone).startswith("+"):
            self.add_error("phone", _("“%(value)s” is not a phone number.") % {"value": phone})
        return data


def row_key(data: dict[str, Any]) -> str:
    """The row's identity across re-runs: its external id, or a hash of name, phone and email."""
    if data.get("external_id"):
        return str(data["external_id"]).strip()
    raw = "|".join([name_key(data.get("name")), normalise_phone(data.get("phone")), normalise_email(data.get("email"))])
    return "import-" + hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:24]


def _lookups() -> tuple[dict[str, SourceChannel], dict[str, User]]:
    sources: dict[str, SourceChannel] = {}
    for channel in SourceChannel.objects.all():
        for text in {channel.code, channel.name}:
            sources[text.lower()] = channel
        for language in ("en", "zh-hans"):
            with translation.override(language):
                sources[str(channel).lower()] = channel
    owners = {u.username.lower(): u for u in User.objects.filter(is_active=True)}
    return sources, owners


def _serialisable(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    out["source"] = data["source"].pk if data.get("source") else None
    out["owner"] = data["owner"].pk if data.get("owner") else None
    return out


@transaction.atomic
def import_preview(
    *, data: bytes, file_name: str, by: User, owner: User | None, team: Team | None,
    duplicate_policy: str = DuplicatePolicy.SKIP,
) -> CustomerImport:
    """Parse and validate the file: per-row errors, rows that repeat a key of the file, rows that will
    update an existing customer (same key) and likely duplicates of existing customers (same phone,
    email or name without legal suffixes). Nothing is imported yet."""
    services._check_owner(by=by, owner=owner, team=team)
    header, table = read_table(data, file_name)
    columns = map_header(header)
    sources, owners = _lookups()
    rows: list[dict[str, Any]] = []
    errors: dict[str, dict[str, list[str]]] = {}
    seen_keys: dict[str, int] = {}
    for number, cells in enumerate(table, start=2):
        raw = {col: cells[i] if i < len(cells) else "" for i, col in enumerate(columns) if col}
        form = ImportRowForm(raw, uploader=by, sources=sources, owners=owners)
        index = str(len(rows))
        if form.is_valid():
            clean = _serialisable(form.cleaned_data)
            key = row_key(clean)
            clean["key"] = key
            if key in seen_keys:
                errors[index] = {"name": [_("The same customer as row %(row)s of this file.") % {"row": seen_keys[key]}]}
            seen_keys.setdefault(key, number)
        else:
            clean = {**raw, "key": ""}
            errors[index] = {field: [str(e) for e in errs] for field, errs in form.errors.items()}
        clean["row"] = number
        rows.append(clean)
    duplicates = _find_duplicates(rows, errors)
    return CustomerImport.objects.create(
        file_name=file_name[:255], rows=rows, errors=errors, duplicates=duplicates, duplicate_policy=duplicate_policy,
        owner=owner, team=team or (owner.team if owner else None), total_rows=len(rows), created_by=by,
    )


def _find_duplicates(rows: list[dict], errors: dict) -> dict[str, dict]:
    """{row index: {"update": id} or {"similar": [[id, name, reason], ...]}} in four queries."""
    valid = [(str(i), r) for i, r in enumerate(rows) if str(i) not in errors]
    keys = {r["key"] for _i, r in valid}
    phones = {normalise_phone(r["phone"]) for _i, r in valid if r.get("phone")}
    emails = {normalise_email(r["email"]) for _i, r in valid if r.get("email")}
    names = {name_key(r["name"]) for _i, r in valid}
    by_key = dict(Customer.objects.filter(external_id__in=keys).values_list("external_id", "pk"))
    found: dict[str, list] = {}
    for field, values, label in (("phone", phones, _("same phone")), ("email", emails, _("same email")),
                                 ("name_key", names, _("same name"))):
        for pk, name, value in Customer.objects.filter(**{f"{field}__in": values}).values_list("pk", "name", field)[:5000]:
            found.setdefault(f"{field}:{value}", []).append([pk, name, str(label)])
    result: dict[str, dict] = {}
    for index, row in valid:
        if row["key"] in by_key:
            result[index] = {"update": by_key[row["key"]]}
            continue
        similar = []
        for lookup in (f"phone:{normalise_phone(row.get('phone'))}", f"email:{normalise_email(row.get('email'))}",
                       f"name_key:{name_key(row['name'])}"):
            for item in found.get(lookup, []):
                if item[0] not in {s[0] for s in similar}:
                    similar.append(item)
        if similar:
            result[index] = {"similar": similar[:5]}
    return result


@transaction.atomic
def import_confirm(*, customer_import: CustomerImport, by: User, duplicate_policy: str | None = None) -> CustomerImport:
    """Queue the import (once): the Celery task starts after this transaction commits."""
    from .tasks import customer_import_run

    locked = CustomerImport.objects.select_for_update().get(pk=customer_import.pk)
    if locked.status not in (ImportStatus.PREVIEW, ImportStatus.FAILED, ImportStatus.RUNNING, ImportStatus.QUEUED):
        return locked
    if duplicate_policy and locked.status == ImportStatus.PREVIEW:
        locked.duplicate_policy = duplicate_policy
    locked.status = ImportStatus.QUEUED if locked.status == ImportStatus.PREVIEW else locked.status
    locked.failure = ""
    locked.save(update_fields=["status", "duplicate_policy", "failure"])
    transaction.on_commit(lambda: customer_import_run.delay(locked.pk))
    return locked


def _apply_row(imp: CustomerImport, row: dict, index: str) -> str:
    """Import one valid row: "created", "updated", "unchanged" or "skipped"."""
    fields = {
        f: row.get(f) or "" for f in ("customer_type", "status", "industry", "region", "address", "size",
                                      "website", "phone", "email", "needs", "requirements")
    }
    fields["customer_type"] = fields["customer_type"] or CustomerType.COMPANY
    fields["status"] = fields["status"] or CustomerStatus.LEAD
    fields["source"] = SourceChannel.objects.filter(pk=row["source"]).first() if row.get("source") else None
    tags = [t for t in _split_tags(row.get("tags") or "")]
    existing = Customer.objects.filter(external_id=row["key"]).first()
    if existing is not None:
        data = {f: v for f, v in {**fields, "name": row["name"]}.items() if v not in ("", None)}
        changes = services._diff(existing, data)
        if tags and not set(tags) <= set(existing.tags.values_list("name", flat=True)):
            changes["tags"] = ("", "")
            data["tags"] = sorted(set(tags) | set(existing.tags.values_list("name", flat=True)))
        if not changes:
            return "unchanged"
        services.customer_update(customer=existing, by=imp.created_by, data=data,
                                 reason=_("import: %(file)s") % {"file": imp.file_name})
        return "updated"
    if imp.duplicate_policy == DuplicatePolicy.SKIP and imp.duplicates.get(index, {}).get("similar"):
        return "skipped"
    owner = User.objects.filter(pk=row["owner"]).first() if row.get("owner") else imp.owner
    contact = {
        "name": row.get("contact_name") or "", "title": row.get("contact_title") or "",
        "phone": row.get("contact_phone") or "", "email": row.get("contact_email") or "",
        "wechat": row.get("contact_wechat") or "",
    }
    tier = {"tier": row["tier"]} if row.get("tier") else {}
    services.customer_create(
        by=imp.created_by, name=row["name"], owner=owner, team=imp.team if owner is None else None,
        tags=tags, contacts=[contact] if contact["name"] else [], external_id=row["key"],
        reason=_("import: %(file)s") % {"file": imp.file_name}, **fields, **tier,
    )
    return "created"


def _split_tags(text: str) -> list[str]:
    for sep in ("，", "、", ";", "；", "|"):
        text = text.replace(sep, ",")
    return [t.strip() for t in text.split(",") if t.strip()]


def import_run(*, import_id: int, max_rows: int | None = None) -> dict:
    """Import the rows not yet processed, CHUNK rows per transaction (the progress counter commits with
    them). `max_rows` stops early (tests use it to stand for a run killed half-way)."""
    done = 0
    try:
        while True:
            with transaction.atomic():
                imp = (
                    CustomerImport.objects.select_for_update(of=("self",))
                    .select_related("created_by", "owner", "team").get(pk=import_id)
                )
                if imp.status in (ImportStatus.DONE, ImportStatus.PREVIEW):
                    return {"status": imp.status}
                start = imp.processed_rows
                if start >= imp.total_rows:
                    imp.status = ImportStatus.DONE
                    imp.finished_at = timezone.now()
                    imp.save(update_fields=["status", "finished_at"])
                    return {"status": imp.status, "created": imp.created_count, "updated": imp.updated_count}
                if max_rows is not None and done >= max_rows:
                    return {"status": imp.status, "processed": imp.processed_rows}
                imp.status = ImportStatus.RUNNING
                end = min(imp.total_rows, start + CHUNK)
                counts = {"created": 0, "updated": 0, "unchanged": 0, "skipped": 0}
                for position in range(start, end):
                    index = str(position)
                    if index in imp.errors:
                        counts["skipped"] += 1
                        continue
                    counts[_apply_row(imp, imp.rows[position], index)] += 1
                imp.processed_rows = end
                imp.created_count += counts["created"]
                imp.updated_count += counts["updated"]
                imp.skipped_count += counts["skipped"] + counts["unchanged"]
                imp.save(update_fields=["status", "processed_rows", "created_count", "updated_count", "skipped_count"])
                done += end - start
    except Exception as exc:
        logger.exception("customer import %s failed", import_id)
        CustomerImport.objects.filter(pk=import_id).update(status=ImportStatus.FAILED, failure=str(exc)[:2000])
        raise


IMPORT_TEMPLATE_HEADER = [
    gettext_lazy("Customer name"), gettext_lazy("Type"), gettext_lazy("Status"), gettext_lazy("Tier"),
    gettext_lazy("Industry"), gettext_lazy("Region"), gettext_lazy("Address"), gettext_lazy("Size"),
    gettext_lazy("Website"), gettext_lazy("Phone"), gettext_lazy("Email"), gettext_lazy("Source"),
    gettext_lazy("Tags"), gettext_lazy("Needs"), gettext_lazy("Requirements"), gettext_lazy("Owner"),
    gettext_lazy("External id"), gettext_lazy("Contact"), gettext_lazy("Contact title"),
    gettext_lazy("Contact phone"), gettext_lazy("Contact email"), gettext_lazy("WeChat"),
]
