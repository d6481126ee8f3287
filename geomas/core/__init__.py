"""Import paths of the original geomas tool, kept so existing scripts run unchanged."""
