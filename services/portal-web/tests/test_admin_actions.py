"""The admin actions table (admin/actions.py) holds together: each row's target, the ids the
form must carry for its call, the confirmation page's wording and the notice after it."""

from __future__ import annotations

from tessera.portal.admin.actions import ACTIONS, NOTICES, license_action, set_disabled

# The id the confirmation page looks a target up by is the one the call needs.
NEEDS = {"license": ("license_id",), "user": ("user_id",)}


def test_each_action_needs_the_id_of_the_target_its_page_names() -> None:
    for name, action in ACTIONS.items():
        if action.target in NEEDS:
            assert action.ids == NEEDS[action.target], name
        elif action.target == "account" and action.ids:
            assert action.ids == ("account_id",), name
        else:
            assert action.ids == (), name


def test_the_license_and_user_calls_serve_exactly_their_verbs() -> None:
    """licensing's admin API takes the action's own name for a license verb, and the user
    call tells disable from enable by name: no other row may reach them."""
    license_verbs = {n for n, a in ACTIONS.items() if a.call is license_action}
    assert license_verbs == {"suspend", "reinstate", "revoke", "reset-activations"}
    assert {n for n, a in ACTIONS.items() if a.call is set_disabled} == {
        "disable-user",
        "enable-user",
    }


def test_every_action_has_its_words_and_a_notice() -> None:
    for name, action in ACTIONS.items():
        assert action.title and action.warning, name
        assert NOTICES[name] == f"Done: {action.title.lower()}.", name
    # only the sign-in link and a replay go without a reason (nothing changes hands)
    assert {n for n, a in ACTIONS.items() if not a.reason} == {"resend-link", "replay"}
