"""WhatsApp through Meta's Cloud API customer connector."""
