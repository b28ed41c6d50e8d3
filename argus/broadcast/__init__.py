"""Delivery of transformed runs to the extension through Twitch pubsub."""
