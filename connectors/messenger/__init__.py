"""Facebook Messenger customer connector."""
