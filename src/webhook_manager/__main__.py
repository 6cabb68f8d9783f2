"""``python -m webhook_manager``: the same as the ``webhook-manager`` command."""

from webhook_manager.cli import app

app(prog_name="webhook-manager")
