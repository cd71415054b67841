"""The desktop API: activate, validate, deactivate, public keys. A stable contract that a C#
app implements (docs/licensing-client.md); validate is the hot path of the whole system."""
