"""The support bridge."""
