"""Modal screens: pick a namespace to flush, confirm it, and the key help."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, OptionList, Static

HELP = """\
[b]hmb dash[/b] — live view of every pod, database node and the cache

  [b]q[/b]   quit
  [b]p[/b]   pause / resume refreshing
  [b]+[/b]   refresh faster      [b]-[/b]  refresh slower
  [b]f[/b]   flush a cache namespace (asks first)
  [b]?[/b]   this help

Pods come from heartbeats in Redis: [i]stale[/i] means no beat within the TTL.
Replica lag is the routers' own measure; [i]in use n/m[/i] is how many
workers' routers read from it. Press any key to close."""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help", classes="dialog")

    def on_key(self) -> None:
        self.dismiss()


class FlushDialog(ModalScreen[str | None]):
    """Choose a namespace (Enter), or Escape to cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, namespaces: tuple[str, ...]):
        super().__init__()
        self.namespaces = namespaces

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Flush which cache namespace?  (Enter chooses, Esc cancels)")
            yield OptionList(*self.namespaces, id="namespaces")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.namespaces[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, message: str):
        super().__init__()
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.message)
            with Horizontal(id="buttons"):
                yield Button("Flush (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
