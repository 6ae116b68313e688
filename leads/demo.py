"""Demo customers: ~200 realistic bilingual companies and people with contacts, spread over the demo
reps, the two teams' lead pools, every source channel, tier, status and a few tags. Idempotent (each
demo customer has the external id `demo-<n>`); bulk inserts, so it takes about a second."""

from __future__ import annotations

import random
from datetime import timedelta

from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import Role, Team, User

from .models import (
    CompanySize,
    Contact,
    Customer,
    CustomerStatus,
    CustomerType,
    Industry,
    SourceChannel,
    Tag,
    WebAssignment,
)
from .normalise import name_key, normalise_email, normalise_phone

COUNT = 200

CITIES = [
    ("上海", "Shanghai", "华东 · 上海"), ("北京", "Beijing", "华北 · 北京"), ("深圳", "Shenzhen", "华南 · 深圳"),
    ("杭州", "Hangzhou", "华东 · 杭州"), ("广州", "Guangzhou", "华南 · 广州"), ("苏州", "Suzhou", "华东 · 苏州"),
    ("成都", "Chengdu", "西南 · 成都"), ("武汉", "Wuhan", "华中 · 武汉"), ("南京", "Nanjing", "华东 · 南京"),
    ("西安", "Xi'an", "西北 · 西安"), ("天津", "Tianjin", "华北 · 天津"), ("厦门", "Xiamen", "华南 · 厦门"),
]
CORES = [
    ("云帆", "Yunfan"), ("华信", "Huaxin"), ("长风", "Changfeng"), ("瑞达", "Ruida"), ("星海", "Xinghai"),
    ("博远", "Boyuan"), ("恒通", "Hengtong"), ("智联", "Zhilian"), ("锦程", "Jincheng"), ("天合", "Tianhe"),
    ("新元", "Xinyuan"), ("众诚", "Zhongcheng"), ("金桥", "Jinqiao"), ("东方", "Dongfang"), ("九州", "Jiuzhou"),
    ("汇丰达", "Huifengda"), ("青禾", "Qinghe"), ("蓝图", "Lantu"), ("安泰", "Antai"), ("明德", "Mingde"),
]
TRADES = [
    ("信息技术", "Information Technology", Industry.SOFTWARE),
    ("软件", "Software", Industry.SOFTWARE),
    ("精密机械", "Precision Machinery", Industry.MANUFACTURING),
    ("电子科技", "Electronics", Industry.MANUFACTURING),
    ("医疗器械", "Medical Devices", Industry.HEALTHCARE),
    ("物流", "Logistics", Industry.LOGISTICS),
    ("教育科技", "EdTech", Industry.EDUCATION),
    ("新能源", "New Energy", Industry.ENERGY),
    ("商贸", "Trading", Industry.RETAIL),
    ("投资管理", "Investment Management", Industry.FINANCE),
    ("建设工程", "Construction", Industry.REAL_ESTATE),
]
SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林"]
GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "华", "建国", "丽娟", "志强"]
ENGLISH = ["Emily Chen", "David Wang", "Grace Liu", "Kevin Zhang", "Linda Zhou", "Michael Li", "Sophia Wu", "Jason Huang"]
TITLES = [("总经理", True), ("采购经理", True), ("IT 总监", True), ("财务经理", False), ("运营主管", False),
          ("Purchasing Manager", True), ("CTO", True), ("Office Manager", False), ("行政专员", False)]
NEEDS = [
    "现有系统分散，销售数据无法汇总，希望统一管理客户和商机。",
    "Wants to cut order processing time; current ERP is slow and hard to integrate.",
    "年底前需要完成设备升级，预算已批，关注交付周期和售后响应。",
    "Looking for a supplier with on-site service in East China and 24h response.",
    "关注数据安全与合规，要求私有化部署。",
    "Needs bilingual training material for the team in Shenzhen.",
    "对价格敏感，希望分期付款。",
    "",
]
REQUIREMENTS = ["发票需按项目拆分", "Contract in English and Chinese", "交付前需现场验收", "只接受电子合同", "", ""]
TAGS = ["重点客户", "VIP", "政府项目", "展会2026", "续约", "Key account", "需回访"]


def _phone(rng: random.Random) -> str:
    return f"1{rng.choice('3578')}{rng.randint(0, 9)} {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"


def _person(rng: random.Random) -> str:
    return rng.choice(ENGLISH) if rng.random() < 0.15 else rng.choice(SURNAMES) + rng.choice(GIVEN)


def seed(*, seed: int) -> str:
    rng = random.Random(seed)
    now = timezone.now()
    existing = set(Customer.objects.filter(external_id__startswith="demo-").values_list("external_id", flat=True))
    reps = list(User.objects.filter(role=Role.REP, is_active=True).order_by("username"))
    managers = list(User.objects.filter(role=Role.MANAGER, is_active=True).order_by("username"))
    teams = list(Team.objects.order_by("pk"))
    channels = list(SourceChannel.objects.order_by("order"))
    website = next((c for c in channels if c.code == "website"), None)
    if website and not website.web_enabled and teams:
        website.web_enabled, website.web_team, website.web_assignment = True, teams[0], WebAssignment.POOL
        website.save(update_fields=["web_enabled", "web_team", "web_assignment"])
    tags = [Tag.objects.get_or_create(name=name)[0] for name in TAGS]

    customers, contact_rows, tag_rows = [], [], []
    for n in range(1, COUNT + 1):
        key = f"demo-{n}"
        # draw every random value even for existing rows so that the sequence stays the same
        city_zh, city_en, region = rng.choice(CITIES)
        core_zh, core_en = rng.choice(CORES)
        trade_zh, trade_en, industry = rng.choice(TRADES)
        individual = rng.random() < 0.1
        if individual:
            name = _person(rng)
        elif rng.random() < 0.65:
            name = f"{city_zh}{core_zh}{trade_zh}有限公司"
        else:
            name = f"{city_en} {core_en} {trade_en} Co., Ltd."
        owner = rng.choice(reps + managers[:1]) if reps and rng.random() > 0.2 else None
        team = owner.team if owner else (rng.choice(teams) if teams else None)
        created = now - timedelta(days=rng.randint(1, 400), hours=rng.randint(0, 23))
        contacted = created + timedelta(days=rng.randint(0, 60)) if rng.random() < 0.75 else None
        if contacted and contacted > now:
            contacted = now - timedelta(days=rng.randint(0, 5))
        tier = rng.choices("ABC", weights=[15, 35, 50])[0]
        follow_up = (contacted + timedelta(days={"A": 7, "B": 14, "C": 30}[tier])) if contacted else None
        status = rng.choices(
            [CustomerStatus.LEAD, CustomerStatus.PROSPECT, CustomerStatus.CUSTOMER, CustomerStatus.INACTIVE],
            weights=[40, 30, 25, 5],
        )[0]
        phone = _phone(rng) if rng.random() < 0.85 else f"0{rng.choice(['21', '10', '755', '571'])}-{rng.randint(5000000, 8999999)}"
        domain = f"{core_en.lower()}-{n}.cn"
        email = "" if rng.random() < 0.2 else (f"info@{domain}" if not individual else f"{core_en.lower()}{n}@163.com")
        needs, requirements = rng.choice(NEEDS), rng.choice(REQUIREMENTS)
        chosen_tags = rng.sample(tags, k=rng.choice([0, 0, 1, 1, 2]))
        contacts = []
        for index in range(0 if individual else rng.randint(1, 3)):
            title, decides = rng.choice(TITLES)
            person = _person(rng)
            contacts.append(Contact(
                name=person, title=title, phone=normalise_phone(_phone(rng)), is_decision_maker=decides and index == 0,
                email=normalise_email(f"{core_en.lower()}.{index}@{domain}") if rng.random() < 0.6 else "",
                wechat=f"wx_{core_en.lower()}{rng.randint(100, 999)}" if rng.random() < 0.5 else "",
            ))
        if key in existing:
            continue
        customer = Customer(
            external_id=key, name=name, name_key=name_key(name),
            customer_type=CustomerType.INDIVIDUAL if individual else CustomerType.COMPANY,
            status=status, tier=tier, industry="" if individual else industry, region=region,
            address=f"{city_zh}市{rng.choice(['浦东新区', '海淀区', '南山区', '西湖区', '天河区', '工业园区'])}{rng.randint(1, 999)}号",
            size="" if individual else rng.choice(CompanySize.values), website="" if individual else f"https://www.{domain}",
            phone=normalise_phone(phone), email=normalise_email(email), source=rng.choice(channels) if channels else None,
            needs=needs, requirements=requirements, last_contacted_at=contacted, next_follow_up_at=follow_up,
            profile_reviewed_at=created + timedelta(days=rng.randint(0, 200)) if rng.random() < 0.8 else None,
            owner=owner, team=team, assigned_at=created if owner else None,
        )
        customer._demo_created = created
        customers.append((customer, contacts, chosen_tags))

    if not customers:
        return f"{Customer.objects.count()} customers (demo set already loaded)"
    created_rows = bulk_create_with_history([c for c, _contacts, _tags in customers], Customer, batch_size=500,
                                            default_change_reason="demo data")
    by_key = {c.external_id: c for c in Customer.objects.filter(external_id__in=[c.external_id for c in created_rows])}
    for customer, contacts, chosen_tags in customers:
        saved = by_key[customer.external_id]
        for contact in contacts:
            contact.customer = saved
            contact_rows.append(contact)
        tag_rows += [Customer.tags.through(customer_id=saved.pk, tag_id=t.pk) for t in chosen_tags]
        saved.created_at = customer._demo_created
        saved.search_text = saved.build_search_text([(c.name, c.phone, c.email) for c in contacts])
    bulk_create_with_history(contact_rows, Contact, batch_size=500, default_change_reason="demo data")
    Customer.tags.through.objects.bulk_create(tag_rows, ignore_conflicts=True)
    Customer.objects.bulk_update(by_key.values(), ["search_text", "created_at"], batch_size=500)
    return f"{len(by_key)} customers, {len(contact_rows)} contacts"
