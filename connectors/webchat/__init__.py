"""The web chat widget: a script tag on the company's own site, a WebSocket to the bridge."""
