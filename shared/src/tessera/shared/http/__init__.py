"""The HTTP kernel for FastAPI: body limits, request ids, security headers, problem+json
errors, health endpoints and rate limits."""
