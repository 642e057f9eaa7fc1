"""The one table of input-validation messages, keyed by check kind, in English and Chinese.

Every validator (one household, a caseload's columns, a registry, an event) words a
problem through ``say``, so the same bad value reads the same on every path.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MESSAGES", "say"]

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"en": "is required", "zh": "必填"},
    "required_when": {"en": "is required when {cond}", "zh": "{cond}时必填"},
    "unknown": {"en": "unknown field{hint}", "zh": "未知字段{hint}"},
    "object": {"en": "must be an object", "zh": "须为对象"},
    "household": {"en": "must be a JSON object", "zh": "须为 JSON 对象"},
    "scalar": {"en": "must be a single value, not a list or object", "zh": "须为单个值，不能是列表或对象"},
    "members": {"en": "must be a non-empty list of members", "zh": "须为非空的成员列表"},
    "bool": {"en": "must be true or false (got '{got}')", "zh": "须为 true 或 false（实为 '{got}'）"},
    "int": {"en": "must be a whole number (got '{got}')", "zh": "须为整数（实为 '{got}'）"},
    "int_digits": {
        "en": "has {digits} digits, more than any plausible number (at most {bound})",
        "zh": "有 {digits} 位数字，不合理（至多 {bound} 位）",
    },
    "decimal": {"en": "must be a number (got '{got}')", "zh": "须为数字（实为 '{got}'）"},
    "min": {"en": "must be at least {bound} (got {got})", "zh": "不得小于 {bound}（实为 {got}）"},
    "max": {"en": "must be at most {bound} (got {got})", "zh": "不得大于 {bound}（实为 {got}）"},
    "date": {"en": "must be a date YYYY-MM-DD (got '{got}')", "zh": "须为日期 YYYY-MM-DD（实为 '{got}'）"},
    "date_year": {
        "en": "must be a date between the years {lo} and {hi} (got '{got}')",
        "zh": "日期须在 {lo} 年至 {hi} 年之间（实为 '{got}'）",
    },
    "text_long": {
        "en": "is too long: at most {bound} characters (got {got})",
        "zh": "过长：至多 {bound} 个字符（实为 {got} 个）",
    },
    "control": {
        "en": "must not contain control characters (got '{got}')",
        "zh": "不得含控制字符（实为 '{got}'）",
    },
    "date_min": {
        "en": "must not be before {ref} {bound} (got {got})",
        "zh": "不得早于 {ref} {bound}（实为 {got}）",
    },
    "date_after": {
        "en": "must be after {ref} {bound} (got {got})",
        "zh": "须晚于 {ref} {bound}（实为 {got}）",
    },
    "date_max": {
        "en": "must not be after {ref} {bound} (got {got})",
        "zh": "不得晚于 {ref} {bound}（实为 {got}）",
    },
    "money": {
        "en": "must be an amount like \"1234.50\" with at most two decimals (got '{got}')",
        "zh": "须为金额，如 \"1234.50\"，最多两位小数（实为 '{got}'）",
    },
    "negative": {"en": "must not be negative (got '{got}')", "zh": "不得为负（实为 '{got}'）"},
    "money_max": {
        "en": "is implausibly large (got '{got}'); amounts are below {bound} yuan",
        "zh": "金额不合理（实为 '{got}'）；金额须小于 {bound} 元",
    },
    "enum": {"en": "must be one of {values} (got '{got}'){hint}", "zh": "须为 {values} 之一（实为 '{got}'）{hint}"},
    "id_shape": {
        "en": "is not a valid resident ID: must be 17 digits followed by a digit or X",
        "zh": "不是有效的身份证号：须为 17 位数字加一位数字或 X",
    },
    "id_check": {
        "en": "is not a valid resident ID: check digit should be {expected}, not {got}",
        "zh": "不是有效的身份证号：校验码应为 {expected}，不是 {got}",
    },
    "id_date": {
        "en": "is not a valid resident ID: birth date inside the ID is not a calendar date",
        "zh": "不是有效的身份证号：其中的出生日期不存在",
    },
    "same_person": {
        "en": "is the same person as members[{first}] of this household",
        "zh": "与本户 members[{first}] 为同一人",
    },
    "repeated_household": {
        "en": "appears more than once in this input; every copy is rejected",
        "zh": "在本次输入中出现多次；每一份都不予处理",
    },
    "members_max": {
        "en": "must have at most {bound} members (got {got})",
        "zh": "成员不得多于 {bound} 人（实为 {got} 人）",
    },
    "repeated_column": {
        "en": "this column appears more than once in the table",
        "zh": "该列在表中出现多次",
    },
    "json_depth": {
        "en": "is nested too deeply to be a household (more than {bound} levels)",
        "zh": "嵌套层数过多，不是一户的记录（超过 {bound} 层）",
    },
    "orphan": {"en": "member without household", "zh": "成员没有对应的家庭"},
    "unknown_region": {
        "en": "has no parameter values in this ruleset (got '{got}'; known: {known})",
        "zh": "本规则集没有该地区的参数（实为 '{got}'；已知：{known}）",
    },
    "too_early": {
        "en": "is before {first}, the first date every parameter is in force for region {region} (got {got})",
        "zh": "早于 {first}，即地区 {region} 所有参数生效的第一天（实为 {got}）",
    },
}


def say(kind: str, lang: str = "en", **values: Any) -> str:
    """One message of the table, filled in.

    >>> say("min", bound=0, got="-1")
    'must be at least 0 (got -1)'
    """
    return MESSAGES[kind][lang].format(**values)
