"""The documented columns of the four kinds of file the import reads (and the export writes).

`COLUMNS[kind]` is the ordered list of `Column(key, en, zh, required, help)`:

- `key`: the internal name (also accepted as a header);
- `en`, `zh`: the English and the Chinese header. A file may use either language, or mix them; headers
  are compared without case, spaces, underscores and a trailing `*` (the template marks required
  columns with `*`);
- `required`: a row without a value in this column is a row error;
- `help`: what the column holds (translated; shown on the template sheet, in the wizard and in
  docs/switching.md).

Rows reference each other by the old system's ids: every kind has an `external_id` (unique per kind:
a second import of the same id updates the record), and contacts, opportunities and activities name
their customer (and deal, contact) by that customer's `external_id`.

Value formats (all kinds): dates `YYYY-MM-DD` (also `YYYY/MM/DD`), date-times `YYYY-MM-DD HH:MM[:SS]`
in the configured time zone (a date alone means midnight); amounts `1234.50` (thousands separators
`,` allowed); choices by their code or their English or Chinese label; owners by username or email.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

CUSTOMERS = "customers"
CONTACTS = "contacts"
OPPORTUNITIES = "opportunities"
ACTIVITIES = "activities"
KINDS = (CUSTOMERS, CONTACTS, OPPORTUNITIES, ACTIVITIES)


@dataclass(frozen=True)
class Column:
    key: str
    en: str
    zh: str
    required: bool = False
    help: str | Promise = ""


def _external_id(what: str | Promise) -> Column:
    return Column("external_id", "External ID", "外部编号", True, what)


_CUSTOMER_REF = Column(
    "customer_external_id", "Customer external ID", "客户外部编号", True,
    _("The external ID of the customer (from the customers file, or imported before)."),
)

COLUMNS: dict[str, list[Column]] = {
    CUSTOMERS: [
        _external_id(_("The customer's id in the old system: a second import with the same id updates it.")),
        Column("name", "Name", "客户名称", True, _("Company or person name.")),
        Column("customer_type", "Type", "客户类型", False, _("company or individual (default: company).")),
        Column("status", "Status", "状态", False, _("lead, prospect, customer or inactive (default: lead).")),
        Column("tier", "Tier", "客户等级", False, _("A, B or C; empty: computed from the tier rules after the import.")),
        Column("industry", "Industry", "行业", False, _("An industry code or name, e.g. software or 软件与IT.")),
        Column("region", "Region", "地区", False, _("Free text, e.g. 华东 · 上海.")),
        Column("address", "Address", "地址", False, ""),
        Column("size", "Size", "公司规模", False, _("1-10, 11-50, 51-200, 201-1000 or 1000+.")),
        Column("website", "Website", "网站", False, ""),
        Column("phone", "Phone", "电话", False, _("Any usual form; stored as +86…")),
        Column("email", "Email", "邮箱", False, ""),
        Column("source", "Source channel", "来源渠道", False, _("A source channel's code or name.")),
        Column("tags", "Tags", "标签", False, _("Separated by commas (, ， 、 ;).")),
        Column("needs", "Needs", "需求与痛点", False, ""),
        Column("requirements", "Requirements", "个性化需求", False, ""),
        Column("owner", "Owner", "负责人", False, _("Username or email of the owner; empty: the team's lead pool.")),
        Column("created_at", "Created at", "创建时间", False, _("When the customer was created in the old system.")),
    ],
    CONTACTS: [
        _external_id(_("The contact's id in the old system.")),
        _CUSTOMER_REF,
        Column("name", "Name", "姓名", True, ""),
        Column("title", "Job title", "职位", False, ""),
        Column("phone", "Phone", "电话", False, ""),
        Column("email", "Email", "邮箱", False, ""),
        Column("wechat", "WeChat", "微信", False, ""),
        Column("is_decision_maker", "Decision maker", "决策人", False, _("yes/no, 是/否, 1/0.")),
        Column("notes", "Notes", "备注", False, ""),
    ],
    OPPORTUNITIES: [
        _external_id(_("The deal's id in the old system.")),
        _CUSTOMER_REF,
        Column("title", "Title", "商机名称", True, ""),
        Column(
            "stage", "Stage", "阶段", True,
            _("The deal's current stage, by its name in the old system (mapped to this pipeline's stages in "
              "the wizard, e.g. closed_won → 赢单)."),
        ),
        Column("amount", "Amount", "金额", False, _("e.g. 120000.00")),
        Column("currency", "Currency", "币种", False, _("CNY (default), USD, EUR, HKD or JPY.")),
        Column("created_at", "Created at", "创建时间", True, _("When the deal was created (it entered the first stage).")),
        Column(
            "close_date", "Close date", "结束日期", False,
            _("When a won or lost deal was closed (required for them); the expected close date of an open deal."),
        ),
        Column(
            "outcome", "Outcome", "结果", False,
            _("won, lost or open (赢单/输单/进行中); empty: from the mapped stage. Must agree with the stage."),
        ),
        Column("owner", "Owner", "负责人", False, _("Username or email of the owner.")),
        Column("source", "Source", "商机来源", False, _("website, referral, exhibition, cold_call, partner, existing, advertising or other.")),
        Column("probability", "Probability", "赢率", False, _("0-100; empty: the stage's default.")),
        Column("contact_external_id", "Contact external ID", "联系人外部编号", False, ""),
        Column("loss_reason", "Loss reason", "输单原因", False, _("The name of a loss reason of this CRM (lost deals).")),
        Column("loss_note", "Loss note", "输单说明", False, ""),
    ],
    ACTIVITIES: [
        _external_id(_("The activity's id in the old system.")),
        _CUSTOMER_REF,
        Column("opportunity_external_id", "Opportunity external ID", "商机外部编号", False,
               _("The deal it belongs to, if any (must be a deal of the same customer).")),
        Column("contact_external_id", "Contact external ID", "联系人外部编号", False, ""),
        Column("kind", "Kind", "类型", True,
               _("call, visit, meeting, email, wechat, demo or note, or the old system's name (mapped in the wizard).")),
        Column("timestamp", "Time", "时间", True, _("When it was done (or is planned).")),
        Column("subject", "Subject", "主题", False, _("Empty: the kind's name.")),
        Column("status", "Status", "状态", False, _("done (default), planned or cancelled.")),
        Column("outcome", "Outcome", "结果", False, _("positive, neutral or negative (积极/中性/消极).")),
        Column("owner", "Owner", "负责人", False, _("Username or email of the owner.")),
        Column("duration_minutes", "Duration (minutes)", "时长（分钟）", False, ""),
        Column("notes", "Notes", "备注", False, ""),
        Column("next_step", "Next step", "下一步", False, ""),
    ],
}

KIND_LABELS: dict[str, Promise] = {
    CUSTOMERS: _("Customers"),
    CONTACTS: _("Contacts"),
    OPPORTUNITIES: _("Opportunities"),
    ACTIVITIES: _("Activities"),
}


def squash(text: str) -> str:
    """A header as compared: lower-cased, without spaces, underscores, hyphens and `*`."""
    return "".join(str(text).lower().split()).replace("_", "").replace("-", "").replace("*", "")


def header_lookup(kind: str) -> dict[str, str]:
    """{squashed header (English, Chinese or the key): column key} of a kind."""
    lookup: dict[str, str] = {}
    for column in COLUMNS[kind]:
        for text in (column.key, column.en, column.zh):
            lookup[squash(text)] = column.key
    return lookup


def match_header(kind: str, header: list[str]) -> list[str | None]:
    """Each header cell's column key; None for a header the kind does not know (the mapping step).
    A bilingual cell as the template writes it ("External ID / 外部编号") matches by either half."""
    lookup = header_lookup(kind)
    keys = []
    for cell in header:
        key = lookup.get(squash(cell))
        if key is None and "/" in cell:
            halves = {lookup.get(squash(part)) for part in cell.split("/")} - {None}
            key = halves.pop() if len(halves) == 1 else None
        keys.append(key)
    return keys


def template_header(kind: str) -> list[str]:
    """The template's header row: "English / 中文" per column, a `*` after required ones."""
    return [f"{c.en} / {c.zh}{' *' if c.required else ''}" for c in COLUMNS[kind]]


def required_keys(kind: str) -> list[str]:
    return [c.key for c in COLUMNS[kind] if c.required]


def column_keys(kind: str) -> list[str]:
    return [c.key for c in COLUMNS[kind]]
