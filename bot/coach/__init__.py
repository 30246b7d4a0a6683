"""The coaching domain: people and their data, the actions flows call."""
