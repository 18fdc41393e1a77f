"""Who may do what: one literal table, checked on the server for every action.

An admin manages accounts but does not approve customer mail unless also given
a role that does; approving over a blocking wording finding is a manager's call.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ROLE_PERMISSIONS", "Permission", "allowed"]


class Permission(StrEnum):
    VIEW_INCIDENTS = "view_incidents"
    WORK_DRAFTS = "work_drafts"
    """Create, edit, approve and reject drafts."""
    ADD_NOTES = "add_notes"
    LOG_CALLS = "log_calls"
    MOVE_INCIDENTS = "move_incidents"
    """Move an incident through its life (investigating, resolved, closed)."""
    OVERRIDE_FINDINGS = "override_findings"
    """Approve a draft that still has a blocking finding (with a reason)."""
    VIEW_AUDIT = "view_audit"
    EXPORT_AUDIT = "export_audit"
    VIEW_OVERVIEW = "view_overview"
    MANAGE_USERS = "manage_users"


_CSM = frozenset(
    {
        Permission.VIEW_INCIDENTS,
        Permission.WORK_DRAFTS,
        Permission.ADD_NOTES,
        Permission.LOG_CALLS,
        Permission.MOVE_INCIDENTS,
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "csm": _CSM,
    "manager": _CSM
    | {
        Permission.OVERRIDE_FINDINGS,
        Permission.VIEW_AUDIT,
        Permission.EXPORT_AUDIT,
        Permission.VIEW_OVERVIEW,
    },
    "admin": frozenset({Permission.MANAGE_USERS}),
}


def allowed(role: str, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
