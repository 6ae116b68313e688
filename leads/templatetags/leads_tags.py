from django import template

register = template.Library()

TIER_CLASSES = {"A": "text-bg-danger", "B": "text-bg-warning", "C": "text-bg-secondary"}


@register.filter
def is_selected(field, value) -> bool:
    """Whether `value` is among the bound field's current values (single or multiple choice)."""
    current = field.value()
    if current is None:
        return False
    if isinstance(current, list | tuple):
        return str(value) in {str(v) for v in current}
    return str(current) == str(value)


@register.filter
def tier_class(tier: str) -> str:
    return TIER_CLASSES.get(tier, "text-bg-secondary")


@register.filter
def phone(value: str) -> str:
    """+8613812345678 shown as +86 138 1234 5678 (a Chinese mobile); other numbers as stored."""
    if value and value.startswith("+86") and len(value) == 14 and value[3] == "1":
        digits = value[3:]
        return f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}"
    return value or ""
