"""Telegram customer connector."""
