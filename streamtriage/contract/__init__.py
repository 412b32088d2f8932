"""The span contract (docs/span-contract.md) as code every part may import: the hook, the collector,
the classifier and the dashboards. ``facts`` holds the failure facts derived from it."""
