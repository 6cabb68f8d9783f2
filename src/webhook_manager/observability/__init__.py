"""What the service tells its operators: its logs (and, later, its metrics)."""
