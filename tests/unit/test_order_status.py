"""The live order state machine: forward moves, stale reports ignored, contradictions refused."""
from __future__ import annotations

import pytest

from core.order_status import FINAL, TRANSITIONS, IllegalTransition, advance


def test_forward_moves_and_venue_aliases() -> None:
    assert advance("INTENT", "NEW") == "NEW"
    assert advance("NEW", "PARTIALLY_FILLED") == "PARTIALLY_FILLED"
    assert advance("PARTIALLY_FILLED", "FILLED") == "FILLED"
    assert advance("NEW", "EXPIRED_IN_MATCH") == "EXPIRED"
    assert advance("INTENT", "PENDING_NEW") == "NEW"


def test_stale_reports_leave_the_record_as_it_is() -> None:
    # the user-data stream and a REST answer race: an earlier state arriving late changes nothing
    assert advance("FILLED", "NEW") == "FILLED"
    assert advance("PARTIALLY_FILLED", "NEW") == "PARTIALLY_FILLED"
    assert advance("CANCELED", "PARTIALLY_FILLED") == "CANCELED"


@pytest.mark.parametrize("final", sorted(FINAL))
def test_a_final_outcome_is_never_overwritten(final: str) -> None:
    for other in sorted(FINAL - {final}):
        with pytest.raises(IllegalTransition, match=f"already {final}"):
            advance(final, other)
    assert advance(final, final) == final


def test_unknown_statuses_and_a_rejection_after_acceptance_are_refused() -> None:
    with pytest.raises(IllegalTransition, match="unknown"):
        advance("NEW", "WHATEVER")
    assert "REJECTED" not in TRANSITIONS["NEW"]
    with pytest.raises(IllegalTransition, match="NEW -> REJECTED"):  # the venue accepted it: no rejection after
        advance("NEW", "REJECTED")
