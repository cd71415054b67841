"""Admin domain errors."""

from tessera.shared.http.problems import Problem


class UnknownPolicy(Problem):
    status = 422
    slug = "unknown-policy"
    title = "Unknown policy"


class LicenseRevoked(Problem):
    status = 409
    slug = "license-revoked"
    title = "The license is revoked"


class BadSearch(Problem):
    status = 400
    slug = "search-needs-a-filter"
    title = "Give a key, an email or an account id"
