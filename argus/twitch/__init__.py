"""Clients for the Twitch endpoints the service calls, and extension JWTs."""
