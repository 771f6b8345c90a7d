"""Load testing for the scoring service: seeded payloads, a locustfile, load shapes, a report and a runner."""
