"""What comes in: events of a recording call and configurations, checked and turned into domain values. Pure."""
