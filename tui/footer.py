"""The key footer, recomposed only when what it shows changes.

Textual's Footer rebuilds all its key widgets (and the screen's layout) whenever the screen
announces that bindings *may* have changed, which it does after every key press. On this app the
bindings never change while the main screen is up, and at max speed each rebuild costs tens of
milliseconds of engine time, so this footer compares what it would show first.
"""
from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


def shown_bindings(screen: Screen[object]) -> tuple[tuple[object, ...], ...]:
    """What the footer draws from a screen's bindings: key, action, label, enabled, tooltip."""
    return tuple((key, b.action, b.description, b.key_display, b.show, enabled, tooltip)
                 for key, (_, b, enabled, tooltip) in screen.active_bindings.items())


class QuietFooter(Footer):
    def __init__(self) -> None:
        super().__init__()
        self._shown: tuple[tuple[object, ...], ...] | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            shown = shown_bindings(screen)
            if shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)
