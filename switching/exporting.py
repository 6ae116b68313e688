"""Export everything: the whole CRM as a zip of CSV files and a README of their columns.

`export_request` (an administrator asks) → the Celery task `switching.export_run` calls `export_run`,
which writes every table to a CSV inside a zip, in a temporary file, then moves the finished zip into
the private storage (contracts.storage: never under MEDIA_ROOT, served only by the admin-only download
view) → the zip can be downloaded until `expires_at` (settings.EXPORT_TTL_HOURS after it was finished);
the periodic task `switching.export_purge_expired` deletes expired files.

The files (see `TABLES`):

- customers.csv, contacts.csv, opportunities.csv, activities.csv: exactly the columns and value
  formats the import reads (switching/columns.py), so the four files re-import into a fresh instance
  (docs/switching.md, "Export everything");
- stage_history.csv, contracts.csv, contract_lines.csv, payment_plan.csv, payments.csv, tickets.csv,
  users.csv, teams.csv: their own columns, listed in `TABLES` and in the zip's README.txt.

References between files use external ids: a record's own `external_id` when it has one, otherwise a
generated, stable `crm-<id>` (the record's primary key; `ExternalIds`). Re-importing stores that id as
the new record's external id, so a second export of the new instance writes the same ids again.

Memory stays flat whatever the size: each table is read as `values_list(...).iterator(chunk_size=...)`
(a server-side cursor on PostgreSQL) and written row by row into a zip member. On PostgreSQL the whole
export reads one snapshot (REPEATABLE READ, READ ONLY), so the files agree with each other even while
people keep working.

Cells: UTF-8 with a BOM (Excel shows Chinese correctly), text through `switching.cells.escape_cell`
(formula-injection safe, and reversed exactly by the import), date-times as `YYYY-MM-DD HH:MM:SS` in
the configured time zone (`.ffffff` appended when the time has microseconds), dates `YYYY-MM-DD`,
amounts `1234.50`, booleans `yes`/`no`, choices by their code, users by username.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import StringAgg
from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.db import connection, models, transaction
from django.db.models import CharField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.models import Team, User
from accounts.scope import sees_everything
from activities.models import Activity, ActivityStatus
from aftersales.models import Ticket
from contracts.models import Contract, ContractLine, PaymentInstalment, PaymentReceipt
from leads.models import Contact, Customer
from opportunities.models import Opportunity, StageChange, StageKind

from .cells import escape_cell
from .columns import ACTIVITIES, CONTACTS, CUSTOMERS, OPPORTUNITIES, Column
from .columns import COLUMNS as IMPORT_COLUMNS
from .models import Export, ExportStatus

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2000
GENERATED_PREFIX = "crm-"
STALE_AFTER = timedelta(hours=6)


# --- cells ---------------------------------------------------------------------------------------------
def format_datetime(value: datetime) -> str:
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    text = local.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{local.microsecond:06d}" if local.microsecond else text


def cell(value: Any) -> Any:
    """One value as the import reads it back (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int | float):
        return str(value)
    return escape_cell(str(value))


# --- external ids --------------------------------------------------------------------------------------
class ExternalIds:
    """The id a record is known by in the export: its own `external_id`, else `crm-<pk>`.

    A generated id is unique unless another record of the same table already stores exactly that text as
    its external id (e.g. a record imported from an earlier export, whose old primary key was 7, and a
    new record whose primary key is 7). Those few clashes are found with one query per table, and the
    record without an external id gets `crm-<pk>-<n>` instead (the first n that is free).
    """

    def __init__(self) -> None:
        self._clashes: dict[type[models.Model], dict[int, str]] = {}

    def _clashes_of(self, model: type[models.Model]) -> dict[int, str]:
        if model not in self._clashes:
            generated = Concat(Value(GENERATED_PREFIX), Cast("pk", CharField()), output_field=CharField())
            stored = model._default_manager.filter(external_id__startswith=GENERATED_PREFIX).values("external_id")
            clashing = (
                model._default_manager.filter(Q(external_id__isnull=True) | Q(external_id=""))
                .annotate(generated_id=generated)
                .filter(generated_id__in=stored)
                .values_list("pk", flat=True)
            )
            replacements = {}
            for pk in clashing:
                n = 1
                while model._default_manager.filter(external_id=f"{GENERATED_PREFIX}{pk}-{n}").exists():
                    n += 1
                replacements[pk] = f"{GENERATED_PREFIX}{pk}-{n}"
            self._clashes[model] = replacements
        return self._clashes[model]

    def __call__(self, model: type[models.Model], pk: int | None, stored: str | None) -> str:
        if pk is None:
            return ""
        if stored:
            return stored
        return self._clashes_of(model).get(pk) or f"{GENERATED_PREFIX}{pk}"


# --- the tables ----------------------------------------------------------------------------------------
def _col(key: str, en: str, zh: str, help: str = "") -> Column:
    return Column(key, en, zh, False, help)


@dataclass(frozen=True)
class Table:
    """One CSV file of the export: its columns (header = the English names), whether the import reads
    it, and the rows (a generator of lists in the column order)."""

    file_name: str
    title_en: str
    title_zh: str
    columns: list[Column]
    rows: Callable[[ExternalIds], Iterator[list[Any]]]
    importable: bool = False

    @property
    def header(self) -> list[str]:
        return [c.en for c in self.columns]


def _stream(qs: models.QuerySet, *fields: str) -> Iterator[tuple]:
    return qs.order_by("pk").values_list(*fields).iterator(chunk_size=CHUNK_SIZE)


def _customer_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    tags = (
        Customer.tags.through.objects.filter(customer_id=OuterRef("pk"))
        .order_by()
        .values("customer_id")
        .annotate(names=StringAgg("tag__name", ", ", order_by="tag__name"))
        .values("names")
    )
    qs = Customer.objects.annotate(tag_names=Subquery(tags))
    for (pk, ext, name, ctype, status, tier, industry, region, address, size, website, phone, email, source,
         tag_names, needs, requirements, owner, created_at) in _stream(
        qs, "pk", "external_id", "name", "customer_type", "status", "tier", "industry", "region", "address",
        "size", "website", "phone", "email", "source__code", "tag_names", "needs", "requirements",
        "owner__username", "created_at",
    ):
        yield [ids(Customer, pk, ext), name, ctype, status, tier, industry, region, address, size, website, phone,
               email, source, tag_names, needs, requirements, owner, created_at]


def _contact_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    for pk, ext, customer_id, customer_ext, name, title, phone, email, wechat, decides, notes in _stream(
        Contact.objects.all(), "pk", "external_id", "customer_id", "customer__external_id", "name", "title",
        "phone", "email", "wechat", "is_decision_maker", "notes",
    ):
        yield [ids(Contact, pk, ext), ids(Customer, customer_id, customer_ext), name, title, phone, email, wechat,
               decides, notes]


def stage_label(name_zh: str | None, name_en: str | None, pipeline_code: str | None = None,
                default_pipeline: bool = True) -> str:
    """A stage as the files name it: its Chinese name (always set; the import recognises it like the
    English name and the code). A stage of another pipeline than the default one is qualified by the
    pipeline's code, `<pipeline code>/<name>`, since every pipeline has its own 赢单 and 输单 (the import
    reads both forms)."""
    name = name_zh or name_en or ""
    if not name or default_pipeline or not pipeline_code:
        return name
    return f"{pipeline_code}/{name}"


def _opportunity_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    for (pk, ext, customer_id, customer_ext, title, stage_zh, stage_en, pipeline_code, is_default, kind, amount,
         currency, created_at, closed_at, expected_close, owner, source, probability, contact_id, contact_ext,
         loss_zh, loss_en, loss_note) in _stream(
        Opportunity.objects.all(), "pk", "external_id", "customer_id", "customer__external_id", "title",
        "stage__name_zh", "stage__name_en", "pipeline__code", "pipeline__is_default", "stage__kind", "amount",
        "currency", "created_at", "closed_at", "expected_close_date", "owner__username", "source", "probability",
        "contact_id", "contact__external_id", "loss_reason__name_zh", "loss_reason__name_en", "loss_note",
    ):
        closed = kind != StageKind.OPEN
        stage = stage_label(stage_zh, stage_en, pipeline_code, is_default)
        yield [
            ids(Opportunity, pk, ext), ids(Customer, customer_id, customer_ext), title, stage,
            amount, currency, created_at, closed_at if closed else expected_close, kind, owner, source, probability,
            ids(Contact, contact_id, contact_ext), (loss_zh or loss_en) if loss_zh or loss_en else "", loss_note,
        ]


def _activity_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    for (pk, ext, customer_id, customer_ext, opp_id, opp_ext, contact_id, contact_ext, kind, status, done_at,
         planned_at, due_at, subject, outcome, owner, duration, notes, next_step) in _stream(
        Activity.objects.all(), "pk", "external_id", "customer_id", "customer__external_id", "opportunity_id",
        "opportunity__external_id", "contact_id", "contact__external_id", "kind__code", "status", "done_at",
        "planned_at", "due_at", "subject", "outcome", "owner__username", "duration_minutes", "notes", "next_step",
    ):
        when = done_at if status == ActivityStatus.DONE else (planned_at or due_at or done_at)
        yield [
            ids(Activity, pk, ext), ids(Customer, customer_id, customer_ext), ids(Opportunity, opp_id, opp_ext),
            ids(Contact, contact_id, contact_ext), kind, when, subject, status, outcome, owner, duration, notes,
            next_step,
        ]


def _stage_history_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    qs = StageChange.objects.order_by("opportunity_id", "changed_at", "pk")
    for (opp_id, opp_ext, action, from_zh, from_en, from_pipeline, from_default, to_zh, to_en, to_pipeline,
         to_default, by, at, seconds, note, imported) in qs.values_list(
        "opportunity_id", "opportunity__external_id", "action", "from_stage__name_zh", "from_stage__name_en",
        "from_stage__pipeline__code", "from_stage__pipeline__is_default", "to_stage__name_zh", "to_stage__name_en",
        "to_stage__pipeline__code", "to_stage__pipeline__is_default", "changed_by__username", "changed_at",
        "seconds_in_previous_stage", "note", "imported",
    ).iterator(chunk_size=CHUNK_SIZE):
        yield [ids(Opportunity, opp_id, opp_ext), action, stage_label(from_zh, from_en, from_pipeline, from_default),
               stage_label(to_zh, to_en, to_pipeline, to_default), by, at, seconds, note, imported]


def _contract_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    for (number, title, customer_id, customer_ext, contact_id, contact_ext, opp_id, opp_ext, owner, status,
         currency, subtotal, tax, total, start, end, signed_on, ours, theirs, activated, completed, terminated,
         reason, payment_terms, created_at) in _stream(
        Contract.objects.all(), "number", "title", "customer_id", "customer__external_id", "contact_id",
        "contact__external_id", "opportunity_id", "opportunity__external_id", "owner__username", "status",
        "currency", "subtotal", "tax_amount", "total_amount", "start_date", "end_date", "signed_on",
        "our_signatory", "customer_signatory", "activated_on", "completed_on", "terminated_on",
        "termination_reason", "payment_terms", "created_at",
    ):
        yield [number, title, ids(Customer, customer_id, customer_ext), ids(Contact, contact_id, contact_ext),
               ids(Opportunity, opp_id, opp_ext), owner, status, currency, subtotal, tax, total, start, end,
               signed_on, ours, theirs, activated, completed, terminated, reason, payment_terms, created_at]


def _contract_line_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    yield from (list(row) for row in _stream(
        ContractLine.objects.all(), "contract__number", "position", "name", "quantity", "unit_price",
        "discount_percent", "tax_rate",
    ))


def _instalment_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    yield from (list(row) for row in _stream(
        PaymentInstalment.objects.all(), "contract__number", "position", "due_date", "amount", "paid_amount", "note",
    ))


def _receipt_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    yield from (list(row) for row in _stream(
        PaymentReceipt.objects.all(), "contract__number", "instalment__position", "instalment__due_date",
        "received_on", "amount", "method", "reference", "recorded_by__username", "created_at",
    ))


def _ticket_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    for (pk, customer_id, customer_ext, contact_id, contact_ext, contract, kind, priority, subject, description,
         status, owner, team, source, req_name, req_email, req_phone, created_at, responded, response_due,
         resolved, resolution_due, closed) in _stream(
        Ticket.objects.all(), "pk", "customer_id", "customer__external_id", "contact_id", "contact__external_id",
        "contract__number", "kind__code", "priority", "subject", "description", "status", "owner__username",
        "team__name", "source", "requester_name", "requester_email", "requester_phone", "created_at",
        "first_responded_at", "response_due_at", "resolved_at", "resolution_due_at", "closed_at",
    ):
        yield [f"T-{pk:06d}", ids(Customer, customer_id, customer_ext), ids(Contact, contact_id, contact_ext),
               contract, kind, priority, subject, description, status, owner, team, source, req_name, req_email,
               req_phone, created_at, responded, response_due, resolved, resolution_due, closed]


def _user_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    # never the password hash
    yield from (list(row) for row in _stream(
        User.objects.all(), "username", "first_name", "last_name", "email", "phone", "role", "team__name",
        "language", "is_active", "date_joined", "last_login",
    ))


def _team_rows(ids: ExternalIds) -> Iterator[list[Any]]:
    yield from (list(row) for row in _stream(Team.objects.all(), "name", "parent__name", "manager__username"))


_CUSTOMER_REF = _col("customer_external_id", "Customer external ID", "客户外部编号")
_CONTACT_REF = _col("contact_external_id", "Contact external ID", "联系人外部编号")
_OPPORTUNITY_REF = _col("opportunity_external_id", "Opportunity external ID", "商机外部编号")
_CONTRACT_REF = _col("contract_number", "Contract number", "合同编号")

TABLES: list[Table] = [
    Table("customers.csv", "Customers", "客户", IMPORT_COLUMNS[CUSTOMERS], _customer_rows, importable=True),
    Table("contacts.csv", "Contacts", "联系人", IMPORT_COLUMNS[CONTACTS], _contact_rows, importable=True),
    Table("opportunities.csv", "Opportunities (deals)", "商机", IMPORT_COLUMNS[OPPORTUNITIES], _opportunity_rows,
          importable=True),
    Table("activities.csv", "Activities", "跟进活动", IMPORT_COLUMNS[ACTIVITIES], _activity_rows, importable=True),
    Table("stage_history.csv", "Stage history of the opportunities", "商机阶段变更历史", [
        _OPPORTUNITY_REF,
        _col("action", "Action", "操作", "create, advance, move_back, win, lose, reopen, reassign or import"),
        _col("from_stage", "From stage", "原阶段"),
        _col("to_stage", "To stage", "新阶段"),
        _col("changed_by", "Changed by", "操作人", "username"),
        _col("changed_at", "Changed at", "变更时间"),
        _col("seconds_in_previous_stage", "Seconds in previous stage", "在原阶段停留秒数"),
        _col("note", "Note", "备注"),
        _col("imported", "Imported", "导入", "yes/no"),
    ], _stage_history_rows),
    Table("contracts.csv", "Contracts", "合同", [
        _CONTRACT_REF, _col("title", "Title", "合同名称"), _CUSTOMER_REF, _CONTACT_REF, _OPPORTUNITY_REF,
        _col("owner", "Owner", "负责人", "username"),
        _col("status", "Status", "状态", "draft, in_review, approved, signed, active, completed or terminated"),
        _col("currency", "Currency", "币种"), _col("subtotal", "Subtotal", "小计"), _col("tax_amount", "Tax", "税额"),
        _col("total_amount", "Total", "合同总额"), _col("start_date", "Start date", "开始日期"),
        _col("end_date", "End date", "结束日期"), _col("signed_on", "Signed on", "签订日期"),
        _col("our_signatory", "Our signatory", "我方签字人"), _col("customer_signatory", "Customer's signatory", "客户签字人"),
        _col("activated_on", "Active since", "生效日期"), _col("completed_on", "Completed on", "完成日期"),
        _col("terminated_on", "Terminated on", "终止日期"), _col("termination_reason", "Termination reason", "终止原因"),
        _col("payment_terms", "Payment terms", "付款条款"), _col("created_at", "Created at", "创建时间"),
    ], _contract_rows),
    Table("contract_lines.csv", "Contract line items", "合同明细", [
        _CONTRACT_REF, _col("position", "Position", "序号"), _col("name", "Product or service", "产品或服务"),
        _col("quantity", "Quantity", "数量"), _col("unit_price", "Unit price", "单价"),
        _col("discount_percent", "Discount %", "折扣 %"), _col("tax_rate", "Tax rate %", "税率 %"),
    ], _contract_line_rows),
    Table("payment_plan.csv", "Payment plan (instalments)", "回款计划", [
        _CONTRACT_REF, _col("position", "Position", "期次"), _col("due_date", "Due date", "应收日期"),
        _col("amount", "Amount", "应收金额"), _col("paid_amount", "Received", "已收金额"), _col("note", "Note", "备注"),
    ], _instalment_rows),
    Table("payments.csv", "Payments received (回款)", "回款记录", [
        _CONTRACT_REF, _col("instalment_position", "Instalment position", "期次"),
        _col("instalment_due_date", "Instalment due date", "应收日期"), _col("received_on", "Received on", "到账日期"),
        _col("amount", "Amount", "金额"),
        _col("method", "Method", "方式", "bank_transfer, acceptance_bill, cheque, cash, alipay, wechat or other"),
        _col("reference", "Reference", "凭证号"), _col("recorded_by", "Recorded by", "登记人", "username"),
        _col("created_at", "Recorded at", "登记时间"),
    ], _receipt_rows),
    Table("tickets.csv", "Service tickets", "服务工单", [
        _col("reference", "Reference", "工单号"), _CUSTOMER_REF, _CONTACT_REF, _CONTRACT_REF,
        _col("kind", "Kind", "类型", "ticket kind code"),
        _col("priority", "Priority", "优先级", "low, normal, high or urgent"), _col("subject", "Subject", "主题"),
        _col("description", "Description", "描述"),
        _col("status", "Status", "状态", "open, in_progress, waiting_on_customer, resolved, closed or reopened"),
        _col("owner", "Owner", "负责人", "username"), _col("team", "Team", "团队"),
        _col("source", "Source", "来源", "staff, public_form, api or service_plan"),
        _col("requester_name", "Requester name", "提交人姓名"), _col("requester_email", "Requester email", "提交人邮箱"),
        _col("requester_phone", "Requester phone", "提交人电话"), _col("created_at", "Created at", "创建时间"),
        _col("first_responded_at", "First response", "首次响应时间"), _col("response_due_at", "Response due", "响应时限"),
        _col("resolved_at", "Resolved at", "解决时间"), _col("resolution_due_at", "Resolution due", "解决时限"),
        _col("closed_at", "Closed at", "关闭时间"),
    ], _ticket_rows),
    Table("users.csv", "Users (no passwords)", "用户（不含密码）", [
        _col("username", "Username", "用户名"), _col("first_name", "First name", "名"),
        _col("last_name", "Last name", "姓"), _col("email", "Email", "邮箱"), _col("phone", "Phone", "电话"),
        _col("role", "Role", "角色", "rep, manager or admin"), _col("team", "Team", "团队"),
        _col("language", "Language", "语言"), _col("is_active", "Active", "启用", "yes/no"),
        _col("date_joined", "Joined", "加入时间"), _col("last_login", "Last login", "最后登录"),
    ], _user_rows),
    Table("teams.csv", "Teams", "团队", [
        _col("name", "Name", "名称"), _col("parent", "Parent team", "上级团队"),
        _col("manager", "Manager", "经理", "username"),
    ], _team_rows),
]


# --- writing the zip -----------------------------------------------------------------------------------
def write_csv(stream: io.TextIOBase, header: list[str], rows: Iterable[list[Any]]) -> int:
    """Write a BOM, the header and the rows (each cell through `cell`); the number of rows."""
    writer = csv.writer(stream, lineterminator="\r\n")
    stream.write("\ufeff")
    writer.writerow([escape_cell(h) for h in header])
    count = 0
    for row in rows:
        writer.writerow([cell(value) for value in row])
        count += 1
    return count


def readme_text(row_counts: dict[str, int], *, generated_at: datetime) -> str:
    """README.txt: every file and its columns, in English and in Chinese."""
    parts: list[str] = []
    stamp = format_datetime(generated_at.replace(microsecond=0))
    for language in ("en", "zh-hans"):
        zh = language != "en"
        with translation.override(language):
            if zh:
                parts += [
                    "CRM 全量导出", "=" * 12, f"生成时间：{stamp}（{settings.TIME_ZONE}）", "",
                    "CSV 文件为 UTF-8 编码（带 BOM），Excel 可直接打开中文。",
                    "以公式字符（= + - @ 等）开头的文本前加了一个单引号 '，防止表格软件把它当作公式执行；",
                    "导入时会去掉这个单引号，数值原样恢复。",
                    "记录之间通过外部编号关联：记录自身的外部编号，或生成的 crm-<编号>。",
                    "时间为 YYYY-MM-DD HH:MM:SS（配置的时区），日期为 YYYY-MM-DD，金额如 1234.50，",
                    "是/否为 yes/no，选项为其代码，用户为用户名；非默认销售流程的阶段写作 <流程代码>/<阶段名>。",
                    "customers.csv、contacts.csv、opportunities.csv、activities.csv 与导入向导的格式完全一致，",
                    "可依次（客户、联系人、商机、活动）导入新的系统。",
                ]
            else:
                parts += [
                    "CRM full export", "=" * 15, f"Generated: {stamp} ({settings.TIME_ZONE})", "",
                    "The CSV files are UTF-8 with a BOM (Excel shows Chinese correctly).",
                    "Text starting with a formula character (= + - @ ...) has a leading ' so that spreadsheet",
                    "software does not run it as a formula; the import removes it and restores the value.",
                    "Records refer to each other by external id: the record's own, or a generated crm-<id>.",
                    "Date-times are YYYY-MM-DD HH:MM:SS in the configured time zone, dates YYYY-MM-DD, amounts",
                    "like 1234.50, booleans yes/no, choices by their code, users by username; the stages of a",
                    "pipeline other than the default one are written <pipeline code>/<stage name>.",
                    "customers.csv, contacts.csv, opportunities.csv and activities.csv are in exactly the format",
                    "of the import wizard: import them, in this order, into a new instance.",
                ]
            for table in TABLES:
                title = table.title_zh if zh else table.title_en
                count = row_counts.get(table.file_name, 0)
                rows_text = f"{count} 行" if zh else f"{count} rows"
                flag = ""
                if table.importable:
                    flag = "，可导入" if zh else ", importable"
                parts += ["", f"{table.file_name} — {title} ({rows_text}{flag})", "-" * 60]
                for column in table.columns:
                    name = f"{column.zh} ({column.en})" if zh else column.en
                    line = f"  {name}"
                    if column.help:
                        line += f": {column.help}"
                    parts.append(line)
            parts += ["", ""]
    return "\n".join(parts) + "\n"


class _MovableFile(File):
    """A finished temporary file: FileSystemStorage moves it into place instead of copying it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def build_zip(path: str) -> dict[str, int]:
    """Write every table and the README into a zip at `path`; the row count of each file."""
    row_counts: dict[str, int] = {}
    ids = ExternalIds()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for table in TABLES:
            with archive.open(table.file_name, "w", force_zip64=True) as raw:
                text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                row_counts[table.file_name] = write_csv(text, table.header, table.rows(ids))
                text.flush()
                text.detach()
        archive.writestr("README.txt", "\ufeff" + readme_text(row_counts, generated_at=timezone.now()))
    return row_counts


def _build_in_snapshot(path: str) -> dict[str, int]:
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return build_zip(path)
    with transaction.atomic():
        return build_zip(path)


# --- services ------------------------------------------------------------------------------------------
def ttl() -> timedelta:
    return timedelta(hours=settings.EXPORT_TTL_HOURS)


def export_request(*, user: User) -> Export:
    """An administrator asks for an export: a queued row, and the task once the row is committed."""
    if not sees_everything(user):
        raise PermissionDenied
    from .export_tasks import export_run as export_run_task

    with transaction.atomic():
        export = Export.objects.create(requested_by=user, status=ExportStatus.QUEUED)
        transaction.on_commit(lambda: export_run_task.delay(export.pk))
    return export


def export_run(*, export_id: int) -> Export | None:
    """Build the zip of a queued export. The row is claimed by a conditional update, so a duplicate
    delivery of the task does nothing; a failure marks the export failed (with the error) and leaves no
    file behind."""
    claimed = Export.objects.filter(pk=export_id, status=ExportStatus.QUEUED).update(
        status=ExportStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    export = Export.objects.get(pk=export_id)
    handle, path = tempfile.mkstemp(prefix="crm-export-", suffix=".zip", dir=settings.FILE_UPLOAD_TEMP_DIR)
    os.close(handle)
    try:
        row_counts = _build_in_snapshot(path)
        size = os.path.getsize(path)
        with open(path, "rb") as source:
            export.file.save(f"{export.pk}.zip", _MovableFile(source, name=path), save=False)
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        Export.objects.filter(pk=export_id).update(
            status=ExportStatus.FAILED, failure=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        return Export.objects.get(pk=export_id)
    finally:
        if os.path.exists(path):
            os.remove(path)
    finished = timezone.now()
    export.status = ExportStatus.DONE
    export.size = size
    export.row_counts = row_counts
    export.finished_at = finished
    export.expires_at = finished + ttl()
    export.save(update_fields=["status", "file", "size", "row_counts", "finished_at", "expires_at"])
    return export


def export_purge_expired(*, now: datetime | None = None) -> int:
    """Delete the files of the exports past their expiry (the rows stay, as the list's history); an
    export still queued or running STALE_AFTER after it was requested (its worker was killed, its task
    lost) is marked failed, so the page stops waiting for it. Returns the number of files deleted."""
    now = now or timezone.now()
    Export.objects.filter(status__in=(ExportStatus.QUEUED, ExportStatus.RUNNING), created_at__lt=now - STALE_AFTER).update(
        status=ExportStatus.FAILED, failure=gettext("Interrupted: the export did not finish. Start a new one."),
        finished_at=now,
    )
    purged = 0
    for export in Export.objects.filter(expires_at__lte=now).exclude(file=""):
        export.file.delete(save=False)
        Export.objects.filter(pk=export.pk).update(file="")
        purged += 1
    return purged


# --- selectors -----------------------------------------------------------------------------------------
def export_access_check(user: User) -> None:
    """Exports are for administrators; to anyone else every export path is a 404 (the scope rule)."""
    if not sees_everything(user):
        raise Http404("exports")


def export_list(*, user: User, limit: int = 20) -> list[Export]:
    """The latest exports, newest first (administrators only)."""
    export_access_check(user)
    return list(Export.objects.select_related("requested_by").order_by("-created_at", "-pk")[:limit])


def export_get_for_user(*, user: User, pk: int) -> Export:
    export_access_check(user)
    export = Export.objects.filter(pk=pk).first()
    if export is None:
        raise Http404("export")
    return export

