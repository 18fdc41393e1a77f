"""DECIDE: pure rules that turn one inbound email into a decision.

``guards`` recognise machine mail, ``detect`` scores complaints offline,
``timeline`` computes the reply-by time we promise, and ``table`` holds the
ordered default policy and :func:`decide`. Nothing here does I/O; what the
rules need from storage arrives as :class:`Facts`.
"""

from policies.detect import THRESHOLD, classify_offline
from policies.guards import GUARDS, Guard
from policies.model import Action, Category, Classification, Decision, Facts, RuleHit, Severity
from policies.table import DEFAULT_POLICY, Rule, RuleCheck, decide
from policies.timeline import (
    DEFAULT_TARGETS,
    BusinessCalendar,
    Target,
    add_business_time,
    next_opening,
    reply_by,
    round_up_half_hour,
)

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_TARGETS",
    "GUARDS",
    "THRESHOLD",
    "Action",
    "BusinessCalendar",
    "Category",
    "Classification",
    "Decision",
    "Facts",
    "Guard",
    "Rule",
    "RuleCheck",
    "RuleHit",
    "Severity",
    "Target",
    "add_business_time",
    "classify_offline",
    "decide",
    "next_opening",
    "reply_by",
    "round_up_half_hour",
]
