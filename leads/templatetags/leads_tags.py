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
