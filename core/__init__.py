"""Cross-cutting pieces shared by the API and the workers: settings, logging, ids, errors, events, jobs."""
