"""Who is in the customer's corner: the owner CSM of each incident."""

from __future__ import annotations

from codered.settings import Settings

__all__ = ["assign_owner"]


def assign_owner(settings: Settings, customer_email: str, sequence: int) -> str | None:
    """The account's owner when ``[[accounts]]`` names one, else the next CSM of
    ``[policies] csms`` in turn (by incident number), else nobody yet."""
    account = settings.account(customer_email)
    if account is not None and account.owner:
        return account.owner
    csms = settings.policies.csms
    return csms[sequence % len(csms)] if csms else None
