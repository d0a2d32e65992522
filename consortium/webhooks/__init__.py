"""Webhooks: partner systems subscribe (through the API) to the log's new entries, and
receive each as a CloudEvent signed by the log key, at least once and in index order
(docs/events.md)."""
